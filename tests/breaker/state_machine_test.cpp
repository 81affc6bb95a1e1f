// The breaker's state machine, to exact numbers on a manual clock: every
// transition happens on exactly the call (or the nanosecond) that crosses it.
#include <keel/breaker/circuit_breaker.hpp>

#include <catch.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using keel::breaker_state;

namespace {

using breaker = keel::circuit_breaker<keel::count_window, keel::manual_clock>;
static_assert(keel::permit<breaker::permit>);
static_assert(std::is_nothrow_move_constructible_v<breaker>);

// Small numbers so each threshold is crossed by one known call.
keel::breaker_config small_config() {
  keel::breaker_config c;
  c.failure_rate_threshold = 50;
  c.slow_call_rate_threshold = 75;
  c.slow_call_duration = 100ms;
  c.minimum_calls = 4;
  c.open_duration = 10s;
  c.half_open_probes = 3;
  c.backoff_multiplier = 2;
  c.max_open_duration = 35s;
  c.jitter = 0;
  return c;
}

void succeed(breaker& b, std::chrono::nanoseconds latency = 1ms) {
  auto p = b.try_acquire();
  REQUIRE(p);
  p->success(latency);
}
void fail(breaker& b, std::chrono::nanoseconds latency = 1ms) {
  auto p = b.try_acquire();
  REQUIRE(p);
  p->failure(latency);
}

// Trips b from closed: four failures with minimum_calls = 4.
void trip(breaker& b) {
  for (int i = 0; i < 4; ++i) fail(b);
  REQUIRE(b.state() == breaker_state::open);
}

}  // namespace

TEST_CASE("closed opens on exactly the call that reaches the failure rate", "[breaker]") {
  keel::manual_clock clock;
  breaker b{small_config(), keel::count_window{4}, clock};
  succeed(b);
  fail(b);
  fail(b);  // 2 of 3 failed, but fewer than minimum_calls
  CHECK(b.state() == breaker_state::closed);
  CHECK(b.stats().calls == 3);
  succeed(b);  // 2 of 4 = 50%: reaches the threshold on the fourth call
  CHECK(b.state() == breaker_state::open);
  const auto s = b.stats();
  CHECK(s.calls == 4);
  CHECK(s.failures == 2);
  CHECK(s.failure_rate == 50.0);
}

TEST_CASE("the window slides: old failures leave, and the threshold is judged on the last N", "[breaker]") {
  keel::manual_clock clock;
  auto cfg = small_config();
  cfg.failure_rate_threshold = 60;
  breaker b{cfg, keel::count_window{5}, clock};
  // f s s s s: 1/5. Then each new failure evicts the oldest call.
  fail(b);
  for (int i = 0; i < 4; ++i) succeed(b);
  fail(b);  // evicts f: window s s s s f = 20%
  CHECK(b.stats().failures == 1);
  fail(b);  // s s s f f = 40%
  CHECK(b.state() == breaker_state::closed);
  fail(b);  // s s f f f = 60%
  CHECK(b.state() == breaker_state::open);
}

TEST_CASE("slow calls count: longer than slow_call_duration, failed or not", "[breaker]") {
  keel::manual_clock clock;
  breaker b{small_config(), keel::count_window{4}, clock};
  succeed(b, 100ms);  // exactly the duration: not slow
  CHECK(b.stats().slow_calls == 0);
  succeed(b, 100ms + 1ns);
  succeed(b, 5s);
  CHECK(b.stats().slow_calls == 2);
  CHECK(b.state() == breaker_state::closed);
  succeed(b, 101ms);  // 3 of 4 slow = 75%
  CHECK(b.state() == breaker_state::open);
  CHECK(b.stats().failures == 0);
  CHECK(b.stats().slow_call_rate == 75.0);
}

TEST_CASE("open rejects with retry_after until exactly open_duration has passed", "[breaker]") {
  keel::manual_clock clock;
  breaker b{small_config(), keel::count_window{4}, clock};
  trip(b);
  auto r = b.try_acquire();
  REQUIRE_FALSE(r);
  CHECK(r.error().code == keel::errc::circuit_open);
  CHECK(r.error().retry_after == std::chrono::nanoseconds(10s));
  clock.advance(10s - 1ns);
  r = b.try_acquire();
  REQUIRE_FALSE(r);
  CHECK(r.error().retry_after == 1ns);
  CHECK_FALSE(b.would_admit());
  CHECK(b.stats().rejected == 2);
  clock.advance(1ns);
  CHECK(b.would_admit());
  CHECK(b.state() == breaker_state::open);  // would_admit changes nothing
  auto probe = b.try_acquire();
  CHECK(probe);
  CHECK(b.state() == breaker_state::half_open);
}

