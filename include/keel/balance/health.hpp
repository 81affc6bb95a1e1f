// keel/balance/health.hpp — when a node should stop receiving traffic for a while.
//
// Every node of a keel::balancer owns one health policy object. The balancer
// feeds it the outcome of every recorded call; when the policy says "trip",
// the balancer ejects the node (subject to max_ejection_percent) for the time
// the policy returns from eject(), then lets it back in, in slow start.
//
// The default, outlier_detector, is Envoy's consecutive-failure outlier
// detection: `consecutive_failures` failures in a row trip it; the ejection
// lasts base_ejection_time × (number of recent ejections), capped at
// max_ejection_time, and the multiplier decays by one for every
// base_ejection_time the node stays in. Defaults are Envoy's (5, 30 s, 300 s).
//
//   keel::outlier_detector::config h;
//   h.consecutive_failures = 3;
//   h.base_ejection_time = std::chrono::seconds(10);
//   keel::balancer<gpu, keel::p2c_least_request> lb({}, {}, h);
//
// Any type modelling keel::node_health can replace it, e.g. a circuit breaker
// per node (see keel/balance/breaker_health.hpp when available).
#pragma once

#include <keel/core/detail/fatal.hpp>
#include <keel/core/permit.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <limits>

namespace keel {

/// A per-node health policy. It is called from many threads at once, so its
/// members must be thread-safe (atomics).
///  - record(outcome, latency_ns) -> bool: learn from one call; true asks the
///    balancer to eject the node now. No clock is read for it: a policy that
///    needs time keeps its own clock (a circuit breaker does).
///  - eject(now_ns) -> int64: the balancer ejects the node at now_ns (on the
///    balancer's clock); return for how long, in ns (> 0).
template <class H>
concept node_health = std::default_initializable<typename H::config> &&
    std::constructible_from<H, const typename H::config&> && requires(H& h, outcome o, std::int64_t ns) {
  { h.record(o, ns) } -> std::same_as<bool>;
  { h.eject(ns) } -> std::same_as<std::int64_t>;
};

/// Envoy-style consecutive-failure outlier detection (envoy: outlier_detection,
/// consecutive_5xx / base_ejection_time / max_ejection_time).
class outlier_detector {
 public:
  struct config {
    std::uint32_t consecutive_failures = 5;
    std::chrono::nanoseconds base_ejection_time = std::chrono::seconds(30);
    std::chrono::nanoseconds max_ejection_time = std::chrono::seconds(300);

    void validate() const {
      detail::require_config(consecutive_failures > 0,
                             "keel::outlier_detector: consecutive_failures must be at least 1");
      detail::require_config(base_ejection_time.count() > 0,
                             "keel::outlier_detector: base_ejection_time must be positive");
      detail::require_config(max_ejection_time >= base_ejection_time,
                             "keel::outlier_detector: max_ejection_time must be at least base_ejection_time");
    }
  };

  explicit outlier_detector(const config& c) : config_(c) { c.validate(); }

  bool record(outcome o, std::int64_t /*latency_ns*/) noexcept {
    if (o == outcome::ignored) return false;
    if (o == outcome::success) {
      if (consecutive_.load(std::memory_order_relaxed) != 0) consecutive_.store(0, std::memory_order_relaxed);
      return false;
    }
    // Exactly one failing call sees the threshold; it restarts the count, so
    // a trip the balancer refuses (max_ejection_percent) is retried after
    // another full streak rather than never.
    if (consecutive_.fetch_add(1, std::memory_order_relaxed) + 1 != config_.consecutive_failures) return false;
    consecutive_.store(0, std::memory_order_relaxed);
    return true;
  }

  std::int64_t eject(std::int64_t now_ns) noexcept {
    const std::int64_t base = config_.base_ejection_time.count();
    // Envoy decrements the multiplier while the node stays healthy; computed
    // lazily here: one step per base_ejection_time since the last ejection ended.
    std::int64_t multiplier = ejections_.load(std::memory_order_relaxed);
    const std::int64_t last_end = last_end_ns_.load(std::memory_order_relaxed);
    if (now_ns > last_end) multiplier = std::max<std::int64_t>(0, multiplier - (now_ns - last_end) / base);
    const std::int64_t cap = config_.max_ejection_time.count();
    multiplier = std::min(multiplier + 1, cap / base + 1);
    ejections_.store(multiplier, std::memory_order_relaxed);
    // min(base × multiplier, cap), without forming a product above cap.
    const std::int64_t duration = multiplier > cap / base ? cap : base * multiplier;
    const std::int64_t end = now_ns > std::numeric_limits<std::int64_t>::max() - duration
                                 ? std::numeric_limits<std::int64_t>::max()
                                 : now_ns + duration;
    last_end_ns_.store(end, std::memory_order_relaxed);
    return duration;
  }

  /// How many ejections the current multiplier counts (for stats and tests).
  std::int64_t ejection_multiplier() const noexcept { return ejections_.load(std::memory_order_relaxed); }

 private:
  config config_;
  std::atomic<std::uint32_t> consecutive_{0};
  std::atomic<std::int64_t> ejections_{0};
  std::atomic<std::int64_t> last_end_ns_{0};
};

static_assert(node_health<outlier_detector>);

/// A health policy that never ejects: for tests, or when an outer breaker decides.
struct always_healthy {
  struct config {};
  explicit always_healthy(const config&) noexcept {}
  bool record(outcome, std::int64_t) noexcept { return false; }
  std::int64_t eject(std::int64_t) noexcept { return 1; }
};

static_assert(node_health<always_healthy>);

}  // namespace keel
