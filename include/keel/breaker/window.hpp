// keel/breaker/window.hpp — the sliding windows a circuit breaker judges by.
//
// A breaker decides from the recent calls: how many there were, how many
// failed, how many were slow. Which calls count as "recent" is a policy, given
// as circuit_breaker's Window template parameter:
//
//   count_window{100}                          // the last 100 calls
//   time_window{std::chrono::seconds(30), 10}  // the calls of the last 30 s, in 10 buckets of 3 s
//
//   keel::circuit_breaker<keel::time_window> b{cfg, keel::time_window{std::chrono::seconds(30), 10}};
//
// Both record in O(1) with memory fixed at construction, as Resilience4j's
// FixedSizeSlidingWindowMetrics and SlidingTimeWindowMetrics do (a ring of
// outcomes; a ring of per-bucket partial sums and a running total). Unlike
// Resilience4j, which takes a lock on every record, count_window records
// without one:
//
//  * each slot of the ring holds one outcome byte; a record claims the next
//    slot with one fetch_add on the head and, when the outcome differs from
//    the one it evicts, updates the three counts packed in one 64-bit word
//    (21 bits each) with two fetch_adds;
//  * the steady state of a healthy dependency writes nothing: when the window
//    holds N fast successes and the call is another one, every slot it could
//    replace holds the same outcome, so the record is one load of the totals
//    and returns — no shared cache line is written, and the closed path scales
//    across cores;
//  * a new outcome is added to the totals before it is published in its slot,
//    and subtracted only by whoever takes it out of the slot afterwards, so no
//    packed count ever goes below zero, even transiently. Under concurrency
//    the totals may count a call that is being recorded right now on top of
//    the last N (at most one per recording thread); single-threaded they are
//    exact.
//
// time_window rolls its buckets forward with the clock on record and on read,
// under a small mutex that only recorders and readers of this window share
// (admission never takes it). A clock that goes backwards is treated as
// standing still: the call lands in the newest bucket. A clock that jumps more
// than the window ahead empties it in one step. See docs/circuit-breaking.md for the
// benchmark that weighs the two.
#pragma once

#include <keel/core/detail/cache_line.hpp>
#include <keel/core/detail/fatal.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <memory>
#include <mutex>

namespace keel {

/// The calls a window currently holds.
struct window_totals {
  std::uint32_t calls = 0;
  std::uint32_t failures = 0;
  std::uint32_t slow_calls = 0;

  friend constexpr bool operator==(const window_totals&, const window_totals&) = default;
};

namespace detail {

/// One recorded call as a byte: bit 0 "a call", bit 1 failed, bit 2 slow.
/// Zero is an empty slot.
enum class sample : std::uint8_t {};

constexpr sample make_sample(bool failed, bool slow) noexcept {
  return static_cast<sample>(1u | (failed ? 2u : 0u) | (slow ? 4u : 0u));
}
constexpr bool failed(sample s) noexcept { return (static_cast<unsigned>(s) & 2u) != 0; }
constexpr bool slow(sample s) noexcept { return (static_cast<unsigned>(s) & 4u) != 0; }

/// What a record did: the totals just after it, and whether they changed
/// (only then can a threshold have been crossed).
struct window_update {
  window_totals totals;
  bool changed = false;
};

// Three 21-bit counts in one word: calls | failures << 21 | slow << 42.
inline constexpr unsigned count_bits = 21;
inline constexpr std::uint64_t count_mask = (std::uint64_t{1} << count_bits) - 1;

constexpr std::uint64_t packed(sample s) noexcept {
  const auto v = static_cast<std::uint64_t>(s);
  if (v == 0) return 0;
  return 1u | (((v >> 1) & 1u) << count_bits) | (((v >> 2) & 1u) << (2 * count_bits));
}
constexpr window_totals unpack(std::uint64_t w) noexcept {
  return {static_cast<std::uint32_t>(w & count_mask), static_cast<std::uint32_t>((w >> count_bits) & count_mask),
          static_cast<std::uint32_t>((w >> (2 * count_bits)) & count_mask)};
}

}  // namespace detail

/// The last `size` calls (Resilience4j's COUNT_BASED window). size ≤ 2^20.
struct count_window {
  std::uint32_t size = 100;