TEST_CASE("half-open admits exactly half_open_probes; ignored and dropped probes give their slot back", "[breaker]") {
  keel::manual_clock clock;
  breaker b{small_config(), keel::count_window{4}, clock};
  trip(b);
  clock.advance(10s);
  std::vector<breaker::permit> probes;
  for (int i = 0; i < 3; ++i) {
    auto p = b.try_acquire();
    REQUIRE(p);
    probes.push_back(std::move(*p));
  }
  auto fourth = b.try_acquire();
  REQUIRE_FALSE(fourth);
  CHECK(fourth.error().code == keel::errc::circuit_open);
  CHECK_FALSE(b.would_admit());

  probes[0].ignore();  // its slot returns
  CHECK(b.would_admit());
  auto again = b.try_acquire();
  REQUIRE(again);
  CHECK_FALSE(b.try_acquire());
  probes[0] = std::move(*again);

  probes.pop_back();  // dropped unrecorded: the slot returns
  auto replacement = b.try_acquire();
  REQUIRE(replacement);
  probes.push_back(std::move(*replacement));
  CHECK_FALSE(b.try_acquire());

  probes[0].success(1ms);
  probes[1].success(1ms);
  CHECK(b.state() == breaker_state::half_open);  // decides on the last probe
  probes[2].failure(1ms);                        // 1 of 3 failed: 33% < 50%
  CHECK(b.state() == breaker_state::closed);
  CHECK(b.stats().calls == 0);  // closed starts with an empty window
  CHECK(b.stats().consecutive_opens == 0);
}

TEST_CASE("a probe result at the threshold re-opens, with exponential backoff capped at max_open_duration",
          "[breaker]") {
  keel::manual_clock clock;
  breaker b{small_config(), keel::count_window{4}, clock};
  trip(b);
  CHECK(b.stats().open_duration == 10s);
  const std::chrono::nanoseconds expected[] = {20s, 35s, 35s};  // 10 × 2, 10 × 4 capped at 35, capped
  for (auto d : expected) {
    clock.advance(b.stats().open_duration);
    auto p1 = b.try_acquire();
    auto p2 = b.try_acquire();
    auto p3 = b.try_acquire();
    REQUIRE((p1 && p2 && p3));
    p1->failure(1ms);
    p2->failure(1ms);
    CHECK(b.state() == breaker_state::half_open);
    p3->success(1ms);  // 2 of 3 failed ≥ 50%: re-open
    CHECK(b.state() == breaker_state::open);
    CHECK(b.stats().open_duration == d);
    auto r = b.try_acquire();
    REQUIRE_FALSE(r);
    CHECK(r.error().retry_after == d);
  }
  CHECK(b.stats().consecutive_opens == 4);
}

TEST_CASE("slow probes re-open too", "[breaker]") {
  keel::manual_clock clock;
  breaker b{small_config(), keel::count_window{4}, clock};
  trip(b);
  clock.advance(10s);
  for (int i = 0; i < 3; ++i) {
    auto p = b.try_acquire();
    REQUIRE(p);
    p->success(i == 0 ? 1ms : 200ms);  // 2 of 3 slow = 67% < 75%
  }
  CHECK(b.state() == breaker_state::closed);
  trip(b);
  clock.advance(10s);
  for (int i = 0; i < 3; ++i) {
    auto p = b.try_acquire();
    REQUIRE(p);
    p->success(200ms);  // 3 of 3 slow
  }
  CHECK(b.state() == breaker_state::open);
}

TEST_CASE("jitter spreads backed-off open durations, deterministically for a seed", "[breaker]") {
  auto run = [](std::uint64_t seed) {
    keel::manual_clock clock;
    auto cfg = small_config();
    cfg.jitter = 0.25;
    cfg.jitter_seed = seed;
    cfg.max_open_duration = 1000s;
    breaker b{cfg, keel::count_window{4}, clock};
    trip(b);
    std::vector<std::chrono::nanoseconds> lengths{b.stats().open_duration};
    for (int i = 0; i < 6; ++i) {
      clock.advance(b.stats().open_duration);
      for (int k = 0; k < 3; ++k) {
        auto p = b.try_acquire();
        REQUIRE(p);
        p->failure(1ms);
      }
      lengths.push_back(b.stats().open_duration);
    }
    return lengths;
  };
  const auto a = run(42);
  CHECK(a == run(42));
  CHECK(a != run(43));
  CHECK(a[0] == 10s);  // the first open is exact
  std::chrono::nanoseconds nominal = 10s;
  for (std::size_t i = 1; i < a.size(); ++i) {
    nominal *= 2;
    CHECK(a[i] >= nominal * 3 / 4);
    CHECK(a[i] <= nominal * 5 / 4);
  }
}

