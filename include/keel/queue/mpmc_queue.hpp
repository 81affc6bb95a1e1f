// keel/queue/mpmc_queue.hpp — a bounded multi-producer multi-consumer queue
// whose idle consumers sleep, and which shuts down without losing work.
//
// Heavy async work (batch summarisation, bulk embedding) is handed from
// request threads to workers through it. It is bounded, so a burst turns into
// back-pressure (errc::queue_full → HTTP 503) instead of memory growth;
// blocked producers and consumers sleep instead of spinning; close() lets the
// workers drain what was accepted and then tells them to stop.
//
//   keel::mpmc_queue<job> jobs(1024);
//
//   // request thread: never blocks
//   if (auto r = jobs.try_push(std::move(j)); !r) return r.error();   // queue_full / queue_closed
//
//   // worker thread: sleeps while idle, ends after close() once drained
//   std::vector<job> batch;
//   while (jobs.pop_batch(std::back_inserter(batch), 32)) { run(batch); batch.clear(); }
//
//   // shutdown
//   jobs.close();  // later pushes fail, every waiter wakes, workers drain and return
//
// Outcomes are values. push: success, queue_full (no room now, or none before
// the deadline), queue_closed. pop: an item, queue_closed (closed *and*
// drained), or queue_empty (nothing before the deadline — try_pop is pop with
// the deadline "now").
//
// Guarantees
// - Capacity is rounded up to a power of two, at least 2 (capacity() says).
// - Every accepted item is popped exactly once, or destroyed exactly once by
//   ~mpmc_queue if still queued. close() does not drop anything: a push that
//   succeeded — even one racing with close() — is visible to consumers, who
//   see queue_closed only after the last accepted item was taken.
// - FIFO per producer: items of one producer are taken in the order it pushed
//   them, and one consumer receives them in that order. Positions are handed
//   out by one counter, so the queue is linearizable for pushes and pops
//   that do not overlap in time (it is Vyukov's array queue).
// - try_push/try_pop never block and never allocate. A pop waits only while
//   a producer that already claimed the next position finishes writing it
//   (the "blocking window" every sequence-number array queue has).
//
// Algorithm (cited, not copied): the bounded MPMC queue of Dmitry Vyukov
// (1024cores.net) — each slot carries a sequence number that says whose turn
// it is: `pos` when free for the producer of position pos, `pos + 1` when full
// for its consumer, `pos + capacity` once freed for the next lap. Producers and
// consumers claim positions with one CAS on tail or head, so try operations
// can fail without having claimed anything (rigtorp/MPMCQueue and atomic_queue
// use the same turn idea; their blocking push takes a ticket with fetch_add
// and spins on it, which a deadline could not abandon). Slots are each one
// cache line apart (like rigtorp's; atomic_queue remaps indices instead to keep
// small items dense), head and tail two lines apart. Batches claim several
// consecutive ready positions with a single CAS.
//
// Blocking: a waiter tries, spins briefly, then sleeps on an event count
// (detail/event_count.hpp) — a futex on Linux, a condition variable elsewhere —
// with a timeout taken from the deadline. The close flag is the top bit of the
// tail counter, so "closed" and "the last accepted position" change together
// in one atomic operation. Notifying costs one load of a shared cache line
// unless someone sleeps.
#pragma once

#include <keel/core/clock.hpp>
#include <keel/core/detail/cache_line.hpp>
#include <keel/core/detail/fatal.hpp>
#include <keel/core/error.hpp>
#include <keel/core/result.hpp>
#include <keel/queue/detail/event_count.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <thread>
#include <type_traits>
#include <utility>

