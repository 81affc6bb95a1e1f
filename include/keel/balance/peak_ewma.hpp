// keel/balance/peak_ewma.hpp — latency-aware power of two choices (Finagle, Linkerd).
//
// Each node keeps a peak-sensitive EWMA of its latency: a sample above the
// average replaces it at once, a lower one is blended in with weight
// 1 − exp(−Δt / decay_time), and the average decays towards zero while no
// sample arrives, so a node that was slow once is retried (Finagle's
// PeakEwma, decay time 10 s). A pick samples two usable nodes and takes the
// one with the lower cost = latency × (outstanding + 1) / weight.
//
// The known weakness of peak EWMA is a node that fails fast: its errors are
// quick, so it looks like the best node and attracts traffic. Here a failure
// counts as a latency of at least failure_penalty (default 1 s, set it above
// your normal p99), so failing fast makes a node expensive, not cheap. The
// outlier detector of the balancer then ejects it.
//
// A node that has no sample yet costs 0 while idle (it gets tried) and
// failure_penalty × outstanding while it has calls in flight (Finagle).
//
// Latency samples come from the lease: measured from pick to record, or the
// latency the caller passes. Concurrent records on one node may lose a
// sample (see node_state).
//
//   keel::balancer<gpu, keel::peak_ewma> lb;
#pragma once

#include <keel/balance/detail/sampling.hpp>
#include <keel/core/detail/fatal.hpp>
#include <keel/core/permit.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace keel {

namespace detail {
/// 2^(-j/64) for j = 0..63, computed at compile time (a Taylor series of
/// e^(-x) to 24 terms: within a rounding error or two for x < ln 2).
inline constexpr auto exp2_negative_sixty_fourths = [] {
  std::array<double, 64> t{};
  for (std::size_t j = 0; j < t.size(); ++j) {
    const double x = static_cast<double>(j) * 0.6931471805599453 / 64;
    double term = 1, sum = 1;
    for (int k = 1; k < 24; ++k) sum += term *= -x / k;
    t[j] = sum;
  }
  return t;
}();

/// e^-r by its cubic Taylor polynomial: relative error below r^4/24, which
/// is under 6e-10 for 0 ≤ r < ln2/64.
constexpr double exp_negative_small(double r) noexcept { return 1.0 - r * (1.0 - r * (0.5 - r * (1.0 / 6))); }

/// e^-x for x ≥ 0, to a relative error below 1e-9, without a libm call or a
/// division (a pick evaluates it for every candidate). Small x — the usual
/// case: the time between two samples of a node is far below decay_time —
/// is the cubic above. Otherwise x = (64 n + j)·ln2/64 + r with
/// 0 ≤ r < ln2/64, and e^-x = 2^-n (through the exponent bits) · 2^(-j/64)
/// (the table above) · e^-r (the cubic). Non-positive or NaN x gives 1 (no
/// decay).
inline double exp_negative(double x) noexcept {
  constexpr double ln2 = 0.6931471805599453;
  if (!(x > 0)) return 1.0;
  if (x < ln2 / 64) return exp_negative_small(x);
  if (x > 700) return 0.0;
  const double scaled = x * (64 / ln2);
  const auto k = static_cast<std::int64_t>(scaled);  // x > 0: truncation is floor
  const double r = (scaled - static_cast<double>(k)) * (ln2 / 64);
  const auto two_to_minus_n = std::bit_cast<double>(static_cast<std::uint64_t>(1023 - (k >> 6)) << 52);
  return exp_negative_small(r) * exp2_negative_sixty_fourths[static_cast<std::size_t>(k & 63)] * two_to_minus_n;
}
}  // namespace detail

class peak_ewma {
 public:
  struct config {
    std::chrono::nanoseconds decay_time = std::chrono::seconds(10);
    std::chrono::nanoseconds failure_penalty = std::chrono::seconds(1);
    std::size_t choices = 2;

