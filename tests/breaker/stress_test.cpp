// Concurrency: invariant-checking stress tests, meant to run under
// ThreadSanitizer (the tsan preset). They count; they never time.
#include <keel/breaker/circuit_breaker.hpp>

#include <catch.hpp>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using keel::breaker_state;

namespace {

constexpr int threads = 8;

using breaker = keel::circuit_breaker<keel::count_window, keel::manual_clock>;

keel::breaker_config probe_config(std::uint32_t probes) {
  keel::breaker_config c;
  c.minimum_calls = 4;
  c.open_duration = 1s;
  c.half_open_probes = probes;
  c.jitter = 0;
  c.backoff_multiplier = 1;
  return c;
}

void trip(breaker& b) {
  while (b.state() == breaker_state::closed) {
    auto p = b.try_acquire();
    if (p) p->failure(1ms);
  }
}

}  // namespace

TEST_CASE("half-open never has more than half_open_probes permits out, under 8 contending threads",
          "[breaker][stress]") {
  constexpr std::uint32_t probes = 3;
  keel::manual_clock clock;
  breaker b{probe_config(probes), keel::count_window{8}, clock};
  trip(b);
  clock.advance(1s);
  REQUIRE(b.try_acquire());  // enters half-open; the permit is dropped at once and its slot returns
  REQUIRE(b.state() == breaker_state::half_open);

  std::atomic<int> out{0};
  std::atomic<int> most{0};
  std::atomic<std::uint64_t> granted{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < 4000; ++i) {
        auto p = b.try_acquire();
        if (!p) continue;
        const int now_out = out.fetch_add(1) + 1;
        int m = most.load();
        while (now_out > m && !most.compare_exchange_weak(m, now_out)) {
        }
        granted.fetch_add(1);
        if (rng() % 4 == 0) std::this_thread::yield();
        out.fetch_sub(1);                 // before the slot returns
        if (rng() % 2 == 0) p->ignore();  // else dropped unrecorded by the destructor
      }
    });
  }
  for (auto& th : pool) th.join();
  CHECK(most.load() <= static_cast<int>(probes));
  CHECK(most.load() >= 1);
  CHECK(granted.load() > probes);                // slots were returned and reused
  CHECK(b.state() == breaker_state::half_open);  // ignoring probes never decides anything
  // And every slot came back: exactly `probes` can be taken now.
  std::vector<breaker::permit> held;
  for (std::uint32_t i = 0; i < probes; ++i) {
    auto p = b.try_acquire();
    REQUIRE(p);
    held.push_back(std::move(*p));
  }
  CHECK_FALSE(b.try_acquire());
}

TEST_CASE("each half-open period admits exactly half_open_probes of 8 racing callers", "[breaker][stress]") {
  constexpr std::uint32_t probes = 3;
  keel::manual_clock clock;
  std::atomic<int> opens{0};
  auto cfg = probe_config(probes);
  cfg.on_state_change = [&](breaker_state, breaker_state to) {
    if (to == breaker_state::open) opens.fetch_add(1);
  };
  breaker b{cfg, keel::count_window{8}, clock};
  for (int round = 0; round < 50; ++round) {
    trip(b);
    clock.advance(1s);
    std::atomic<int> got{0};
    std::barrier sync(threads);
    std::vector<std::thread> pool;
    const bool fail_probes = round % 2 == 1;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        sync.arrive_and_wait();
        auto p = b.try_acquire();
        if (p) got.fetch_add(1);
        sync.arrive_and_wait();  // nobody records before everyone has tried
        if (p) fail_probes ? p->failure(1ms) : p->success(1ms);
      });
    }
    for (auto& th : pool) th.join();
    INFO("round " << round);
    REQUIRE(got.load() == static_cast<int>(probes));
    REQUIRE(b.state() == (fail_probes ? breaker_state::open : breaker_state::closed));
    if (fail_probes) {  // back to closed for the next round
      clock.advance(1s);
      for (std::uint32_t i = 0; i < probes; ++i) {
        auto p = b.try_acquire();
        REQUIRE(p);
        p->success(1ms);
      }
      REQUIRE(b.state() == breaker_state::closed);
    }
  }
  CHECK(opens.load() == 50 + 25);  // one trip per round, one re-open per failing round
}