namespace keel {

/// A snapshot of a queue, for metrics and autoscaling on queue depth.
struct queue_stats {
  std::size_t capacity = 0;           ///< after rounding
  std::size_t size = 0;               ///< items queued (exact when nobody pushes or pops)
  std::size_t waiting_consumers = 0;  ///< threads asleep (or about to sleep) in pop
  std::size_t waiting_producers = 0;  ///< threads asleep (or about to sleep) in push
  bool closed = false;
};

namespace detail {

/// How long until `deadline` on `clk`: nullopt for time_point::max() (wait
/// forever), zero or less when it has passed. Saturates instead of
/// overflowing when the clock stands far from the deadline (manual clocks).
template <clock Clock>
park_timeout time_left(const Clock& clk, typename Clock::time_point deadline) noexcept {
  using duration = typename Clock::duration;
  using rep = typename duration::rep;
  if (deadline == Clock::time_point::max()) return std::nullopt;
  const auto now = clk.now();
  if (!(now < deadline)) return std::chrono::nanoseconds::zero();
  constexpr auto slice = std::chrono::duration_cast<duration>(std::chrono::hours(1));
  duration left = slice;
  if constexpr (std::is_integral_v<rep>) {
    // deadline > now, so the difference fits in the unsigned type even when
    // the signed subtraction would overflow.
    using urep = std::make_unsigned_t<rep>;
    const urep diff =
        static_cast<urep>(deadline.time_since_epoch().count()) - static_cast<urep>(now.time_since_epoch().count());
    if (diff < static_cast<urep>(slice.count())) left = duration(static_cast<rep>(diff));
  } else {
    left = std::min<duration>(deadline - now, slice);
  }
  return std::chrono::ceil<std::chrono::nanoseconds>(left);
}

}  // namespace detail

template <class T, clock Clock = std::chrono::steady_clock>
class mpmc_queue {
  static_assert(std::is_object_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T> && !std::is_array_v<T>,
                "keel::mpmc_queue<T>: T must be a non-const object type; to queue references, queue pointers or "
                "std::reference_wrapper, and wrap arrays in std::array");
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "keel::mpmc_queue<T>: T must be nothrow move constructible, because the queue moves items in and "
                "out after a slot is claimed and cannot undo a move that throws; mark T's move constructor "
                "noexcept, or queue std::unique_ptr<T>");
  static_assert(std::is_nothrow_destructible_v<T>, "keel::mpmc_queue<T>: T's destructor must not throw");

 public:
  using value_type = T;
  using clock_type = Clock;
  using time_point = typename Clock::time_point;

  /// A queue holding at least `capacity` items (rounded up to a power of two,
  /// minimum 2). Allocates all slots now; nothing allocates afterwards.
  explicit mpmc_queue(std::size_t capacity, Clock clk = Clock{}) : clock_(std::move(clk)) {
    detail::require_config(capacity >= 1, "keel::queue: capacity must be at least 1");
    detail::require_config(capacity <= max_capacity, "keel::queue: capacity must be at most 2^62");
    capacity_ = std::bit_ceil(std::max<std::uint64_t>(capacity, 2));
    slots_.reset(new slot[static_cast<std::size_t>(capacity_)]);
    for (std::uint64_t i = 0; i < capacity_; ++i) slots_[i].sequence.store(i, std::memory_order_relaxed);
  }

  mpmc_queue(const mpmc_queue&) = delete;
  mpmc_queue& operator=(const mpmc_queue&) = delete;

  /// Destroys the items still queued. No thread may use the queue any more.
  ~mpmc_queue() {
    if constexpr (!std::is_trivially_destructible_v<T>) {
      const std::uint64_t end = tail_.load(std::memory_order_acquire) & ~closed_bit;
      for (std::uint64_t p = head_.load(std::memory_order_acquire); p != end; ++p) slot_at(p).destroy();
    }
  }

  // --- producers -------------------------------------------------------------

  /// Enqueues `item` if there is room now: success, queue_full or
  /// queue_closed. On failure `item` is left untouched.
  result<void> try_push(T&& item) noexcept { return emplace_now(std::move(item)); }

  result<void> try_push(const T& item) { return try_emplace(item); }

  /// Constructs an item from `args` if there is room now. If T's constructor
  /// from `args` may throw, the item is built before a slot is claimed (a
  /// throw then leaves the queue untouched), so rvalue args are consumed even
  /// when the result is queue_full.
  template <class... Args>
  result<void> try_emplace(Args&&... args) noexcept(std::is_nothrow_constructible_v<T, Args&&...>) {
    static_assert(std::is_constructible_v<T, Args&&...>,
                  "keel::mpmc_queue: T cannot be constructed from these arguments (pushing an lvalue of a move-only "
                  "T copies it: std::move it in)");
    if constexpr (std::is_nothrow_constructible_v<T, Args&&...>) {
      return emplace_now(std::forward<Args>(args)...);
    } else {
      T item(std::forward<Args>(args)...);
      return emplace_now(std::move(item));
    }
  }

