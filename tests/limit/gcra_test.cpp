#include <keel/core/clock.hpp>
#include <keel/core/tsc_clock.hpp>
#include <keel/limit/gcra.hpp>

#include <catch.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

using namespace std::chrono_literals;
using limiter = keel::gcra_limiter<keel::manual_clock>;

namespace {
// Tries `cost` until the limiter refuses; returns how many were admitted.
int drain(limiter& l, std::int64_t cost = 1) {
  int n = 0;
  while (l.try_acquire(cost)) ++n;
  return n;
}
std::chrono::nanoseconds retry_after(const keel::result<void>& r) {
  REQUIRE_FALSE(r);
  REQUIRE(r.error().code == keel::errc::rate_limited);
  REQUIRE(r.error().retry_after.has_value());
  return *r.error().retry_after;
}
}  // namespace

TEST_CASE("a rested limiter admits exactly the burst, then one per emission interval", "[limit][gcra]") {
  keel::manual_clock clock;
  limiter l{keel::rate_limit::per_second(10, 5), clock};  // T = 100 ms, burst 5
  CHECK(drain(l) == 5);
  CHECK(retry_after(l.try_acquire()) == 100ms);
  clock.advance(99ms);
  CHECK(retry_after(l.try_acquire()) == 1ms);
  clock.advance(1ms);
  CHECK(l.try_acquire());
  CHECK(retry_after(l.try_acquire()) == 100ms);
}

