// keel/queue/detail/event_count.hpp — sleeping for lock-free code, with a timeout.
//
// An event count (Vyukov, 1024cores "eventcounts"; folly::EventCount) turns a
// non-blocking "try" into a blocking wait without a lock on the fast path and
// without lost wake-ups:
//
//   waiter                                   notifier
//   ------                                   --------
//   auto k = ec.prepare_wait();              make the condition true   (a seq_cst RMW)
//   if (condition()) ec.cancel_wait();       ec.notify(1);             (a seq_cst load of
//   else ec.wait(k, timeout);                                           waiters, then only
//                                                                       if someone waits:
//                                                                       bump epoch, wake)
//
// Why nothing is lost: the waiter's seq_cst increment of `waiters` and the
// notifier's seq_cst write of the condition are both in the single total order
// of seq_cst operations. If the notifier's write comes first, the waiter's
// re-check (a seq_cst load after its increment) sees the condition and does
// not sleep. If the increment comes first, the notifier's load of `waiters`
// sees it, so the notifier bumps `epoch`; the waiter sleeps only while
// `epoch` still equals the key it read, so it either does not sleep or is
// woken. A notifier that finds no waiter pays one load of a cache line that
// stays shared — that is the whole cost of blocking support on the fast path.
//
// std::atomic::wait has no timeout, and deadlines need one, so the sleeping is
// done by a Parking policy:
//   futex_parking    (Linux) FUTEX_WAIT_PRIVATE with a relative timeout on the
//                    epoch word itself: no lock, no allocation, one syscall to
//                    sleep and one to wake, paid only when someone sleeps.
//   condvar_parking  (everywhere) a std::mutex + std::condition_variable used
//                    only on the sleep path; notify takes the mutex after
//                    bumping the epoch, so a waiter between its check and its
//                    sleep cannot miss it.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>
#endif

namespace keel::detail {

/// How long to sleep at most; nullopt means until woken.
using park_timeout = std::optional<std::chrono::nanoseconds>;

/// Portable parking: a mutex and condition variable, touched only by sleepers
/// and by notifiers that found a sleeper.
class condvar_parking {
 public:
  void wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, park_timeout timeout) noexcept {
    std::unique_lock<std::mutex> lock(mutex_);
    auto changed = [&] { return word.load(std::memory_order_seq_cst) != expected; };
    if (!timeout) {
      cv_.wait(lock, changed);
    } else {
      // Long waits are cut into slices: wait_for(huge) overflows in some
      // standard libraries, and the caller re-checks its deadline anyway.
      cv_.wait_for(lock, std::min(*timeout, max_slice), changed);
    }
  }

  void wake(std::atomic<std::uint32_t>&, int count) noexcept {
    { std::lock_guard<std::mutex> lock(mutex_); }  // orders the epoch bump before any sleeper's check
    if (count == 1) {
      cv_.notify_one();
    } else {
      cv_.notify_all();
    }
  }

 private:
  static constexpr std::chrono::nanoseconds max_slice = std::chrono::hours(1);
  std::mutex mutex_;
  std::condition_variable cv_;
};

#if defined(__linux__)
/// Linux parking: futex(2) on the epoch word. Stateless.
class futex_parking {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                    std::atomic<std::uint32_t>::is_always_lock_free,
                "keel: futex parking needs std::atomic<uint32_t> to be a plain 32-bit word");

 public:
  void wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, park_timeout timeout) noexcept {
    timespec ts{};
    timespec* relative = nullptr;
    if (timeout) {
      const auto ns = std::min(timeout->count(), max_seconds * 1'000'000'000);
      ts.tv_sec = static_cast<std::time_t>(ns / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
      relative = &ts;
    }
    // Returns when woken, on timeout, on a signal, or at once if the word no
    // longer holds `expected` (EAGAIN). Every case is handled by the caller
    // re-checking its condition, so the return value is not needed.
    ::syscall(SYS_futex, address(word), FUTEX_WAIT_PRIVATE, expected, relative, nullptr, 0);
  }

  void wake(std::atomic<std::uint32_t>& word, int count) noexcept {
    ::syscall(SYS_futex, address(word), FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
  }

 private:
  static constexpr std::chrono::nanoseconds::rep max_seconds = 3600;
  static std::uint32_t* address(std::atomic<std::uint32_t>& word) noexcept {
    return reinterpret_cast<std::uint32_t*>(&word);
  }
};
using default_parking = futex_parking;
#else
using default_parking = condvar_parking;
#endif

template <class Parking = default_parking>
class event_count {
 public:
  using key = std::uint32_t;

  /// Registers the caller as a waiter. Re-check the condition after this,
  /// then call cancel_wait() or wait(key, ...).
  key prepare_wait() noexcept {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    return epoch_.load(std::memory_order_seq_cst);
  }

  /// The condition became true during the re-check: don't sleep.
  void cancel_wait() noexcept { waiters_.fetch_sub(1, std::memory_order_seq_cst); }

  /// Sleeps until a notify after prepare_wait() returned k, the timeout, or a
  /// spurious wake-up; then ends the wait. Callers re-check their condition.
  void wait(key k, park_timeout timeout) noexcept {
    parking_.wait(epoch_, k, timeout);
    waiters_.fetch_sub(1, std::memory_order_seq_cst);
  }

  /// Wakes up to `count` waiters, if there are any. Call after the seq_cst
  /// write that made the condition true.
  void notify(int count) noexcept {
    if (waiters_.load(std::memory_order_seq_cst) != 0) wake(count);
  }

  void notify_all() noexcept { notify(INT_MAX); }

  /// Threads between prepare_wait() and the end of their wait (a snapshot).
  std::uint32_t waiting() const noexcept { return waiters_.load(std::memory_order_relaxed); }

 private:
  // Kept out of notify() so that the common case — nobody waits — stays a
  // load and a branch that inlines into every push and pop.
  void wake(int count) noexcept {
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    parking_.wake(epoch_, count);
  }

  std::atomic<std::uint32_t> epoch_{0};
  std::atomic<std::uint32_t> waiters_{0};
  [[no_unique_address]] Parking parking_;
};

/// One step of a spin loop: tells the core we are spinning (frees pipeline
/// resources for a hyper-thread sibling, saves power).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace keel::detail
