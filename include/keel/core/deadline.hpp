// keel/core/deadline.hpp — don't start work that cannot finish in time.
//
// A request whose caller has already given up still costs a GPU slot if it is
// served. deadline(expected_service_time) rejects with errc::deadline_exceeded
// when the request's deadline has passed, or is closer than the time the
// service is expected to take — before any cost is spent on it.
//
// The deadline comes from ctx: by default the member `ctx.deadline` (a
// Clock::time_point, or std::optional of one where "no deadline" is allowed);
// pass a projection for anything else.
//
//   auto dl = keel::deadline(std::chrono::milliseconds(40));          // ctx.deadline
//   auto dl2 = keel::deadline(std::chrono::milliseconds(40),
//                             [](request& r) { return r.expires_at; }, clock);
#pragma once

#include <keel/core/clock.hpp>
#include <keel/core/pipeline.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

namespace keel {

namespace detail {
/// The default projection: ctx.deadline.
struct member_deadline {
  template <class Ctx>
  constexpr auto operator()(Ctx& ctx) const -> decltype(ctx.deadline) {
    return ctx.deadline;
  }
};

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
}  // namespace detail

template <clock Clock, class Projection>
class deadline_layer {
 public:
  using duration = typename Clock::duration;

  constexpr deadline_layer(duration expected_service_time, Projection deadline_of, Clock clk)
      : expected_(expected_service_time), deadline_of_(std::move(deadline_of)), clock_(std::move(clk)) {
    detail::require_config(expected_ >= duration::zero(), "keel::deadline: expected_service_time must not be negative");
  }

  template <class Ctx, class Next>
  constexpr next_result_t<Next, Ctx> operator()(Ctx& ctx, Next&& next) {
    decltype(auto) deadline = std::invoke(deadline_of_, ctx);
    using deadline_t = std::remove_cvref_t<decltype(deadline)>;
    if constexpr (detail::is_optional<deadline_t>::value) {
      if (deadline.has_value() && !fits(*deadline)) return too_late(*deadline);
    } else {
      if (!fits(deadline)) return too_late(deadline);
    }
    return next(ctx);
  }

  constexpr duration expected_service_time() const noexcept { return expected_; }

 private:
  template <class TimePoint>
  constexpr bool fits(const TimePoint& deadline) const {
    static_assert(std::is_same_v<TimePoint, typename Clock::time_point>,
                  "keel::deadline: the deadline must be a time_point of the layer's Clock "
                  "(std::chrono::steady_clock unless you pass another clock)");
    const auto now = clock_.now();
    // Compare "remaining >= expected" only once the deadline is known to be
    // ahead, so neither a far-past nor a far-future deadline can overflow.
    // A deadline equal to now has passed: the work would finish after it.
    return deadline > now && deadline - now >= expected_;
  }

  template <class TimePoint>
  constexpr rejection too_late(const TimePoint& deadline) const {
    return reject(errc::deadline_exceeded,
                  deadline <= clock_.now() ? "deadline already passed" : "deadline closer than expected service time");
  }

  duration expected_;
  Projection deadline_of_;
  [[no_unique_address]] Clock clock_;
};

/// Rejects requests whose ctx.deadline is passed or closer than expected_service_time.
template <clock Clock = std::chrono::steady_clock, class Rep = std::int64_t, class Period = std::nano>
constexpr auto deadline(std::chrono::duration<Rep, Period> expected_service_time = {}, Clock clk = {}) {
  return deadline_layer<Clock, detail::member_deadline>(
      std::chrono::duration_cast<typename Clock::duration>(expected_service_time), {}, std::move(clk));
}

/// As above, reading the deadline with deadline_of(ctx).
template <clock Clock = std::chrono::steady_clock, class Rep, class Period, class Projection>
requires(!clock<std::decay_t<Projection>>) constexpr auto deadline(
    std::chrono::duration<Rep, Period> expected_service_time, Projection deadline_of, Clock clk = {}) {
  return deadline_layer<Clock, std::decay_t<Projection>>(
      std::chrono::duration_cast<typename Clock::duration>(expected_service_time), std::move(deadline_of),
      std::move(clk));
}

}  // namespace keel