  static constexpr std::uint32_t max_size = std::uint32_t{1} << 20;

  /// The window's live state; built by the breaker from this configuration.
  class recorder {
   public:
    static constexpr bool reads_clock = false;

    explicit recorder(const count_window& w) : size_(w.size) {
      detail::require_config(w.size >= 1 && w.size <= max_size,
                             "keel::breaker: count_window size must be in [1, 2^20]");
      slots_ = std::make_unique<std::atomic<std::uint8_t>[]>(size_);
      for (std::uint32_t i = 0; i < size_; ++i) slots_[i].store(0, std::memory_order_relaxed);
    }

    /// The most calls the window can hold.
    std::uint64_t capacity() const noexcept { return size_; }

    detail::window_update record(detail::sample s, std::int64_t /*now_ns*/) noexcept {
      const auto code = static_cast<std::uint8_t>(s);
      // A healthy window (N fast successes) and another fast success: whichever
      // slot it would replace holds the same outcome, so nothing changes and
      // nothing is written — the shared lines stay read-only on every core.
      if (code == fast_success && totals_.value.load(std::memory_order_relaxed) == size_) return {};
      const std::uint64_t i = head_.value.fetch_add(1, std::memory_order_relaxed) % size_;
      // A healthy dependency replaces success with success: claim nothing, the totals stand.
      if (slots_[i].load(std::memory_order_relaxed) == code) return {};
      const std::uint64_t add = detail::packed(s);
      totals_.value.fetch_add(add, std::memory_order_relaxed);  // before it can be evicted
      const auto old = static_cast<detail::sample>(slots_[i].exchange(code, std::memory_order_acq_rel));
      const std::uint64_t sub = detail::packed(old);
      const std::uint64_t after = totals_.value.fetch_sub(sub, std::memory_order_acq_rel) - sub;
      return {detail::unpack(after), add != sub};
    }

    window_totals totals(std::int64_t /*now_ns*/) const noexcept {
      return detail::unpack(totals_.value.load(std::memory_order_acquire));
    }

    /// Forgets every call. Records racing with it may survive (at most one per recording thread).
    void clear() noexcept {
      for (std::uint32_t i = 0; i < size_; ++i) {
        const auto old = static_cast<detail::sample>(slots_[i].exchange(0, std::memory_order_acq_rel));
        if (const std::uint64_t sub = detail::packed(old)) totals_.value.fetch_sub(sub, std::memory_order_acq_rel);
      }
    }

   private:
    static constexpr std::uint8_t fast_success = static_cast<std::uint8_t>(detail::make_sample(false, false));

    std::uint32_t size_;
    std::unique_ptr<std::atomic<std::uint8_t>[]> slots_;
    detail::padded<std::atomic<std::uint64_t>> head_{};
    detail::padded<std::atomic<std::uint64_t>> totals_{};
  };
};

/// The calls of the last `length`, kept in `buckets` buckets of length/buckets
/// each (Resilience4j's TIME_BASED window, which has one bucket per second).
/// The window ends at the current bucket, so it spans between
/// length − length/buckets and length of history.
struct time_window {
  std::chrono::nanoseconds length = std::chrono::seconds(60);
  std::uint32_t buckets = 10;

  static constexpr std::uint32_t max_buckets = 4096;

  class recorder {
   public:
    static constexpr bool reads_clock = true;

