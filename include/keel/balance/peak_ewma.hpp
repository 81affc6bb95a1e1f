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
// latency the caller passes. Concurrent records on one node may drop a
// sample rather than wait (a try-lock guards the two fields).
//
//   keel::balancer<gpu, keel::peak_ewma> lb;
#pragma once

#include <keel/balance/detail/sampling.hpp>
#include <keel/core/detail/fatal.hpp>
#include <keel/core/permit.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace keel {

namespace detail {
/// e^-x for x ≥ 0, to a relative error below 2e-7, without a libm call (a
/// pick evaluates it for every candidate): x = n·ln 2 + r with r in [0, ln 2),
/// e^-r by its Taylor polynomial to degree 8, 2^-n through the exponent bits.
inline double exp_negative(double x) noexcept {
  if (!(x > 0)) return 1.0;
  if (x > 700) return 0.0;
  constexpr double ln2 = 0.6931471805599453;
  const auto n = static_cast<std::int64_t>(x / ln2);  // x > 0: truncation is floor, and needs no libm call
  const double y = -(x - static_cast<double>(n) * ln2);
  // Horner: sum of y^k / k! for k = 8 down to 0.
  double p = 1.0 / 40320;
  p = p * y + 1.0 / 5040;
  p = p * y + 1.0 / 720;
  p = p * y + 1.0 / 120;
  p = p * y + 1.0 / 24;
  p = p * y + 1.0 / 6;
  p = p * y + 1.0 / 2;
  p = p * y + 1.0;
  p = p * y + 1.0;
  return p * std::bit_cast<double>(static_cast<std::uint64_t>(1023 - n) << 52);
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

  struct node_state {
    std::atomic<double> latency_ns{0};      ///< the peak EWMA
    std::atomic<std::int64_t> stamp_ns{0};  ///< clock of the last sample
    std::atomic<bool> busy{false};
  };
  struct table {
    template <class View>
    table(const peak_ewma&, const View&) noexcept {}
  };

  static constexpr bool uses_latency = true;

  peak_ewma() = default;
  explicit peak_ewma(const config& c) : config_(c) { c.validate(); }

  template <class View>
  std::size_t pick(table&, const View& v) const {
    return detail::best_of_random(v, config_.choices, [this](const View& w, std::size_t i) { return cost(w, i); });
  }

  const config& settings() const noexcept { return config_; }

  /// latency × (outstanding + 1) / weight, as the pick compares it.
  template <class View>
  double cost(const View& v, std::size_t i) const {
    const std::int64_t outstanding = v.outstanding(i);
    double latency = estimate(v.state(i), v.now());
    if (latency == 0 && outstanding > 0) latency = static_cast<double>(config_.failure_penalty.count());
    return latency * static_cast<double>(outstanding + 1) / v.weight(i);
  }

  /// The EWMA as of now_ns, decayed for the time since the last sample.
  double estimate(const node_state& s, std::int64_t now_ns) const noexcept {
    const double latency = s.latency_ns.load(std::memory_order_relaxed);
    if (latency == 0) return 0;
    const std::int64_t elapsed = now_ns - s.stamp_ns.load(std::memory_order_relaxed);
    return elapsed <= 0 ? latency : latency * decay(elapsed);
  }

  void record(node_state& s, outcome o, std::int64_t latency_ns, std::int64_t now_ns) const noexcept {
    if (o == outcome::ignored) return;
    double sample = static_cast<double>(std::max<std::int64_t>(0, latency_ns));
    if (o == outcome::failure) sample = std::max(sample, static_cast<double>(config_.failure_penalty.count()));
    if (s.busy.exchange(true, std::memory_order_acquire)) return;  // another record is updating: drop this sample
    const double previous = s.latency_ns.load(std::memory_order_relaxed);
    const std::int64_t elapsed = std::max<std::int64_t>(0, now_ns - s.stamp_ns.load(std::memory_order_relaxed));
    double next = sample;
    if (sample <= previous) {
      const double keep = decay(elapsed);
      next = previous * keep + sample * (1.0 - keep);
    }
    s.latency_ns.store(next, std::memory_order_relaxed);
    s.stamp_ns.store(now_ns, std::memory_order_relaxed);
    s.busy.store(false, std::memory_order_release);
  }

 private:
  double decay(std::int64_t elapsed_ns) const noexcept {
    return detail::exp_negative(static_cast<double>(elapsed_ns) / static_cast<double>(config_.decay_time.count()));
  }

  config config_{};
};

}  // namespace keel
