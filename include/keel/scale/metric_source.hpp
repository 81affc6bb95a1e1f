// keel/scale/metric_source.hpp — metric readings from the objects a service already has.
//
// An in-process worker pool scales itself by reading its own queue and
// balancer at each evaluation; these helpers turn them into metric_samples
// for the autoscaler, without a thread or a timer of their own. They are
// generic: anything with approx_size() or size() is a queue, anything with
// outstanding() or stats().outstanding is a balancer, any callable returning
// a number is a gauge — a keel::mpmc_queue, a keel::balancer, a std::deque
// behind a lock, or a lambda reading a Prometheus gauge.
//
//   keel::rate_meter<> arrivals;                       // requests/s from a counter
//   std::array<keel::metric_sample, 3> readings{
//       keel::queue_depth(queue),                      // metric_kind::total
//       keel::in_flight(balancer),                     // metric_kind::total
//       arrivals.sample(now, accepted_total.load())};  // metric_kind::total, target = req/s per replica
//   auto d = scaler.recommend(now, {.current = pool.size(), .ready = pool.ready(), .metrics = readings});
#pragma once

#include <keel/core/clock.hpp>
#include <keel/scale/autoscaler.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <type_traits>

namespace keel {

namespace detail {
template <class T>
concept number = std::is_arithmetic_v<std::remove_cvref_t<T>>;
}  // namespace detail

/// A queue whose depth can be read: approx_size() (preferred: cheap and
/// racy by design) or size().
template <class Q>
concept depth_source = requires(const Q& q) {
  { q.approx_size() } -> detail::number;
}
|| requires(const Q& q) {
  { q.size() } -> detail::number;
};

/// A balancer (or anything) that counts outstanding calls: outstanding() or
/// stats().outstanding.
template <class B>
concept outstanding_source = requires(const B& b) {
  { b.outstanding() } -> detail::number;
}
|| requires(const B& b) {
  { b.stats().outstanding } -> detail::number;
};

/// A callable that returns the current value of a metric.
template <class F>
concept gauge_source = std::invocable<F&> && detail::number<std::invoke_result_t<F&>>;

/// The depth of a queue, as a fleet-total reading.
template <class Q>
metric_sample queue_depth(const Q& q) {
  static_assert(depth_source<Q>,
                "keel::queue_depth: the queue needs approx_size() or size() returning a number; for anything "
                "else pass a callable to keel::gauge");
  if constexpr (requires { q.approx_size(); }) {
    return metric_sample(static_cast<double>(q.approx_size()));
  } else {
    return metric_sample(static_cast<double>(q.size()));
  }
}

/// The calls a balancer has outstanding (in flight on its nodes), as a
/// fleet-total reading.
template <class B>
metric_sample in_flight(const B& b) {
  static_assert(outstanding_source<B>,
                "keel::in_flight: the balancer needs outstanding() or stats().outstanding returning a number; for "
                "anything else pass a callable to keel::gauge");
  if constexpr (requires { b.outstanding(); }) {
    return metric_sample(static_cast<double>(b.outstanding()));
  } else {
    return metric_sample(static_cast<double>(b.stats().outstanding));
  }
}

/// Whatever `read()` returns, as a reading (NaN, negative or infinite →
/// missing, as everywhere in the autoscaler).
template <class F>
metric_sample gauge(F&& read) {
  static_assert(gauge_source<F>, "keel::gauge: pass a callable taking no argument and returning a number");
  return metric_sample(static_cast<double>(std::invoke(read)));
}

/// Events per second from a monotonically increasing counter (requests
/// accepted, tokens generated), over the interval between two samples:
/// demand as a rate, which a backlog does not inflate. The first sample, a
/// counter that went backwards (a restart: the meter starts again from it)
/// and time that stood still or went backwards (the baseline is kept) give a
/// missing reading.
template <clock Clock = std::chrono::steady_clock>
class rate_meter {
 public:
  using time_point = typename Clock::time_point;

  metric_sample sample(time_point now, std::uint64_t count) noexcept {
    if (!has_previous_ || count < previous_count_) {  // first sample, or the counter restarted
      previous_at_ = now;
      previous_count_ = count;
      has_previous_ = true;
      return metric_sample::missing();
    }
    if (!(now > previous_at_)) return metric_sample::missing();  // no time passed: keep the baseline
    const double seconds = std::chrono::duration<double>(now - previous_at_).count();
    const double rate = static_cast<double>(count - previous_count_) / seconds;
    previous_at_ = now;
    previous_count_ = count;
    return metric_sample(rate);
  }

 private:
  time_point previous_at_{};
  std::uint64_t previous_count_ = 0;
  bool has_previous_ = false;
};

}  // namespace keel
