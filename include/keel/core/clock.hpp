// keel/core/clock.hpp — where keel gets the time from.
//
// Every time-dependent keel type takes a Clock template parameter (default
// std::chrono::steady_clock) and a Clock object at construction. keel reads
// the time only through that object, so tests drive it with manual_clock and
// get exact, repeatable numbers, and keel never starts a timer thread.
//
//   keel::manual_clock clock;                       // starts at t = 0
//   keel::gcra_limiter<keel::manual_clock> limiter{cfg, clock};
//   clock.advance(std::chrono::milliseconds(100));  // the limiter sees it too
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <memory>

namespace keel {

/// A clock keel can read: copyable, with time_point/duration types and a
/// now() callable on a const object (static now(), as std clocks have, works).
template <class C>
concept clock = std::copy_constructible<C> && requires(const C& c) {
  typename C::duration;
  typename C::time_point;
  { c.now() } -> std::same_as<typename C::time_point>;
};

/// A thread-safe clock that only moves when told to. Copies share one time,
/// so a test keeps a copy and advances the clock the component reads.
/// Time may be set backwards on purpose, to test how components handle a
/// clock that jumps back: none may grant more because of it. Most treat it as
/// "no time passed"; state kept in absolute time (GCRA's arrival time) stays
/// owed until the clock catches up again.
class manual_clock {
 public:
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<manual_clock, duration>;
  static constexpr bool is_steady = false;  // it can be set backwards

  explicit manual_clock(time_point start = time_point{})
      : now_(std::make_shared<std::atomic<rep>>(start.time_since_epoch().count())) {}

  time_point now() const noexcept { return time_point(duration(now_->load(std::memory_order_acquire))); }

  /// Moves time forward by d (backward if d is negative).
  template <class Rep, class Period>
  void advance(std::chrono::duration<Rep, Period> d) const noexcept {
    now_->fetch_add(std::chrono::duration_cast<duration>(d).count(), std::memory_order_acq_rel);
  }

  void set(time_point t) const noexcept { now_->store(t.time_since_epoch().count(), std::memory_order_release); }

 private:
  std::shared_ptr<std::atomic<rep>> now_;
};

static_assert(clock<manual_clock>);
static_assert(clock<std::chrono::steady_clock>);

namespace detail {
/// Nanoseconds since the clock's epoch, as a signed 64-bit count: the form in
/// which lock-free components keep time in one atomic word.
template <clock C>
inline std::int64_t now_ns(const C& c) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(c.now().time_since_epoch()).count();
}
}  // namespace detail

}  // namespace keel
