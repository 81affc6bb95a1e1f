// keel/balance/breaker_health.hpp — a keel::circuit_breaker per node as the balancer's health policy.
//
// The default health policy (outlier_detector) ejects on consecutive
// failures. breaker_health instead gives every node a sliding-window
// circuit breaker (keel/breaker): the node is ejected while its breaker is
// open, for the breaker's own open duration (with its backoff and jitter),
// and its failure-rate and slow-call thresholds decide when.
//
//   keel::breaker_health<>::config h;
//   h.breaker.failure_rate_threshold = 30;
//   h.breaker.slow_call_duration = std::chrono::seconds(20);
//   keel::balancer<gpu, keel::recommended, keel::breaker_health<>> lb({}, {}, h);
//   auto lease = lb.pick();  ...;  lease->success(elapsed);   // pass latencies: they feed slow-call detection
//
// How the two fit: the balancer already admitted the call when it picked the
// node, so each recorded outcome is fed to the breaker as an admission and an
// immediate record. While the breaker is open the node is ejected, so no call
// reaches it; when the ejection ends, calls flow again and their outcomes
// are the breaker's half-open probes. Outcomes the breaker does not admit
// (more than half_open_probes in flight) are not counted. The balancer does
// not cap calls to a node in half-open at half_open_probes: a node returning
// from ejection gets its normal share (ramped by slow start if configured).
// Ejections still obey max_ejection_percent and panic mode.
#pragma once

#include <keel/breaker/circuit_breaker.hpp>
#include <keel/core/clock.hpp>
#include <keel/core/permit.hpp>

#include <chrono>
#include <cstdint>

namespace keel {

template <class Window = count_window, clock Clock = std::chrono::steady_clock>
class breaker_health {
 public:
  struct config {
    breaker_config breaker{};
    Window window{};
    Clock clock{};  ///< the breaker's clock; give it the balancer's (manual_clock copies share time)
  };

  explicit breaker_health(const config& c) : breaker_(c.breaker, c.window, c.clock), open_(c.breaker.open_duration) {}

  bool record(outcome o, std::int64_t latency_ns) {
    if (auto p = breaker_.try_acquire()) p->record(o, std::chrono::nanoseconds(latency_ns));
    return breaker_.state() == breaker_state::open;
  }

  std::int64_t eject(std::int64_t /*now_ns*/) {
    auto p = breaker_.try_acquire();
    if (!p && p.error().retry_after) return std::max<std::int64_t>(1, p.error().retry_after->count());
    return open_.count();  // it closed again meanwhile: eject for one open_duration
  }

  const circuit_breaker<Window, Clock>& breaker() const noexcept { return breaker_; }

 private:
  circuit_breaker<Window, Clock> breaker_;
  std::chrono::nanoseconds open_;
};

}  // namespace keel