TEST_CASE("over a long run the admitted count is exactly rate x t + burst", "[limit][gcra]") {
  keel::manual_clock clock;
  limiter l{keel::rate_limit::per_second(10, 5), clock};
  std::int64_t admitted = 0;
  for (int ms = 0; ms <= 60'000; ++ms) {  // a greedy caller polls every millisecond for a minute
    while (l.try_acquire()) ++admitted;
    if (ms < 60'000) clock.advance(1ms);
  }
  CHECK(admitted == 10 * 60 + 5);

  // Per minute with a cost per call: 90 000 tokens/min is T = 666 667 ns after
  // rounding, so a minute admits floor(60 s / T) tokens beyond the burst.
  keel::manual_clock c2;
  keel::gcra_limiter<keel::manual_clock> tpm{keel::rate_limit::per_minute(90'000, 1'000), c2};
  std::int64_t tokens = 0;
  for (int step = 0; step <= 6'000; ++step) {  // every 10 ms (150 tokens), so no refill overflows the burst
    while (tpm.try_acquire(10)) tokens += 10;
    if (step < 6'000) c2.advance(10ms);
  }
  constexpr std::int64_t t = 666'667;
  CHECK(tokens == (60'000'000'000 + 1'000 * t) / (10 * t) * 10);  // 90 990, not 91 000
}

TEST_CASE("retry_after is exact for weighted costs", "[limit][gcra]") {
  keel::manual_clock clock;
  limiter l{keel::rate_limit::per_second(1000, 100), clock};  // T = 1 ms, burst 100
  REQUIRE(l.try_acquire(60));
  CHECK(retry_after(l.try_acquire(50)) == 10ms);  // 40 left, 50 needed: 10 more units
  CHECK(l.try_acquire(40));
  CHECK(retry_after(l.try_acquire(100)) == 100ms);
  clock.advance(100ms);
  CHECK(l.try_acquire(100));
  CHECK(l.try_acquire(0));  // cost 0 asks "is the limiter within its tolerance?": yes, not in debt
  CHECK(l.stats().available == 0);
}

TEST_CASE("peek answers like try_acquire and charges nothing", "[limit][gcra]") {
  keel::manual_clock clock;
  limiter l{keel::rate_limit::per_second(10, 2), clock};
  CHECK(l.peek(2));
  CHECK(l.peek(2));
  REQUIRE(l.try_acquire(2));
  CHECK(retry_after(l.peek()) == 100ms);
  CHECK(l.peek(3).error().code == keel::errc::invalid_argument);
}

TEST_CASE("invalid rate, period and burst are refused at construction with a clear message", "[limit][gcra]") {
  keel::manual_clock clock;
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::string rate_msg = "keel::limit: rate must be a positive, finite number";
  CHECK_THROWS_WITH(limiter(keel::rate_limit{0, 1, 1s}, clock), rate_msg);
  CHECK_THROWS_WITH(limiter(keel::rate_limit{-5, 1, 1s}, clock), rate_msg);
  CHECK_THROWS_WITH(limiter(keel::rate_limit{nan, 1, 1s}, clock), rate_msg);
  CHECK_THROWS_WITH(limiter(keel::rate_limit{inf, 1, 1s}, clock), rate_msg);
  CHECK_THROWS_WITH(limiter(keel::rate_limit{1, 0, 1s}, clock), "keel::limit: burst must be at least 1");
  CHECK_THROWS_WITH(limiter(keel::rate_limit{1, -3, 1s}, clock), "keel::limit: burst must be at least 1");
  CHECK_THROWS_WITH(limiter(keel::rate_limit{1, 1, 0s}, clock), "keel::limit: period must be positive");
  CHECK_THROWS_WITH(limiter(keel::rate_limit{3e9, 1, 1s}, clock),
                    "keel::limit: rate must be at most one unit per nanosecond (period / rate must be at least 1 ns)");
  CHECK_THROWS_WITH(limiter(keel::rate_limit{1e-300, 1, 1s}, clock),
                    "keel::limit: burst * period / rate must be under 2^62 ns (146 years)");
  CHECK_THROWS_WITH(limiter(keel::rate_limit{1, std::numeric_limits<std::int64_t>::max(), 1s}, clock),
                    "keel::limit: burst * period / rate must be under 2^62 ns (146 years)");
  CHECK_THROWS_AS(limiter(keel::rate_limit::per_minute(nan), clock), keel::config_error);
  CHECK_NOTHROW(limiter(keel::rate_limit::per_second(1e9, 1), clock));  // T = 1 ns, the finest
}

TEST_CASE("default bursts are one period's worth", "[limit][gcra]") {
  CHECK(keel::rate_limit::per_minute(600).burst == 600);
  CHECK(keel::rate_limit::per_second(2.5).burst == 3);
  CHECK(keel::rate_limit::per_second(0.1).burst == 1);
  CHECK(keel::rate_limit::per_minute(90'000, 20'000).burst == 20'000);
}

TEST_CASE("a negative cost, a cost above the burst and an overflowing cost are immediate invalid_argument",
          "[limit][gcra]") {
  keel::manual_clock clock;
  limiter l{keel::rate_limit::per_second(10, 5), clock};
  const auto neg = l.try_acquire(-1);
  REQUIRE_FALSE(neg);
  CHECK(neg.error().code == keel::errc::invalid_argument);
  CHECK(std::string(neg.error().reason) == "cost must not be negative");

  for (std::int64_t cost : {std::int64_t{6}, std::numeric_limits<std::int64_t>::max()}) {
    const auto big = l.try_acquire(cost);
    REQUIRE_FALSE(big);
    CHECK(big.error().code == keel::errc::invalid_argument);
    CHECK_FALSE(big.error().retry_after.has_value());
    CHECK(std::string(big.error().reason) == "cost exceeds the burst; it can never be admitted");
    // A blocking acquire refuses it at once too, instead of waiting forever.
    int slept = 0;
    const auto wait = l.acquire(cost, clock.now() + 1h, [&](std::chrono::nanoseconds) { ++slept; });
    CHECK(wait.error().code == keel::errc::invalid_argument);
    CHECK(slept == 0);
  }
  CHECK(drain(l) == 5);  // nothing was charged by the refused calls
}

TEST_CASE("a clock standing still admits nothing beyond the burst", "[limit][gcra][clock]") {
  keel::manual_clock clock;
  limiter l{keel::rate_limit::per_second(1000, 50), clock};
  CHECK(drain(l) == 50);
  for (int i = 0; i < 1000; ++i) CHECK_FALSE(l.try_acquire());
  CHECK(retry_after(l.try_acquire()) == 1ms);
}

TEST_CASE("a clock jumping far ahead rests the limiter without overflow", "[limit][gcra][clock]") {
  keel::manual_clock clock;
  limiter l{keel::rate_limit::per_second(10, 5), clock};
  CHECK(drain(l) == 5);
  clock.advance(std::chrono::hours(24 * 365 * 200));  // 200 years
  CHECK(drain(l) == 5);                               // a rested limiter: the burst, not 200 years of rate
  CHECK(retry_after(l.try_acquire()) == 100ms);
  // Near the end of int64 time the arithmetic saturates instead of wrapping.
  clock.set(keel::manual_clock::time_point(std::chrono::nanoseconds(std::numeric_limits<std::int64_t>::max() - 1)));
  CHECK(l.try_acquire(5));
  CHECK_FALSE(l.try_acquire(std::numeric_limits<std::int64_t>::max()));
}

TEST_CASE("a clock going backwards never admits more than the latest time seen allows", "[limit][gcra][clock]") {
  keel::manual_clock clock{keel::manual_clock::time_point(10s)};
  limiter l{keel::rate_limit::per_second(10, 5), clock};
  CHECK(drain(l) == 5);  // TAT = 10.5 s
  clock.advance(-5s);
  // Seen from 5 s, the limiter owes 5.5 s: nothing is admitted, and the wait is
  // exact in the clock's own terms.
  CHECK(retry_after(l.try_acquire()) == 5s + 100ms);
  clock.advance(5s);  // back at 10 s: exactly as if the clock had stood still
  CHECK(retry_after(l.try_acquire()) == 100ms);
  clock.advance(500ms);
  CHECK(drain(l) == 5);
}

TEST_CASE("acquire sleeps until its slot and fails fast when the slot is past the deadline", "[limit][gcra]") {
  keel::manual_clock clock;
  limiter l{keel::rate_limit::per_second(10, 1), clock};
  std::chrono::nanoseconds slept{0};
  int sleeps = 0;
  auto sleep = [&](std::chrono::nanoseconds d) {
    ++sleeps;
    slept += d;
    clock.advance(d);
  };
  CHECK(l.acquire(1, clock.now(), sleep));  // admissible now: no sleep
  CHECK(sleeps == 0);
  CHECK(l.acquire(1, clock.now() + 1s, sleep));  // next slot in 100 ms: one sleep of exactly that
  CHECK(sleeps == 1);
  CHECK(slept == 100ms);

  // Two waiters queue: the second is charged behind the first, not beside it.
  const auto t0 = clock.now();
  CHECK(l.acquire(1, t0 + 1s, [](std::chrono::nanoseconds d) { CHECK(d == 100ms); }));
  CHECK(l.acquire(1, t0 + 1s, [](std::chrono::nanoseconds d) { CHECK(d == 200ms); }));

  // A slot 300 ms away with a deadline in 250 ms: refused at once, nothing charged.
  const auto late = l.acquire(1, t0 + 250ms, sleep);
  REQUIRE_FALSE(late);
  CHECK(late.error().code == keel::errc::rate_limited);
  CHECK(*late.error().retry_after == 300ms);
  CHECK(std::string(late.error().reason) == "the wait would pass the deadline");
  CHECK(sleeps == 1);
  CHECK(l.acquire(1, t0 + 300ms, [](std::chrono::nanoseconds d) { CHECK(d == 300ms); }));
  // A deadline already passed behaves like try_acquire.
  CHECK_FALSE(l.acquire(1, t0 - 1s, sleep));
}

TEST_CASE("acquire with the default sleeper really sleeps on a real clock", "[limit][gcra]") {
  keel::gcra_limiter<> l{keel::rate_limit::per_second(1000, 1)};  // T = 1 ms
  REQUIRE(l.try_acquire());
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(l.acquire(1, start + 1s));
  CHECK(std::chrono::steady_clock::now() - start >= 900us);  // slept (about) until its slot
}

TEST_CASE("settle refunds an overestimate and charges an underestimate as debt", "[limit][gcra][settle]") {
  keel::manual_clock clock;
  limiter l{keel::rate_limit::per_second(1000, 1000), clock};  // 1 token per ms, burst 1000
  SECTION("refund") {
    auto p = l.reserve(800);
    REQUIRE(p);
    CHECK(l.stats().available == 200);
    p->settle(300);
    CHECK(l.stats().available == 700);
    p->settle(0);  // a second settle is ignored
    CHECK_FALSE(p->active());
    CHECK(l.stats().available == 700);
  }
  SECTION("debt makes later callers wait") {
    auto p = l.reserve(500);
    REQUIRE(p);
    p->settle(1500);
    CHECK(l.stats().available == -500);
    CHECK(retry_after(l.try_acquire(1)) == 501ms);
    CHECK(retry_after(l.try_acquire(0)) == 500ms);
    clock.advance(501ms);
    CHECK(l.try_acquire(1));
  }
  SECTION("dropped unsettled keeps the estimate") {
    { [[maybe_unused]] auto p = l.reserve(600); }
    CHECK(l.stats().available == 400);
  }
  SECTION("moving a reservation moves the settlement") {
    auto p = l.reserve(600);
    auto q = std::move(*p);
    p->settle(0);  // moved-from: ignored
    CHECK(l.stats().available == 400);
    q.settle(100);
    CHECK(l.stats().available == 900);
  }
  SECTION("a refund after the limiter has rested is not credit beyond the burst") {
    auto p = l.reserve(1000);
    clock.advance(5s);
    p->settle(0);
    CHECK(l.stats().available == 1000);
  }
  SECTION("an enormous actual cost saturates instead of wrapping") {
    auto p = l.reserve(1);
    p->settle(std::numeric_limits<std::int64_t>::max());
    CHECK_FALSE(l.try_acquire());
    CHECK(l.stats().available < 0);
  }
  SECTION("reserve refuses like try_acquire") {
    CHECK(l.reserve(1001).error().code == keel::errc::invalid_argument);
    REQUIRE(l.reserve(1000));
    CHECK(l.reserve(1).error().code == keel::errc::rate_limited);
  }
}

TEST_CASE("reconfigure changes rate and burst for new admissions and keeps time owed", "[limit][gcra]") {
  keel::manual_clock clock;
  limiter l{keel::rate_limit::per_second(10, 5), clock};
  CHECK(drain(l) == 5);  // owes 500 ms
  l.reconfigure(keel::rate_limit::per_second(100, 20));
  CHECK(l.limit() == keel::rate_limit::per_second(100, 20));
  // The tolerance is now 200 ms: 500 ms owed - 200 ms + 10 ms for the call.
  CHECK(retry_after(l.try_acquire()) == 310ms);
  clock.advance(310ms);
  CHECK(drain(l) == 1);
  clock.advance(1s);
  CHECK(drain(l) == 20);
  CHECK_THROWS_WITH(l.reconfigure(keel::rate_limit{1, 0, 1s}), "keel::limit: burst must be at least 1");
  CHECK(l.limit() == keel::rate_limit::per_second(100, 20));  // a refused change changes nothing
  clock.advance(1s);
  CHECK(drain(l) == 20);
}

TEST_CASE("a limiter runs on tsc_clock", "[limit][gcra][tsc_clock]") {
  // A slow rate: the burst is admitted at once and the next call is refused
  // with a retry_after of about one emission interval.
  keel::gcra_limiter<keel::tsc_clock> on_tsc{keel::rate_limit{1.0, 3, 1s}};
  CHECK(on_tsc.try_acquire(3));
  const auto refused = on_tsc.try_acquire();
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == keel::errc::rate_limited);
  CHECK(refused.error().retry_after > 900ms);
  CHECK(refused.error().retry_after <= 1s);
}