TEST_CASE("permits from an earlier period do not count in the next one", "[breaker]") {
  keel::manual_clock clock;
  breaker b{small_config(), keel::count_window{4}, clock};
  auto late = b.try_acquire();  // admitted while closed
  REQUIRE(late);
  trip(b);
  clock.advance(10s);
  for (int i = 0; i < 3; ++i) succeed(b);  // probes close it
  REQUIRE(b.state() == breaker_state::closed);
  late->failure(1ms);  // reported after the circuit closed again
  CHECK(b.stats().calls == 0);

  trip(b);
  clock.advance(10s);
  auto stale_probe = b.try_acquire();
  REQUIRE(stale_probe);
  b.reset();
  stale_probe->failure(1ms);
  CHECK(b.state() == breaker_state::closed);
  CHECK(b.stats().calls == 0);
}

TEST_CASE("force_open, disable and reset", "[breaker]") {
  keel::manual_clock clock;
  breaker b{small_config(), keel::count_window{4}, clock};
  b.force_open();
  CHECK(b.state() == breaker_state::forced_open);
  clock.advance(1000s);
  auto r = b.try_acquire();
  REQUIRE_FALSE(r);
  CHECK(r.error().code == keel::errc::circuit_open);
  CHECK_FALSE(r.error().retry_after);  // an operator decides when
  CHECK_FALSE(b.would_admit());

  clock.advance(3s);
  b.force_open();  // already forced: nothing changes, time in state goes on
  CHECK(b.stats().time_in_state == 1003s);

  b.disable();
  CHECK(b.state() == breaker_state::disabled);
  for (int i = 0; i < 10; ++i) fail(b);  // metrics only: never opens
  CHECK(b.state() == breaker_state::disabled);
  CHECK(b.stats().calls == 4);
  CHECK(b.stats().failure_rate == 100.0);

  b.reset();
  CHECK(b.state() == breaker_state::closed);
  CHECK(b.stats().calls == 0);
  CHECK(b.stats().rejected == 1);
}

TEST_CASE("time_in_state follows the clock and stands still when it goes back", "[breaker]") {
  keel::manual_clock clock;
  breaker b{small_config(), keel::count_window{4}, clock};
  clock.advance(3s);
  CHECK(b.stats().time_in_state == 3s);
  trip(b);
  CHECK(b.stats().time_in_state == 0s);
  clock.advance(-5s);  // the clock jumps back
  CHECK(b.stats().time_in_state == 0s);
  auto r = b.try_acquire();
  REQUIRE_FALSE(r);
  CHECK(r.error().retry_after == 15s);          // waits longer; never admits early
  clock.advance(std::chrono::hours(24 * 365));  // and far ahead
  CHECK(b.try_acquire());
  CHECK(b.state() == breaker_state::half_open);
}

TEST_CASE("timed permits measure latency with the breaker's clock", "[breaker]") {
  keel::manual_clock clock;
  breaker b{small_config(), keel::count_window{4}, clock};
  auto p = b.try_acquire_timed();
  REQUIRE(p);
  clock.advance(150ms);
  CHECK(p->elapsed() == 150ms);
  p->success();
  CHECK(b.stats().slow_calls == 1);
  auto q = b.try_acquire_timed();
  REQUIRE(q);
  clock.advance(-1s);  // backwards: zero latency, not negative
  CHECK(q->elapsed() == 0ns);
  q->failure();
  CHECK(b.stats().failures == 1);
  CHECK(b.stats().slow_calls == 1);
}

TEST_CASE("a permit records once; moved-from permits do nothing", "[breaker]") {
  keel::manual_clock clock;
  breaker b{small_config(), keel::count_window{4}, clock};
  auto p = b.try_acquire();
  REQUIRE(p);
  breaker::permit moved = std::move(*p);
  CHECK_FALSE(p->active());
  p->failure(1ms);  // moved from: nothing
  moved.failure(1ms);
  moved.failure(1ms);  // second record ignored
  moved.success(1ms);
  CHECK_FALSE(moved.active());
  CHECK(b.stats().calls == 1);
  CHECK(b.stats().failures == 1);
}