  /// Enqueues, waiting for room until `deadline`: success, queue_full (still
  /// full at the deadline) or queue_closed. `item` is moved from only on success.
  result<void> push(T&& item, time_point deadline) {
    return wait_until(
        not_full_, deadline, [&] { return emplace_now(std::move(item)); }, [&] { return has_room(); });
  }
  result<void> push(T&& item) { return push(std::move(item), time_point::max()); }

  result<void> push(const T& item, time_point deadline) {
    static_assert(std::is_copy_constructible_v<T>, "keel::mpmc_queue: T is move-only: std::move the item in");
    return push(T(item), deadline);
  }
  result<void> push(const T& item) { return push(item, time_point::max()); }

  /// Enqueues as many of `items`, in order, as fit now, moving them from the
  /// span: the count (a prefix of `items`; 0 only for an empty span),
  /// queue_full when not even the first fits, or queue_closed. One CAS for the
  /// whole batch.
  result<std::size_t> try_push_batch(std::span<T> items) noexcept {
    if (items.empty()) return std::size_t{0};
    const claimed c = claim(tail_, 0, items.size());
    if (c.count == 0) return reject((c.first & closed_bit) ? errc::queue_closed : errc::queue_full);
    for (std::uint64_t i = 0; i < c.count; ++i) publish(c.first + i, std::move(items[static_cast<std::size_t>(i)]));
    not_empty_.notify(notify_count(c.count));
    return static_cast<std::size_t>(c.count);
  }

  // --- consumers -------------------------------------------------------------

  /// Dequeues the oldest item if there is one now; otherwise queue_closed
  /// (closed and drained) or queue_empty.
  result<T> try_pop() noexcept {
    const claimed c = claim(head_, 1, 1);
    if (c.count == 0) return empty_or_closed(c.first);
    slot& s = slot_at(c.first);
    result<T> out(std::in_place, std::move(s.item()));
    release(c.first);
    not_full_.notify(1);
    return out;
  }

  /// Dequeues, waiting until `deadline` for an item: the item, queue_closed
  /// once closed and drained, or queue_empty.
  result<T> pop(time_point deadline) {
    return wait_until(
        not_empty_, deadline, [&] { return try_pop(); }, [&] { return has_items(); });
  }
  result<T> pop() { return pop(time_point::max()); }

  /// Moves up to `max` ready items, oldest first, to `out` without waiting:
  /// their count (≥ 1), queue_closed, or queue_empty.
  /// One CAS for the whole batch. If writing to `out` throws, the items not
  /// yet written are destroyed and the queue stays consistent (reserve first).
  template <std::output_iterator<T&&> Out>
  result<std::size_t> try_pop_batch(Out& out, std::size_t max) {
    if (max == 0) return std::size_t{0};
    const claimed c = claim(head_, 1, max);
    if (c.count == 0) return empty_or_closed(c.first);
    hand_over(c.first, c.count, out);
    return static_cast<std::size_t>(c.count);
  }

  /// Waits until `deadline` for the first item, then takes up to `max` items
  /// in all that are ready, without waiting for more. Returns the count (0
  /// only when max is 0), queue_closed, or queue_empty.
  template <std::output_iterator<T&&> Out>
  result<std::size_t> pop_batch(Out out, std::size_t max, time_point deadline) {
    return wait_until(
        not_empty_, deadline, [&] { return try_pop_batch(out, max); }, [&] { return has_items(); });
  }
  template <std::output_iterator<T&&> Out>
  result<std::size_t> pop_batch(Out out, std::size_t max) {
    return pop_batch(std::move(out), max, time_point::max());
  }

  // --- shutdown and observation ----------------------------------------------

