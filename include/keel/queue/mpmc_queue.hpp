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
//   At most that many items are queued, across all lanes (an item leaves
//   the count once a pop has claimed it).
// - Every accepted item is popped exactly once, or destroyed exactly once by
//   ~mpmc_queue if still queued. close() does not drop anything: a push that
//   succeeded — even one racing with close() — is visible to consumers, who
//   see queue_closed only after the last accepted item was taken.
// - FIFO per producer: items of one producer are taken in the order it pushed
//   them, and one consumer receives them in that order. Across producers
//   there is no order unless the queue has one lane (queue_lanes{1}): then
//   positions are handed out by one counter and the queue is linearizable
//   for pushes and pops that do not overlap in time (Vyukov's array queue).
// - try_push/try_pop never block and never allocate. A pop waits only while
//   a producer that already claimed the next position finishes writing it
//   (the "blocking window" every sequence-number array queue has).
//
// Lanes. A single FIFO makes every push and every pop move the same cache
// lines between cores. So the queue is several rings ("lanes", one per
// hardware thread by default, at most 8), and each thread has a home lane
// for its life. A producer pushes to its home lane (which keeps its items in
// order); a consumer pops from its home lane first — a thread that pushes
// and pops keeps its items in its own cache — then from the others, and
// every 64th pop looks at the others first, in rotation, so no lane starves.
// One capacity covers all lanes through credits (see "credits" below), and
// consumers pay nothing for it. The price: memory for lanes × capacity
// slots, and no order across producers.
//
// Algorithm (cited, not copied): each lane is the bounded MPMC queue of
// Dmitry Vyukov (1024cores.net) — each slot carries a sequence number that
// says whose turn it is: `pos` when free for the producer of position pos,
// `pos + 1` when full for its consumer, `pos + capacity` once freed for the
// next lap. Producers and consumers claim positions with one CAS on tail or
// head, so try operations can fail without having claimed anything
// (rigtorp/MPMCQueue and atomic_queue use the same turn idea; their blocking
// push takes a ticket with fetch_add and spins on it, which a deadline could
// not abandon). Slots are each one cache line apart (like rigtorp's;
// atomic_queue remaps indices instead to keep small items dense), head and
// tail two lines apart. Batches claim several consecutive ready positions
// with a single CAS. Lanes with a home per thread follow moodycamel's
// per-producer sub-queues and the owner-first order of work-stealing deques.
//
// Blocking: a waiter tries, spins briefly, then sleeps on an event count
// (detail/event_count.hpp) — a futex on Linux, a condition variable elsewhere —
// with a timeout taken from the deadline. The close flag is the top bit of
// each lane's tail counter, so "closed" and "the lane's last accepted
// position" change together in one atomic operation. Notifying costs one
// load of a shared cache line unless someone sleeps.
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

/// How many lanes a queue spreads its producers over: 0 (the default) picks
/// one per hardware thread, at most 8 (fewer for very large queues, see
/// default_lanes); 1 makes one FIFO for every producer. Other counts are
/// rounded up to a power of two (at most 64).
struct queue_lanes {
  std::size_t count = 0;
};

namespace detail {

/// A thread's number among the live threads that used a keel queue: the
/// lowest number free when it first used one, given back when it exits, so
/// N threads that live together hold numbers 0..N-1 and spread evenly over
/// the lanes (a thread's home lane is its number modulo the lane count). Past
/// 64 live threads numbers are simply counted on.
class queue_thread_number {
 public:
  static constexpr std::uint32_t leased = 64;  // numbers below this are unique among live threads

  queue_thread_number() noexcept {
    std::uint64_t used = used_.load(std::memory_order_relaxed);
    while (~used != 0) {
      const int lowest = std::countr_zero(~used);
      if (used_.compare_exchange_weak(used, used | (std::uint64_t{1} << lowest), std::memory_order_relaxed)) {
        number_ = static_cast<std::uint32_t>(lowest);
        return;
      }
    }
    number_ = leased + overflow_.fetch_add(1, std::memory_order_relaxed) % (UINT32_MAX - leased);
  }
  ~queue_thread_number() {
    if (number_ < leased) used_.fetch_and(~(std::uint64_t{1} << number_), std::memory_order_relaxed);
  }
  queue_thread_number(const queue_thread_number&) = delete;
  queue_thread_number& operator=(const queue_thread_number&) = delete;