TEST_CASE("state-change callback sees every transition in order", "[breaker]") {
  keel::manual_clock clock;
  std::vector<std::pair<breaker_state, breaker_state>> seen;
  auto cfg = small_config();
  cfg.on_state_change = [&](breaker_state from, breaker_state to) { seen.emplace_back(from, to); };
  breaker b{cfg, keel::count_window{4}, clock};
  trip(b);
  clock.advance(10s);
  for (int i = 0; i < 3; ++i) succeed(b);
  b.force_open();
  b.force_open();  // no change, no call
  b.disable();
  b.reset();
  const std::vector<std::pair<breaker_state, breaker_state>> expected{
      {breaker_state::closed, breaker_state::open},          {breaker_state::open, breaker_state::half_open},
      {breaker_state::half_open, breaker_state::closed},     {breaker_state::closed, breaker_state::forced_open},
      {breaker_state::forced_open, breaker_state::disabled}, {breaker_state::disabled, breaker_state::closed}};
  CHECK(seen == expected);
}

TEST_CASE("a throwing state-change callback leaves the breaker consistent", "[breaker]") {
  keel::manual_clock clock;
  int calls = 0;
  auto cfg = small_config();
  cfg.on_state_change = [&](breaker_state, breaker_state) {
    ++calls;
    throw std::runtime_error("callback failed");
  };
  breaker b{cfg, keel::count_window{4}, clock};
  for (int i = 0; i < 3; ++i) fail(b);
  auto p = b.try_acquire();
  REQUIRE(p);
  CHECK_THROWS_AS(p->failure(1ms), std::runtime_error);  // the trip stands
  CHECK_FALSE(p->active());
  CHECK(b.state() == breaker_state::open);
  CHECK_FALSE(b.try_acquire());

  clock.advance(10s);
  CHECK_THROWS_AS((void)b.try_acquire(), std::runtime_error);  // open → half-open announced, no permit taken
  CHECK(b.state() == breaker_state::half_open);
  std::vector<breaker::permit> probes;
  for (int i = 0; i < 3; ++i) {
    auto q = b.try_acquire();
    REQUIRE(q);  // all three slots are still free
    probes.push_back(std::move(*q));
  }
  CHECK_FALSE(b.try_acquire());
  probes[0].success(1ms);
  probes[1].success(1ms);
  CHECK_THROWS_AS(probes[2].success(1ms), std::runtime_error);
  CHECK(b.state() == breaker_state::closed);
  succeed(b);
  CHECK(b.stats().calls == 1);
  CHECK_THROWS_AS(b.force_open(), std::runtime_error);
  CHECK(b.state() == breaker_state::forced_open);
  CHECK_FALSE(b.try_acquire());
  CHECK(calls == 4);
}

TEST_CASE("breakers move into containers; outstanding permits stay valid", "[breaker]") {
  keel::manual_clock clock;
  std::vector<breaker> nodes;
  nodes.emplace_back(small_config(), keel::count_window{4}, clock);
  auto p = nodes[0].try_acquire();
  REQUIRE(p);
  for (int i = 0; i < 16; ++i) nodes.emplace_back(small_config(), keel::count_window{4}, clock);  // reallocates
  p->failure(1ms);
  CHECK(nodes[0].stats().failures == 1);
  breaker moved = std::move(nodes[0]);
  CHECK(moved.stats().calls == 1);
}

TEST_CASE("time windows forget calls older than the window", "[breaker]") {
  keel::manual_clock clock;
  auto cfg = small_config();
  keel::circuit_breaker<keel::time_window, keel::manual_clock> b{cfg, keel::time_window{10s, 10}, clock};
  for (int i = 0; i < 3; ++i) {
    auto p = b.try_acquire();
    REQUIRE(p);
    p->failure(1ms);
  }
  clock.advance(10s);  // the three failures fall out
  CHECK(b.stats().calls == 0);
  for (int i = 0; i < 3; ++i) {
    auto p = b.try_acquire();
    REQUIRE(p);
    p->failure(1ms);
  }
  CHECK(b.state() == breaker_state::closed);
  auto p = b.try_acquire();
  REQUIRE(p);
  p->failure(1ms);
  CHECK(b.state() == breaker_state::open);
}