    void validate() const {
      detail::require_config(decay_time.count() > 0, "keel::peak_ewma: decay_time must be positive");
      detail::require_config(failure_penalty.count() >= 0, "keel::peak_ewma: failure_penalty must not be negative");
      detail::require_config(choices >= 1, "keel::peak_ewma: choices must be at least 1");
    }
  };

  /// The two fields are updated without a lock: concurrent records on one
  /// node may lose a sample (the last writer wins), which an average of
  /// thousands of samples does not notice; a lock or a retry loop would cost
  /// every record an atomic read-modify-write.
  struct node_state {
    std::atomic<double> latency_ns{0};      ///< the peak EWMA
    std::atomic<std::int64_t> stamp_ns{0};  ///< clock of the last sample
  };
  struct table {
    template <class View>
    table(const peak_ewma&, const View&) noexcept {}
  };

  static constexpr bool uses_latency = true;

  peak_ewma() = default;
  explicit peak_ewma(const config& c) : config_(c), per_decay_time_(1.0 / static_cast<double>(c.decay_time.count())) {
    c.validate();
  }

  template <class View>
  std::size_t pick(table&, const View& v) const {
    // The clock first: reading it waits for every instruction before it to
    // finish (rdtscp), cheapest while nothing else is in flight.
    const std::int64_t now = v.now();
    return detail::best_of_random(v, config_.choices,
                                  [this, now](const View& w, std::size_t i) { return cost(w, i, now); });
  }

  const config& settings() const noexcept { return config_; }

  /// latency × (outstanding + 1) / weight, as the pick compares it.
  template <class View>
  double cost(const View& v, std::size_t i) const {
    return cost(v, i, v.now());
  }
  template <class View>
  double cost(const View& v, std::size_t i, std::int64_t now_ns) const {
    const std::int64_t outstanding = v.outstanding(i);
    double latency = estimate(v.state(i), now_ns);
    if (latency == 0 && outstanding > 0) latency = static_cast<double>(config_.failure_penalty.count());
    return latency * static_cast<double>(outstanding + 1) * v.inverse_weight(i);
  }

  /// The EWMA as of now_ns, decayed for the time since the last sample.
  double estimate(const node_state& s, std::int64_t now_ns) const noexcept {
    const double latency = s.latency_ns.load(std::memory_order_relaxed);
    if (latency == 0) return 0;
    return latency * decay(now_ns, s.stamp_ns.load(std::memory_order_relaxed));
  }

  void record(node_state& s, outcome o, std::int64_t latency_ns, std::int64_t now_ns) const noexcept {
    if (o == outcome::ignored) return;
    double sample = static_cast<double>(std::max<std::int64_t>(0, latency_ns));
    if (o == outcome::failure) sample = std::max(sample, static_cast<double>(config_.failure_penalty.count()));
    const double previous = s.latency_ns.load(std::memory_order_relaxed);
    double next = sample;
    if (sample <= previous) {
      const double keep = decay(now_ns, s.stamp_ns.load(std::memory_order_relaxed));
      next = previous * keep + sample * (1.0 - keep);
    }
    s.latency_ns.store(next, std::memory_order_relaxed);
    s.stamp_ns.store(now_ns, std::memory_order_relaxed);
  }

 private:
  /// e^(−(now − then) / decay_time); 1 when now ≤ then (a clock that went
  /// back). The difference is taken in double: it cannot overflow whatever
  /// the clock's values, and rounding them (at most ~1 µs, near ±2^63 ns)
  /// is nothing against a decay time of seconds.
  double decay(std::int64_t now_ns, std::int64_t then_ns) const noexcept {
    return detail::exp_negative((static_cast<double>(now_ns) - static_cast<double>(then_ns)) * per_decay_time_);
  }

  config config_{};
  double per_decay_time_ = 1.0 / static_cast<double>(config{}.decay_time.count());
};

}  // namespace keel
