// keel/limit/bulkhead.hpp — at most N calls in flight (a concurrency limit).
//
// A rate limit bounds how fast calls start; a bulkhead bounds how many run at
// once — what protects a GPU server with a fixed number of batch slots, or a
// pool of connections to a vector store. Admission is one CAS on a counter;
// the permit gives the slot back when it is released or destroyed.
//
//   keel::bulkhead slots{8};
//   auto p = slots.try_acquire();                    // never blocks
//   if (!p) return p.error();                        // errc::overloaded (503)
//   auto q = slots.acquire_for(std::chrono::milliseconds(50));  // or wait, bounded
//   ... call ...                                     // p releases the slot when it goes
//
// Waiting sleeps on a condition variable, never spins. Releases take the
// waiters' mutex only when someone waits, so the uncontended path is two
// atomic read-modify-writes. The wait is real time (a bulkhead measures no
// time of its own, so it takes no Clock): acquire_for(d) gives up after d of
// std::chrono::steady_clock, like std::counting_semaphore::try_acquire_for.
#pragma once

#include <keel/core/detail/cache_line.hpp>
#include <keel/core/detail/fatal.hpp>
#include <keel/core/permit.hpp>
#include <keel/core/result.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace keel {

struct bulkhead_stats {
  std::size_t max_in_flight = 0;
  std::size_t in_flight = 0;
  std::size_t waiting = 0;  ///< callers blocked in acquire_for now
};

class bulkhead {
 public:
  /// One slot of a bulkhead; released by release() or when destroyed (a
  /// dropped permit frees its slot — it never leaks capacity).
  class permit {
   public:
    permit(permit&&) noexcept = default;
    permit& operator=(permit&& other) noexcept { return detail::replace_permit(*this, std::move(other)); }
    ~permit() { release(); }

    bool active() const noexcept { return link_.active(); }
    /// Frees the slot now; later calls do nothing.
    void release() noexcept {
      if (bulkhead* owner = link_.take()) owner->release();
    }

   private:
    friend class bulkhead;
    explicit permit(bulkhead* owner) noexcept : link_(owner) {}
    detail::permit_link<bulkhead> link_;
  };

  explicit bulkhead(std::size_t max_in_flight) : max_(static_cast<std::int64_t>(max_in_flight)) {
    detail::require_config(max_in_flight >= 1, "keel::bulkhead: max_in_flight must be at least 1");
    detail::require_config(max_in_flight <= (std::size_t{1} << 62),
                           "keel::bulkhead: max_in_flight must be at most 2^62");
  }
  bulkhead(const bulkhead&) = delete;
  bulkhead& operator=(const bulkhead&) = delete;

  /// Takes a slot now, or errc::overloaded.
  result<permit> try_acquire() noexcept {
    if (!take()) return reject(errc::overloaded, "keel::bulkhead: all slots in use");
    return permit(this);
  }

  /// Takes a slot, waiting at most max_wait for one to be released.
  template <class Rep, class Period>
  result<permit> acquire_for(std::chrono::duration<Rep, Period> max_wait) {
    if (take()) return permit(this);
    if (max_wait <= max_wait.zero()) return reject(errc::overloaded, "keel::bulkhead: all slots in use");
    // Waits beyond a century are a century: converting duration::max() to
    // nanoseconds and adding it to now would overflow.
    constexpr std::chrono::hours century(24 * 365 * 100);
    const auto wait = std::chrono::duration<double>(max_wait) < century
                          ? std::chrono::ceil<std::chrono::steady_clock::duration>(max_wait)
                          : std::chrono::duration_cast<std::chrono::steady_clock::duration>(century);
    const auto deadline = std::chrono::steady_clock::now() + wait;
    std::unique_lock lock(mutex_);
    // Announce the wait before checking again: a release that misses the
    // announcement happened before the check, which then succeeds (both are
    // sequentially consistent, the Dekker pattern); one that sees it notifies
    // under the mutex, which it cannot take until this thread waits.
    waiting_.fetch_add(1);
    const bool got = cv_.wait_until(lock, deadline, [this] { return take(); });
    waiting_.fetch_sub(1);
    if (!got) return reject(errc::overloaded, "keel::bulkhead: no slot freed within the wait");
    return permit(this);
  }

  std::size_t in_flight() const noexcept { return static_cast<std::size_t>(in_flight_.value.load()); }
  std::size_t max_in_flight() const noexcept { return static_cast<std::size_t>(max_); }

  bulkhead_stats stats() const noexcept {
    return {max_in_flight(), in_flight(), static_cast<std::size_t>(waiting_.load())};
  }

 private:
  bool take() noexcept {
    std::int64_t n = in_flight_.value.load(std::memory_order_relaxed);
    do {
      if (n >= max_) return false;
    } while (!in_flight_.value.compare_exchange_weak(n, n + 1));
    return true;
  }

  void release() noexcept {
    in_flight_.value.fetch_sub(1);
    if (waiting_.load() > 0) {
      std::lock_guard lock(mutex_);
      cv_.notify_one();
    }
  }

  detail::padded<std::atomic<std::int64_t>> in_flight_{0};
  const std::int64_t max_;
  alignas(detail::cache_line) std::atomic<std::int64_t> waiting_{0};
  std::mutex mutex_;
  std::condition_variable cv_;
};

static_assert(keel::permit<bulkhead::permit>);

}  // namespace keel