  std::uint32_t get() const noexcept { return number_; }

 private:
  static inline std::atomic<std::uint64_t> used_{0};
  static inline std::atomic<std::uint32_t> overflow_{0};
  std::uint32_t number_ = 0;
};

/// This thread's number for keel queues. The number plus one is kept in a
/// trivially destructible, constant-initialised thread_local (0: not numbered
/// yet), so reading it costs no guard; the lease, which has a destructor, is
/// touched only once per thread.
inline std::uint32_t this_queue_thread_number() noexcept {
  thread_local std::uint32_t number_plus_one = 0;
  if (number_plus_one == 0) [[unlikely]] {
    thread_local queue_thread_number lease;
    number_plus_one = lease.get() + 1;
  }
  return number_plus_one - 1;
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

  /// A queue holding at most `capacity` items (rounded up to a power of two,
  /// minimum 2) over the default number of lanes. Allocates all slots now;
  /// nothing allocates afterwards.
  explicit mpmc_queue(std::size_t capacity, Clock clk = Clock{})
      : mpmc_queue(capacity, queue_lanes{}, std::move(clk)) {}

  /// As above with `lanes.count` lanes; queue_lanes{1} is a single FIFO.
  mpmc_queue(std::size_t capacity, queue_lanes lanes, Clock clk = Clock{}) : clock_(std::move(clk)) {
    detail::require_config(capacity >= 1, "keel::queue: capacity must be at least 1");
    detail::require_config(capacity <= max_capacity, "keel::queue: capacity must be at most 2^62");
    detail::require_config(lanes.count <= max_lanes, "keel::queue: lanes.count must be at most 64");
    capacity_ = std::bit_ceil(std::max<std::uint64_t>(capacity, 2));
    lane_count_ = lanes.count != 0 ? std::bit_ceil(lanes.count) : default_lanes(capacity_);
    detail::require_config(capacity_ <= max_capacity / lane_count_,
                           "keel::queue: capacity times lanes.count must be at most 2^62");
    lane_mask_ = lane_count_ - 1;
    slots_.reset(new slot[static_cast<std::size_t>(capacity_ * lane_count_)]);
    lanes_.reset(new lane[lane_count_]);
    if (lane_count_ > 1)
      pops_.reset(new detail::padded<std::atomic<std::uint32_t>>[detail::queue_thread_number::leased]);
    for (std::size_t l = 0; l < lane_count_; ++l) {
      lanes_[l].slots = &slots_[static_cast<std::size_t>(capacity_ * l)];
      for (std::uint64_t i = 0; i < capacity_; ++i) lanes_[l].slots[i].sequence.store(i, std::memory_order_relaxed);
    }
    credit_batch_ = std::clamp<std::int64_t>(static_cast<std::int64_t>(capacity_ / (4 * lane_count_)), 1, 32);
  }

  mpmc_queue(const mpmc_queue&) = delete;
  mpmc_queue& operator=(const mpmc_queue&) = delete;

  /// Destroys the items still queued. No thread may use the queue any more.
  ~mpmc_queue() {
    if constexpr (!std::is_trivially_destructible_v<T>) {
      for (std::size_t l = 0; l < lane_count_; ++l) {
        lane& ln = lanes_[l];
        const std::uint64_t end = ln.tail.load(std::memory_order_acquire) & ~closed_bit;
        for (std::uint64_t p = ln.head.load(std::memory_order_acquire); p != end; ++p) {
          ln.slot_at(p, capacity_).destroy();
        }
      }
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
    lane& home = lanes_[home_lane()];
    const std::uint64_t allowed = take_credits(home, items.size());
    if (allowed == 0) return reject(closing_.load(std::memory_order_acquire) ? errc::queue_closed : errc::queue_full);
    const claimed c = claim(home, home.tail, 0, allowed);
    if (c.count < allowed) refund(home, allowed - c.count);
    if (c.count == 0) return reject((c.first & closed_bit) ? errc::queue_closed : errc::queue_full);
    for (std::uint64_t i = 0; i < c.count; ++i) {
      publish(home, c.first + i, std::move(items[static_cast<std::size_t>(i)]));
    }
    not_empty_.notify(notify_count(c.count));
    return static_cast<std::size_t>(c.count);
  }

  // --- consumers -------------------------------------------------------------

  /// Dequeues an item if there is one now (the oldest of the first lane that
  /// has one; see "Lanes"); otherwise queue_closed (closed and drained) or
  /// queue_empty.
  result<T> try_pop() noexcept {
    const std::size_t start = pop_start();
    lane& first = lanes_[start];
    if (const claimed c = claim<true>(first, first.head, 1); c.count != 0) return take(first, c.first);
    return try_pop_elsewhere(start);
  }

  /// Dequeues, waiting until `deadline` for an item: the item, queue_closed
  /// once closed and drained, or queue_empty.
  result<T> pop(time_point deadline) {
    return wait_until(
        not_empty_, deadline, [&] { return try_pop(); }, [&] { return has_items(); });
  }
  result<T> pop() { return pop(time_point::max()); }

  /// Moves up to `max` ready items of one lane, oldest first, to `out`
  /// without waiting: their count (≥ 1), queue_closed, or queue_empty.
  /// One CAS for the whole batch. If writing to `out` throws, the items not
  /// yet written are destroyed and the queue stays consistent (reserve first).
  template <std::output_iterator<T&&> Out>
  result<std::size_t> try_pop_batch(Out& out, std::size_t max) {
    if (max == 0) return std::size_t{0};
    const std::size_t start = pop_start();
    for (std::size_t i = 0; i < lane_count_; ++i) {
      lane& from = lanes_[(start + i) & lane_mask_];
      const claimed c = claim(from, from.head, 1, max);
      if (c.count == 0) continue;
      hand_over(from, c.first, c.count, out);
      return static_cast<std::size_t>(c.count);
    }
    return empty_or_closed();
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
    for (std::size_t l = 0; l < lane_count_; ++l) lanes_[l].tail.fetch_or(closed_bit, std::memory_order_seq_cst);
    not_empty_.notify_all();
    not_full_.notify_all();
  }

  bool closed() const noexcept { return closing_.load(std::memory_order_acquire); }

  std::size_t capacity() const noexcept { return static_cast<std::size_t>(capacity_); }
  std::size_t lanes() const noexcept { return lane_count_; }

  /// Items queued: a snapshot, exact when nobody pushes or pops.
  std::size_t size() const noexcept {
    std::uint64_t total = 0;
    for (std::size_t l = 0; l < lane_count_; ++l) {
      const std::uint64_t head = lanes_[l].head.load(std::memory_order_acquire);
      const std::uint64_t tail = lanes_[l].tail.load(std::memory_order_acquire) & ~closed_bit;
      if (tail > head) total += tail - head;
    }
    return static_cast<std::size_t>(std::min(total, capacity_));
  }
  bool empty() const noexcept { return size() == 0; }

  queue_stats stats() const noexcept {
    return queue_stats{capacity(), size(), not_empty_.waiting(), not_full_.waiting(), closed()};
  }

 private:
  static constexpr std::uint64_t closed_bit = std::uint64_t{1} << 63;
  static constexpr std::uint64_t max_capacity = std::uint64_t{1} << 62;
  static constexpr std::size_t max_lanes = 64;
  static constexpr std::uint64_t default_slot_budget = std::uint64_t{1} << 20;
  static constexpr int spin_limit = 16;

  struct alignas(detail::cache_line) slot {
    std::atomic<std::uint64_t> sequence{0};
    alignas(T) std::byte storage[sizeof(T)];

    T& item() noexcept { return *std::launder(reinterpret_cast<T*>(storage)); }
    void destroy() noexcept { item().~T(); }
  };

  /// One ring of the queue: Vyukov's array queue with room for the whole
  /// capacity. Each field a different side writes sits on lines of its own
  /// (two apart, against the adjacent-line prefetcher).
  struct lane {
    slot* slots = nullptr;                                                    // read-only after construction
    alignas(2 * detail::cache_line) std::atomic<std::uint64_t> tail{0};       // next push position | closed_bit
    alignas(2 * detail::cache_line) std::atomic<std::uint64_t> head{0};       // next pop position
    alignas(2 * detail::cache_line) std::atomic<std::int64_t> credits{0};     // places granted to its producers, unused
    alignas(2 * detail::cache_line) std::atomic<std::uint64_t> reclaimed{0};  // positions counted as freed

    slot& slot_at(std::uint64_t pos, std::uint64_t capacity) const noexcept {
      return slots[static_cast<std::size_t>(pos & (capacity - 1))];
    }
  };

  /// Positions [first, first + count) now belong to the caller; count == 0
  /// means nothing was ready at `first` (for tail, `first` carries the close bit).
  struct claimed {
    std::uint64_t first;
    std::uint64_t count;
  };

  /// One lane per hardware thread, at most 8 — and fewer for a queue so
  /// large that lanes × capacity would pass 2^20 slots (64 MiB of small
  /// items): such a queue is a backlog, where memory matters more than
  /// nanoseconds per item.
  static std::size_t default_lanes(std::uint64_t capacity) noexcept {
    const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
    const std::uint64_t by_memory = std::max<std::uint64_t>(1, default_slot_budget / capacity);
    return static_cast<std::size_t>(std::min<std::uint64_t>({std::bit_ceil(threads), 8, std::bit_floor(by_memory)}));
  }

  std::size_t home_lane() const noexcept { return detail::this_queue_thread_number() & lane_mask_; }

  /// A consumer looks at its home lane first — where its own pushes went, so
  /// a thread that pushes and pops keeps its items in its own cache — then at
  /// the others in turn. Every 64th pop of a consumer looks at the others
  /// first, starting one lane further each time, so a lane that no consumer
  /// calls home is served at least once every 64 × lanes pops of each
  /// consumer even while its own lane never runs dry. The count is this
  /// queue's (a thread popping several queues must not rotate on only one of
  /// them), one padded counter per thread number, so consumers never share
  /// its line; threads numbered past 64 share a counter, and a count lost to
  /// that race only delays a turn.
  std::size_t pop_start() noexcept {
    if (lane_count_ == 1) return 0;
    const std::uint32_t number = detail::this_queue_thread_number();
    std::atomic<std::uint32_t>& pops = pops_[number % detail::queue_thread_number::leased].value;
    const std::uint32_t n = pops.load(std::memory_order_relaxed) + 1;
    pops.store(n, std::memory_order_relaxed);
    const std::size_t home = number & lane_mask_;
    if ((n & 63u) != 0) return home;
    return (home + 1 + (n >> 6)) & lane_mask_;
  }

  /// Claims up to `want` consecutive positions of `index` (the lane's head or
  /// tail) whose slots are ready — sequence == position + `turn` (0: free for
  /// a producer, 1: full for a consumer) — with one CAS. The CAS is seq_cst:
  /// it is the write the event count's no-lost-wake-up argument is about.
  /// One<true> claims a single position: the push and pop fast paths, kept
  /// small enough to inline.
  template <bool One = false>
  claimed claim(lane& ln, std::atomic<std::uint64_t>& index, std::uint64_t turn, std::uint64_t want = 1) noexcept {
    std::uint64_t pos = index.load(std::memory_order_relaxed);
    for (;;) {
      if (pos & closed_bit) return {pos, 0};
      const auto lag =
          static_cast<std::int64_t>(ln.slot_at(pos, capacity_).sequence.load(std::memory_order_acquire) - (pos + turn));
      if (lag < 0) return {pos, 0};  // the previous lap has not finished with this slot: full / empty
      if (lag > 0) {                 // another thread took `pos` since we read it
        pos = index.load(std::memory_order_relaxed);
        continue;
      }
      std::uint64_t n = 1;
      if constexpr (!One) {
        while (n < want && ln.slot_at(pos + n, capacity_).sequence.load(std::memory_order_acquire) == pos + n + turn) {
          ++n;
        }
      }
      // On success no one else can touch the n slots: changing any of them
      // needs a claim on a position in [pos, pos + n), which this CAS took.
      if (index.compare_exchange_weak(pos, pos + n, std::memory_order_seq_cst, std::memory_order_relaxed)) {
        return {pos, n};
      }
    }
  }

  // --- credits: the capacity bound across lanes --------------------------------
  //
  // Each lane's ring has room for the whole capacity (one producer may fill
  // the queue), so with several lanes the bound is kept by credits, one per
  // place: a push spends one of its lane's credits before it claims a slot.
  // Producers get credits in batches by raising granted_, the count of
  // places ever granted, as far as capacity + places ever freed allows — so
  // queued items plus unspent credits never exceed the capacity. Consumers do
  // nothing for it beyond the pop itself: a producer that needs credits counts
  // the places they freed (see reclaim). Unspent credits of other lanes are
  // taken when nothing else is left, so try_push fails only when the queue is
  // full — or while a consumer is still emptying a slot, which can hold back
  // the places freed after it in its lane until it is done. A single lane needs
  // no credits: its ring is the bound.

  /// Takes up to `want` credits: from `home`, then a new grant (with a batch
  /// to spare for home), then from the other lanes. 0: the queue is full.
  std::uint64_t take_credits(lane& home, std::uint64_t want) noexcept {
    if (lane_count_ == 1) return want;
    // The common case, inline: home holds enough.
    const auto wanted = static_cast<std::int64_t>(want);
    std::int64_t have = home.credits.load(std::memory_order_relaxed);
    if (have >= wanted && home.credits.compare_exchange_strong(have, have - wanted, std::memory_order_seq_cst,
                                                               std::memory_order_relaxed)) {
      return want;
    }
    return take_credits_slowly(home, wanted);
  }

  std::uint64_t take_credits_slowly(lane& home, std::int64_t wanted) noexcept {
    // A home slot at the tail still occupied (a full ring, or a pop still
    // moving its item out) means this push cannot succeed now: say so from
    // that slot, the one line that changes when room appears — not from the
    // heads, which every pop writes and which a producer polling a full
    // queue would keep pulling away from consumers.
    const std::uint64_t tail = home.tail.load(std::memory_order_relaxed) & ~closed_bit;
    if (static_cast<std::int64_t>(home.slot_at(tail, capacity_).sequence.load(std::memory_order_acquire) - tail) < 0) {
      return 0;
    }
    std::int64_t got = take_from(home.credits, wanted);
    if (got < wanted) got += grant(home, wanted - got);
    const std::size_t home_index = static_cast<std::size_t>(&home - lanes_.get());
    for (std::size_t i = 1; i < lane_count_ && got < wanted; ++i) {
      got += keep_rest(home, take_from(lanes_[(home_index + i) & lane_mask_].credits, INT64_MAX), wanted - got);
    }
    return static_cast<std::uint64_t>(got);
  }

  /// Places ever freed in `ln`, as far as this count can tell cheaply. In a
  /// lane more than half full it advances over the released slots
  /// themselves: they are the slots this lane's producers write next, so
  /// reading them costs no line the producer would not fetch anyway — and not
  /// the head, which every pop writes and which a producer pressing on a
  /// full lane would keep pulling away from the consumers it waits for. In a
  /// lane less than half full, two released slots in a row mean the consumers
  /// keep up: walking on would fetch, one by one, lines the producer writes
  /// again only a lap later, so the head — one line per batch of credits —
  /// counts the rest at once. An item counts as freed once a consumer has
  /// claimed it; a push that reaches its slot before that consumer has
  /// emptied it fails and gives its credit back.
  std::uint64_t reclaim(lane& ln) noexcept {
    std::uint64_t from = ln.reclaimed.load(std::memory_order_seq_cst);
    for (;;) {
      std::uint64_t to = from;
      while (static_cast<std::int64_t>(ln.slot_at(to, capacity_).sequence.load(std::memory_order_acquire) -
                                       (to + capacity_)) >= 0) {
        if (++to - from == 2 && (ln.tail.load(std::memory_order_relaxed) & ~closed_bit) - to < capacity_ / 2) {
          to = std::max(to, ln.head.load(std::memory_order_seq_cst));
          break;
        }
      }
      if (to == from ||
          ln.reclaimed.compare_exchange_weak(from, to, std::memory_order_seq_cst, std::memory_order_seq_cst)) {
        return to;
      }
    }
  }

  /// Grants `need` credits plus a batch for `home`, or as many as are free.
  /// Only home's freed places are counted afresh first (a thread that pops
  /// what it pushed finds its own pops there, on its own lines); the other
  /// lanes are counted again only when that is not enough. granted_ is read
  /// before the places freed, which only grow, so the free count never
  /// overstates.
  std::int64_t grant(lane& home, std::int64_t need) noexcept {
    std::uint64_t granted = granted_.load(std::memory_order_seq_cst);
    for (;;) {
      std::uint64_t freed = 0;
      for (std::size_t l = 0; l < lane_count_; ++l) {
        freed += &lanes_[l] == &home ? reclaim(home) : lanes_[l].reclaimed.load(std::memory_order_seq_cst);
      }
      auto free = static_cast<std::int64_t>(capacity_ + freed - granted);
      if (free < need) {
        freed = 0;
        for (std::size_t l = 0; l < lane_count_; ++l) freed += reclaim(lanes_[l]);
        free = static_cast<std::int64_t>(capacity_ + freed - granted);
      }
      if (free <= 0) return 0;
      const std::int64_t take = std::min(free, need + credit_batch_);
      if (granted_.compare_exchange_weak(granted, granted + static_cast<std::uint64_t>(take), std::memory_order_seq_cst,
                                         std::memory_order_seq_cst)) {
        return keep_rest(home, take, need);
      }
    }
  }

  /// Of `took` credits, returns up to `need` to the caller and puts the rest
  /// in `home`.
  std::int64_t keep_rest(lane& home, std::int64_t took, std::int64_t need) noexcept {
    if (took <= need) return took;
    // The spare credits were in no counter for a moment: a producer that
    // looked then may have gone to sleep.
    home.credits.fetch_add(took - need, std::memory_order_seq_cst);
    not_full_.notify(notify_count(static_cast<std::uint64_t>(took - need)));
    return need;
  }

  static std::int64_t take_from(std::atomic<std::int64_t>& credits, std::int64_t limit) noexcept {
    std::int64_t have = credits.load(std::memory_order_relaxed);
    while (have > 0) {
      const std::int64_t take = std::min(have, limit);
      if (credits.compare_exchange_weak(have, have - take, std::memory_order_seq_cst, std::memory_order_relaxed)) {
        return take;
      }
    }
    return 0;
  }

  /// Gives back credits a producer took but could not use.
  void refund(lane& home, std::uint64_t n) noexcept {
    if (lane_count_ == 1) return;
    home.credits.fetch_add(static_cast<std::int64_t>(n), std::memory_order_seq_cst);
    not_full_.notify(notify_count(n));
  }

  /// try_pop's rare path, out of its way: the lanes after the first.
  result<T> try_pop_elsewhere(std::size_t start) noexcept {
    for (std::size_t i = 1; i < lane_count_; ++i) {
      lane& from = lanes_[(start + i) & lane_mask_];
      if (const claimed c = claim<true>(from, from.head, 1); c.count != 0) return take(from, c.first);
    }
    return empty_or_closed();
  }

  /// Moves out the item at `pos`, which this thread claimed, and frees its slot.
  result<T> take(lane& from, std::uint64_t pos) noexcept {
    result<T> out(std::in_place, std::move(from.slot_at(pos, capacity_).item()));
    release(from, pos);
    not_full_.notify(1);
    return out;
  }

  template <class... Args>
  result<void> emplace_now(Args&&... args) noexcept {
    lane& home = lanes_[home_lane()];
    if (take_credits(home, 1) == 0) {
      return reject(closing_.load(std::memory_order_acquire) ? errc::queue_closed : errc::queue_full);
    }
    const claimed c = claim<true>(home, home.tail, 0);
    if (c.count == 0) {
      refund(home, 1);
      return reject((c.first & closed_bit) ? errc::queue_closed : errc::queue_full);
    }
    publish(home, c.first, std::forward<Args>(args)...);
    not_empty_.notify(1);
    return {};
  }

  template <class... Args>
  void publish(lane& ln, std::uint64_t pos, Args&&... args) noexcept {
    slot& s = ln.slot_at(pos, capacity_);
    ::new (static_cast<void*>(s.storage)) T(std::forward<Args>(args)...);
    s.sequence.store(pos + 1, std::memory_order_release);
  }

  /// Destroys the item at `pos` and hands the slot to the producer of the next lap.
  void release(lane& ln, std::uint64_t pos) noexcept {
    slot& s = ln.slot_at(pos, capacity_);
    s.destroy();
    s.sequence.store(pos + capacity_, std::memory_order_release);
  }

  template <class Out>
  void hand_over(lane& from, std::uint64_t first, std::uint64_t count, Out& out) {
    // Each slot is released as soon as its item is moved out. If writing to
    // `out` throws, the guard releases (and so destroys) the rest; either way
    // it then wakes the producers waiting for the freed slots.
    struct release_rest {
      mpmc_queue& queue;
      lane& from;
      std::uint64_t next;
      std::uint64_t end;
      std::uint64_t freed;
      ~release_rest() {
        for (; next != end; ++next) queue.release(from, next);
        queue.not_full_.notify(notify_count(freed));
      }
    } guard{*this, from, first, first + count, count};
    while (guard.next != guard.end) {
      const std::uint64_t pos = guard.next++;
      T item(std::move(from.slot_at(pos, capacity_).item()));
      release(from, pos);
      *out = std::move(item);
      ++out;
    }
  }

  static int notify_count(std::uint64_t n) noexcept { return static_cast<int>(std::min<std::uint64_t>(n, INT_MAX)); }

  rejection empty_or_closed() const noexcept {
    // Closed, and every lane's final tail equals its head: every accepted
    // item is taken. closing_ (set before the close bits) spares a consumer
    // that polls an open, empty queue from pulling the producers' tail lines.
    if (closing_.load(std::memory_order_acquire)) {
      bool drained = true;
      for (std::size_t l = 0; l < lane_count_ && drained; ++l) {
        drained = lanes_[l].tail.load(std::memory_order_acquire) ==
                  (lanes_[l].head.load(std::memory_order_acquire) | closed_bit);
      }
      if (drained) return reject(errc::queue_closed);
    }
    return reject(errc::queue_empty);
  }

  // The re-checks between prepare_wait() and wait(): seq_cst loads, see event_count.hpp.
  bool has_items() const noexcept {
    if (closing_.load(std::memory_order_seq_cst)) return true;
    for (std::size_t l = 0; l < lane_count_; ++l) {
      if (lanes_[l].tail.load(std::memory_order_seq_cst) != lanes_[l].head.load(std::memory_order_seq_cst)) return true;
    }
    return false;
  }
  bool has_room() const noexcept {
    if (closing_.load(std::memory_order_seq_cst)) return true;
    if (lane_count_ == 1) {
      const std::uint64_t tail = lanes_[0].tail.load(std::memory_order_seq_cst);
      return tail - lanes_[0].head.load(std::memory_order_seq_cst) < capacity_;
    }
    // Freed by the heads: an upper bound of what reclaim() will find once
    // the consumers have released their slots (the attempt then retries).
    std::uint64_t popped = 0;
    for (std::size_t l = 0; l < lane_count_; ++l) popped += lanes_[l].head.load(std::memory_order_seq_cst);
    if (static_cast<std::int64_t>(capacity_ + popped - granted_.load(std::memory_order_seq_cst)) > 0) return true;
    for (std::size_t l = 0; l < lane_count_; ++l) {
      if (lanes_[l].credits.load(std::memory_order_seq_cst) > 0) return true;
    }
    return false;
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
  std::unique_ptr<lane[]> lanes_;
  std::unique_ptr<detail::padded<std::atomic<std::uint32_t>>[]> pops_;  // pop counts by thread number (several lanes)
  std::uint64_t capacity_ = 0;
  std::size_t lane_count_ = 1;
  std::size_t lane_mask_ = 0;
  std::int64_t credit_batch_ = 1;
  [[no_unique_address]] Clock clock_;
  std::atomic<bool> closing_{false};  // written once, by close()

  // Places ever granted to lanes as credits; CAS'd once per batch of pushes.
  alignas(2 * detail::cache_line) std::atomic<std::uint64_t> granted_{0};
  // Read on every push (not_empty_) or pop (not_full_), written only by sleepers.
  alignas(2 * detail::cache_line) detail::event_count<> not_empty_;
  alignas(2 * detail::cache_line) detail::event_count<> not_full_;
};

}  // namespace keel