  /// Refuses every later push (queue_closed) and wakes every waiter. Items
  /// already accepted stay poppable; pops return queue_closed once they are
  /// gone. Idempotent, never blocks.
  void close() noexcept {
    closing_.store(true, std::memory_order_seq_cst);
    tail_.fetch_or(closed_bit, std::memory_order_seq_cst);
    not_empty_.notify_all();
    not_full_.notify_all();
  }

  bool closed() const noexcept { return (tail_.load(std::memory_order_acquire) & closed_bit) != 0; }

  std::size_t capacity() const noexcept { return static_cast<std::size_t>(capacity_); }

  /// Items queued: a snapshot, exact when nobody pushes or pops.
  std::size_t size() const noexcept {
    const std::uint64_t head = head_.load(std::memory_order_acquire);
    const std::uint64_t tail = tail_.load(std::memory_order_acquire) & ~closed_bit;
    return static_cast<std::size_t>(std::min(tail - head, capacity_));
  }
  bool empty() const noexcept { return size() == 0; }

  queue_stats stats() const noexcept {
    return queue_stats{capacity(), size(), not_empty_.waiting(), not_full_.waiting(), closed()};
  }

 private:
  static constexpr std::uint64_t closed_bit = std::uint64_t{1} << 63;
  static constexpr std::uint64_t max_capacity = std::uint64_t{1} << 62;
  static constexpr int spin_limit = 16;

  struct alignas(detail::cache_line) slot {
    std::atomic<std::uint64_t> sequence{0};
    alignas(T) std::byte storage[sizeof(T)];

    T& item() noexcept { return *std::launder(reinterpret_cast<T*>(storage)); }
    void destroy() noexcept { item().~T(); }
  };

  /// Positions [first, first + count) now belong to the caller; count == 0
  /// means nothing was ready at `first` (for tail, `first` carries the close bit).
  struct claimed {
    std::uint64_t first;
    std::uint64_t count;
  };

  slot& slot_at(std::uint64_t pos) const noexcept { return slots_[static_cast<std::size_t>(pos & (capacity_ - 1))]; }

  /// Claims up to `want` consecutive positions of `index` whose slots are
  /// ready — sequence == position + `turn` (0: free for a producer, 1: full
  /// for a consumer) — with one CAS. The CAS is seq_cst: it is the write the
  /// event count's no-lost-wake-up argument is about.
  claimed claim(std::atomic<std::uint64_t>& index, std::uint64_t turn, std::uint64_t want) noexcept {
    std::uint64_t pos = index.load(std::memory_order_relaxed);
    for (;;) {
      if (pos & closed_bit) return {pos, 0};
      const auto lag = static_cast<std::int64_t>(slot_at(pos).sequence.load(std::memory_order_acquire) - (pos + turn));
      if (lag < 0) return {pos, 0};  // the previous lap has not finished with this slot: full / empty
      if (lag > 0) {                 // another thread took `pos` since we read it
        pos = index.load(std::memory_order_relaxed);
        continue;
      }
      std::uint64_t n = 1;
      while (n < want && slot_at(pos + n).sequence.load(std::memory_order_acquire) == pos + n + turn) ++n;
      // On success no one else can touch the n slots: changing any of them
      // needs a claim on a position in [pos, pos + n), which this CAS took.
      if (index.compare_exchange_weak(pos, pos + n, std::memory_order_seq_cst, std::memory_order_relaxed)) {
        return {pos, n};
      }
    }
  }

  template <class... Args>
  result<void> emplace_now(Args&&... args) noexcept {
    const claimed c = claim(tail_, 0, 1);
    if (c.count == 0) return reject((c.first & closed_bit) ? errc::queue_closed : errc::queue_full);
    publish(c.first, std::forward<Args>(args)...);
    not_empty_.notify(1);
    return {};
  }

  template <class... Args>
  void publish(std::uint64_t pos, Args&&... args) noexcept {
    slot& s = slot_at(pos);
    ::new (static_cast<void*>(s.storage)) T(std::forward<Args>(args)...);
    s.sequence.store(pos + 1, std::memory_order_release);
  }

  /// Destroys the item at `pos` and hands the slot to the producer of the next lap.
  void release(std::uint64_t pos) noexcept {
    slot& s = slot_at(pos);
    s.destroy();
    s.sequence.store(pos + capacity_, std::memory_order_release);
  }