TEST_CASE("concurrent failures trip the breaker exactly once", "[breaker][stress]") {
  keel::manual_clock clock;
  std::atomic<int> trips{0};
  auto cfg = probe_config(3);
  cfg.minimum_calls = 50;
  cfg.on_state_change = [&](breaker_state from, breaker_state to) {
    if (from == breaker_state::closed && to == breaker_state::open) trips.fetch_add(1);
  };
  breaker b{cfg, keel::count_window{100}, clock};
  std::barrier sync(threads);
  std::vector<std::thread> pool;
  std::atomic<int> rejected{0};
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      sync.arrive_and_wait();
      for (int i = 0; i < 500; ++i) {
        auto p = b.try_acquire();
        if (!p) {
          rejected.fetch_add(1);
          continue;
        }
        p->failure(1ms);
      }
    });
  }
  for (auto& th : pool) th.join();
  CHECK(trips.load() == 1);
  CHECK(b.state() == breaker_state::open);
  CHECK(b.stats().rejected == static_cast<std::uint64_t>(rejected.load()));
  CHECK(rejected.load() > 0);
}

TEST_CASE("concurrent records keep the count window's totals exact", "[breaker][stress]") {
  constexpr std::uint32_t n = 64;
  keel::count_window::recorder w(keel::count_window{n});
  std::atomic<int> violations{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) + 100);
      for (int i = 0; i < 20000; ++i) {
        const auto u = w.record(keel::detail::make_sample(rng() % 3 == 0, rng() % 5 == 0), 0);
        // Never more than the window plus the calls being recorded right now.
        if (u.changed && (u.totals.calls > n + threads || u.totals.failures > u.totals.calls ||
                          u.totals.slow_calls > u.totals.calls))
          violations.fetch_add(1);  // Catch2 assertions are not thread-safe: count, check after join
      }
    });
  }
  for (auto& th : pool) th.join();
  CHECK(violations.load() == 0);
  const auto t = w.totals(0);
  CHECK(t.calls == n);  // every slot holds a call, and no count drifted
  CHECK(t.failures <= n);
  // Overwrite the whole ring with fast successes: the totals must come back exact.
  for (std::uint32_t i = 0; i < n; ++i) (void)w.record(keel::detail::make_sample(false, false), 0);
  CHECK(w.totals(0) == keel::window_totals{n, 0, 0});
}

TEST_CASE("closed breaker under mixed concurrent load stays consistent", "[breaker][stress]") {
  keel::breaker_config cfg;
  cfg.failure_rate_threshold = 90;
  cfg.slow_call_rate_threshold = 90;
  cfg.minimum_calls = 10;
  keel::circuit_breaker<keel::time_window> b{cfg, keel::time_window{60s, 6}};  // real steady_clock
  std::vector<std::thread> pool;
  std::atomic<std::uint32_t> recorded{0}, failed{0}, refused{0};
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < 3000; ++i) {
        auto p = b.try_acquire();
        if (!p) {
          refused.fetch_add(1);
          continue;
        }
        const auto r = rng() % 10;
        if (r == 0) {
          p->failure(1ms);
          failed.fetch_add(1);
        } else if (r == 1) {
          p->ignore();
          continue;
        } else if (r == 2) {
          continue;  // dropped unrecorded
        } else {
          p->success(1ms);
        }
        recorded.fetch_add(1);
        if (i % 500 == 0) (void)b.stats();
      }
    });
  }
  for (auto& th : pool) th.join();
  const auto s = b.stats();
  CHECK(b.state() == breaker_state::closed);
  CHECK(refused.load() == 0);
  CHECK(s.calls == recorded.load());  // ignored and dropped permits are not calls
  CHECK(s.failures == failed.load());
}
