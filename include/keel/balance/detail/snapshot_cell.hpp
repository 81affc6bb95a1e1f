// keel/balance/detail/snapshot_cell.hpp — publish an immutable snapshot; readers never block.
//
// The balancer's node set is an immutable snapshot that writers replace. A
// reader (a pick) must see a whole snapshot and the snapshot must stay alive
// while it reads, without ever waiting for a writer. std::atomic<std::shared_ptr>
// does this in libstdc++ 12 with a spin lock bit and two reference-count
// updates on one shared word per load, so every pick of every thread writes
// the same cache line (bench: balance/atomic_shared_ptr/load). This cell
// instead uses striped reader counters with two epochs, the scheme of Linux's
// SRCU (McKenney, "Sleepable RCU", 2006) reduced to what a balancer needs:
//
//   reader:  e = epoch; ++count[stripe][e & 1]; if epoch != e: undo, retry;
//            p = current; ... use p ...; --count[stripe][e & 1]
//   writer:  (one at a time) old = exchange(current, new); ++epoch;
//            wait until every stripe's count[old epoch & 1] is zero; free old.
//
// Why this is enough (all operations seq_cst): a reader that validated the
// old epoch made its increment before the writer bumped the epoch, so the
// writer's scan sees it and waits; a reader that saw the new epoch reads the
// new pointer. Readers of the new epoch count on the other parity, so the
// writer never waits for readers that started after it published. Readers
// touch only their own stripe's cache line; writers wait (yield) for readers
// that are mid-pick, which is a few hundred nanoseconds.
//
// Each stripe also carries the random state of the threads that use it (see
// random.hpp): the line is already owned by the reading thread.
#pragma once

#include <keel/balance/detail/random.hpp>
#include <keel/core/detail/cache_line.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <utility>

namespace keel::detail {

/// The stripe a thread reads through: threads are numbered in the order they
/// first read any cell, so a single-threaded program always uses stripe 0.
inline std::size_t reader_stripe_index() noexcept {
  static std::atomic<std::size_t> next{0};
  static thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed);
  return mine;
}

template <class T>
class snapshot_cell {
  static constexpr std::size_t stripe_count = 16;

  struct alignas(cache_line) stripe {
    std::atomic<std::int64_t> readers[2] = {0, 0};
    std::atomic<std::uint64_t> random{0};
  };

 public:
  /// A reader's hold on the current snapshot: the pointer stays valid until
  /// the guard is destroyed. Not movable; keep it on the stack of one pick.
  class guard {
   public:
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    ~guard() { stripe_->readers[parity_].fetch_sub(1, std::memory_order_release); }

    const T* get() const noexcept { return value_; }
    const T& operator*() const noexcept { return *value_; }
    const T* operator->() const noexcept { return value_; }

    /// The random state of this reader's stripe (see random.hpp).
    std::atomic<std::uint64_t>& random_state() const noexcept { return stripe_->random; }

   private:
    friend class snapshot_cell;
    guard(const snapshot_cell& cell, stripe* s) noexcept : stripe_(s) {
      for (;;) {
        const std::uint64_t e = cell.epoch_.load(std::memory_order_seq_cst);
        parity_ = static_cast<unsigned>(e & 1U);
        stripe_->readers[parity_].fetch_add(1, std::memory_order_seq_cst);
        if (cell.epoch_.load(std::memory_order_seq_cst) == e) break;
        stripe_->readers[parity_].fetch_sub(1, std::memory_order_release);
      }
      value_ = cell.current_.load(std::memory_order_seq_cst);
    }
    stripe* stripe_;
    unsigned parity_ = 0;
    const T* value_ = nullptr;
  };

  snapshot_cell(std::unique_ptr<T> initial, std::uint64_t seed)
      : stripes_(std::make_unique<stripe[]>(stripe_count)), current_(initial.release()) {
    for (std::size_t i = 0; i < stripe_count; ++i)
      stripes_[i].random.store(mix64(seed + i * weyl_step), std::memory_order_relaxed);
  }
  snapshot_cell(const snapshot_cell&) = delete;
  snapshot_cell& operator=(const snapshot_cell&) = delete;
  /// Precondition: no reader holds a guard.
  ~snapshot_cell() { delete current_.load(std::memory_order_relaxed); }

  guard read() const noexcept { return guard(*this, &stripes_[reader_stripe_index() % stripe_count]); }

  /// Installs `next` and returns the previous snapshot once no reader can
  /// still see it. Callers serialise publishes (the balancer's writer mutex).
  std::unique_ptr<T> publish(std::unique_ptr<T> next) {
    std::unique_ptr<T> old(current_.exchange(next.release(), std::memory_order_seq_cst));
    const std::uint64_t e = epoch_.load(std::memory_order_relaxed);
    epoch_.store(e + 1, std::memory_order_seq_cst);
    const unsigned parity = static_cast<unsigned>(e & 1U);
    for (std::size_t i = 0; i < stripe_count; ++i)
      while (stripes_[i].readers[parity].load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
    return old;
  }

  /// The current snapshot, for the writer only (it alone replaces it).
  const T* writer_view() const noexcept { return current_.load(std::memory_order_relaxed); }

 private:
  std::unique_ptr<stripe[]> stripes_;
  std::atomic<T*> current_;
  std::atomic<std::uint64_t> epoch_{0};
};

}  // namespace keel::detail
