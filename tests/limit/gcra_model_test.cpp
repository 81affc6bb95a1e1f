// Model-based test: gcra_limiter against a reference written the other way
// ITU-T I.371 defines GCRA — the continuous-state leaky bucket — with no
// atomics and no saturation (its numbers stay small), on random seeded
// sequences of try_acquire, reserve, settle, drop, reconfigure and peek.
#include <keel/core/clock.hpp>
#include <keel/limit/gcra.hpp>

#include <catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

namespace {

// The continuous-state leaky bucket: `level` ns of work queued at time `last`,
// draining at 1 ns per ns. A call of cost c adds c × T and conforms when the
// level after adding is at most τ = burst × T (keel counts the call itself, so
// a burst of B admits exactly B from rest).
class leaky_bucket {
 public:
  leaky_bucket(std::int64_t rate_per_second, std::int64_t burst) { configure(rate_per_second, burst); }

  void configure(std::int64_t rate_per_second, std::int64_t burst) {
    t_ = (1'000'000'000 + rate_per_second / 2) / rate_per_second;  // period / rate, rounded
    tau_ = t_ * burst;
  }

  // nullopt = admitted; otherwise the retry_after in ns, or -1 for "never".
  std::optional<std::int64_t> acquire(std::int64_t now, std::int64_t cost) {
    const std::int64_t need = cost * t_;
    if (need > tau_) return -1;
    const std::int64_t level = drained(now);
    if (level + need > tau_) return level + need - tau_;
    level_ = level + need;
    last_ = now;
    return std::nullopt;
  }
  void adjust(std::int64_t now, std::int64_t delta) {
    const std::int64_t level = drained(now);
    level_ = delta >= 0 ? level + delta * t_ : std::max<std::int64_t>(0, level - (-delta) * t_);
    last_ = now;
  }
  std::optional<std::int64_t> peek(std::int64_t now, std::int64_t cost) const {
    leaky_bucket copy = *this;
    return copy.acquire(now, cost);
  }
  // Whole cost units admissible now, rounded down (negative in debt).
  std::int64_t available(std::int64_t now) const {
    const std::int64_t headroom = tau_ - drained(now);
    return headroom >= 0 ? headroom / t_ : -((-headroom + t_ - 1) / t_);
  }

 private:
  std::int64_t drained(std::int64_t now) const { return std::max<std::int64_t>(0, level_ - (now - last_)); }
  std::int64_t t_ = 1, tau_ = 1, level_ = 0, last_ = 0;
};

}  // namespace

TEST_CASE("gcra_limiter matches the leaky-bucket reference on random operation sequences", "[limit][gcra][model]") {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    std::mt19937_64 rng(seed);
    auto pick = [&](std::int64_t lo, std::int64_t hi) {
      return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
    };
    std::int64_t rate = pick(1, 2000);
    std::int64_t burst = pick(1, 50);
    keel::manual_clock clock;
    keel::gcra_limiter<keel::manual_clock> keel_limiter{
        keel::rate_limit{static_cast<double>(rate), burst, std::chrono::seconds(1)}, clock};
    leaky_bucket model(rate, burst);
    std::vector<std::pair<keel::gcra_limiter<keel::manual_clock>::reservation, std::int64_t>> open;
    std::int64_t t = (1'000'000'000 + rate / 2) / rate;
    std::int64_t now = 0;
    INFO("seed " << seed << " rate " << rate << " burst " << burst);
    for (int step = 0; step < 3000; ++step) {
      const auto op = pick(0, 99);
      if (op < 30) {  // time passes: up to 3 T, sometimes exactly T, sometimes long enough to rest
        const auto kind = pick(0, 9);
        const std::int64_t dt = kind == 0 ? t : kind == 1 ? pick(0, 3 * burst * t) : pick(0, 3 * t);
        clock.advance(std::chrono::nanoseconds(dt));
        now += dt;
      } else if (op < 70) {  // try_acquire
        const std::int64_t cost = pick(0, burst + 2);
        const auto got = keel_limiter.try_acquire(cost);
        const auto want = model.acquire(now, cost);
        INFO("step " << step << " cost " << cost);
        REQUIRE(got.has_value() == !want.has_value());
        if (want) {
          if (*want < 0) {
            CHECK(got.error().code == keel::errc::invalid_argument);
          } else {
            CHECK(got.error().code == keel::errc::rate_limited);
            CHECK(got.error().retry_after->count() == *want);
          }
        }
      } else if (op < 82) {  // reserve
        const std::int64_t cost = pick(0, burst);
        auto got = keel_limiter.reserve(cost);
        const auto want = model.acquire(now, cost);
        REQUIRE(got.has_value() == !want.has_value());
        if (got) open.emplace_back(std::move(*got), cost);
      } else if (op < 94 && !open.empty()) {  // settle one: refund, exact or debt; or drop it
        const auto i = static_cast<std::size_t>(pick(0, static_cast<std::int64_t>(open.size()) - 1));
        const std::int64_t actual = pick(0, 2 * burst);
        if (pick(0, 4) == 0) {
          open.erase(open.begin() + static_cast<std::ptrdiff_t>(i));  // dropped: the estimate stays
        } else {
          open[i].first.settle(actual);
          model.adjust(now, actual - open[i].second);
          open.erase(open.begin() + static_cast<std::ptrdiff_t>(i));
        }
      } else if (op < 96) {  // reconfigure
        rate = pick(1, 2000);
        burst = pick(1, 50);
        keel_limiter.reconfigure(keel::rate_limit{static_cast<double>(rate), burst, std::chrono::seconds(1)});
        model.configure(rate, burst);
        t = (1'000'000'000 + rate / 2) / rate;
      } else {
        const std::int64_t cost = pick(0, burst);
        CHECK(keel_limiter.peek(cost).has_value() == !model.peek(now, cost).has_value());
        CHECK(keel_limiter.stats().available == model.available(now));
      }
    }
  }
}