    explicit recorder(const time_window& w) : buckets_(w.buckets) {
      detail::require_config(w.buckets >= 1 && w.buckets <= max_buckets,
                             "keel::breaker: time_window buckets must be in [1, 4096]");
      detail::require_config(w.length.count() >= static_cast<std::int64_t>(w.buckets),
                             "keel::breaker: time_window length must be positive and at least 1 ns per bucket");
      bucket_ns_ = w.length.count() / static_cast<std::int64_t>(w.buckets);
      counts_ = std::make_unique<window_totals[]>(buckets_);
    }

    std::uint64_t capacity() const noexcept { return count_limit; }

    detail::window_update record(detail::sample s, std::int64_t now_ns) noexcept {
      const std::lock_guard<std::mutex> lock(mutex_);
      roll(now_ns);
      if (total_.calls >= count_limit) return {total_, false};  // saturated: the rates stand
      window_totals& b = counts_[slot(newest_)];
      const std::uint32_t f = detail::failed(s) ? 1 : 0;
      const std::uint32_t sl = detail::slow(s) ? 1 : 0;
      b.calls += 1, b.failures += f, b.slow_calls += sl;
      total_.calls += 1, total_.failures += f, total_.slow_calls += sl;
      return {total_, true};
    }

    window_totals totals(std::int64_t now_ns) const noexcept {
      const std::lock_guard<std::mutex> lock(mutex_);
      roll(now_ns);
      return total_;
    }

    void clear() noexcept {
      const std::lock_guard<std::mutex> lock(mutex_);
      std::fill_n(counts_.get(), buckets_, window_totals{});
      total_ = {};
    }

   private:
    // Counts are reported as 32-bit; a window never holds more calls than this.
    static constexpr std::uint32_t count_limit = 0xffff'ffffu;

    static std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
      return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
    }

    // The ring slot of bucket k (k may be negative: a clock's epoch is arbitrary).
    std::size_t slot(std::int64_t k) const noexcept {
      const auto b = static_cast<std::int64_t>(buckets_);
      return static_cast<std::size_t>((k % b + b) % b);
    }

    // Evicts the buckets that fell out of the window since the newest one.
    void roll(std::int64_t now_ns) const noexcept {
      const std::int64_t k = floor_div(now_ns, bucket_ns_);
      if (!started_) {
        newest_ = k, started_ = true;
        return;
      }
      if (k <= newest_) return;  // the clock stood still or went back: stay in the newest bucket
      // k > newest_, so the unsigned difference is exact even across the whole int64 range.
      if (static_cast<std::uint64_t>(k) - static_cast<std::uint64_t>(newest_) >= buckets_) {
        std::fill_n(counts_.get(), buckets_, window_totals{});
        total_ = {};
      } else {
        for (std::int64_t j = newest_ + 1; j <= k; ++j) {
          window_totals& b = counts_[slot(j)];
          total_.calls -= b.calls, total_.failures -= b.failures, total_.slow_calls -= b.slow_calls;
          b = {};
        }
      }
      newest_ = k;
    }

    std::uint32_t buckets_;
    std::int64_t bucket_ns_ = 1;
    mutable std::mutex mutex_;
    mutable std::unique_ptr<window_totals[]> counts_;
    mutable window_totals total_{};
    mutable std::int64_t newest_ = 0;
    mutable bool started_ = false;
  };
};

/// A Window policy for circuit_breaker: a configuration type with a nested
/// `recorder` built from it (see count_window, time_window).
template <class W>
concept sliding_window = std::copy_constructible<W> && std::constructible_from<typename W::recorder, const W&> &&
    requires(typename W::recorder& r, const typename W::recorder& cr, detail::sample s) {
  { W::recorder::reads_clock } -> std::convertible_to<bool>;
  { r.record(s, std::int64_t{}) } -> std::same_as<detail::window_update>;
  { cr.totals(std::int64_t{}) } -> std::same_as<window_totals>;
  { cr.capacity() } -> std::same_as<std::uint64_t>;
  r.clear();
};

static_assert(sliding_window<count_window>);
static_assert(sliding_window<time_window>);

}  // namespace keel