  template <class Out>
  void hand_over(std::uint64_t first, std::uint64_t count, Out& out) {
    // Each slot is released as soon as its item is moved out. If writing to
    // `out` throws, the guard releases (and so destroys) the rest; either way
    // it then wakes the producers waiting for the freed slots.
    struct release_rest {
      mpmc_queue& queue;
      std::uint64_t next;
      std::uint64_t end;
      std::uint64_t freed;
      ~release_rest() {
        for (; next != end; ++next) queue.release(next);
        queue.not_full_.notify(notify_count(freed));
      }
    } guard{*this, first, first + count, count};
    while (guard.next != guard.end) {
      const std::uint64_t pos = guard.next++;
      T item(std::move(slot_at(pos).item()));
      release(pos);
      *out = std::move(item);
      ++out;
    }
  }

  static int notify_count(std::uint64_t n) noexcept { return static_cast<int>(std::min<std::uint64_t>(n, INT_MAX)); }

  rejection empty_or_closed(std::uint64_t head) const noexcept {
    // Closed with the final tail equal to our head: every accepted item is
    // taken. closing_ (set just before the close bit) spares a consumer that
    // polls an open, empty queue from pulling the producers' tail line.
    if (closing_.load(std::memory_order_acquire) && tail_.load(std::memory_order_acquire) == (head | closed_bit)) {
      return reject(errc::queue_closed);
    }
    return reject(errc::queue_empty);
  }

  // The re-checks between prepare_wait() and wait(): seq_cst loads, see event_count.hpp.
  bool has_items() const noexcept {
    const std::uint64_t tail = tail_.load(std::memory_order_seq_cst);
    return (tail & closed_bit) != 0 || tail != head_.load(std::memory_order_seq_cst);
  }
  bool has_room() const noexcept {
    const std::uint64_t tail = tail_.load(std::memory_order_seq_cst);
    return (tail & closed_bit) != 0 || tail - head_.load(std::memory_order_seq_cst) < capacity_;
  }

  template <class R>
  static bool settled(const R& r) noexcept {
    return r.has_value() || r.error().code == errc::queue_closed;
  }

  /// Retries `attempt` until it succeeds, the queue is closed or `deadline`
  /// passes (then returns the last failure): first spinning briefly, then
  /// sleeping on `ec`. A woken waiter always retries before it looks at the
  /// clock, so a wake-up is never spent on a thread that then gives up.
  template <class Attempt, class Ready>
  auto wait_until(detail::event_count<>& ec, time_point deadline, Attempt&& attempt, Ready&& ready) {
    auto r = attempt();
    if (settled(r)) return r;
    for (int spin = 0; spin < spin_limit; ++spin) {
      detail::cpu_relax();
      r = attempt();
      if (settled(r)) return r;
    }
    for (;;) {
      const detail::park_timeout left = detail::time_left(clock_, deadline);
      if (left && left->count() <= 0) return r;
      const auto key = ec.prepare_wait();
      if (ready()) {
        // Something is in flight (an item being written, a slot being freed)
        // or the queue closed: retry rather than sleep.
        ec.cancel_wait();
        std::this_thread::yield();
      } else {
        ec.wait(key, left);
      }
      r = attempt();
      if (settled(r)) return r;
    }
  }

  // Read-mostly: shared by every thread, written only at construction.
  std::unique_ptr<slot[]> slots_;
  std::uint64_t capacity_ = 0;
  [[no_unique_address]] Clock clock_;
  std::atomic<bool> closing_{false};  // written once, by close()

  // Each written by its own side; two cache lines apart against false sharing
  // and the adjacent-line prefetcher.
  alignas(2 * detail::cache_line) std::atomic<std::uint64_t> tail_{0};  // next push position | closed_bit
  alignas(2 * detail::cache_line) std::atomic<std::uint64_t> head_{0};  // next pop position
  // Read on every push (not_empty_) or pop (not_full_), written only by sleepers.
  alignas(2 * detail::cache_line) detail::event_count<> not_empty_;
  alignas(2 * detail::cache_line) detail::event_count<> not_full_;
};

}  // namespace keel
