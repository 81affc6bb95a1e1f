// keel/cache/detail/read_buffer.hpp — hits recorded without the shard's write lock.
//
// BP-Wrapper (Ding, Ding, Jiang, Zhang: "BP-Wrapper: A System Framework Making
// Any Replacement Algorithms (Almost) Lock Contention Free", ICDE 2009), as
// Caffeine uses it (its BoundedBuffer ring): a reader that hits an entry does
// not reorder the policy's lists itself; it appends the entry to a small ring
// and moves on. The ring is replayed into the policy, in order, by whoever
// holds the policy next: the reader whose append filled it, or a writer. When
// the ring is full, further hits are dropped until it is drained: the policy
// misses a few recency updates under heavy contention, which costs a little
// hit ratio and never correctness.
//
// Many producers, one consumer at a time, concurrently: a producer claims a
// slot by advancing `writes_` only while the ring has room, then publishes the
// entry in it; the consumer replays slots from `reads_` until it meets an empty
// one (a claimed slot not yet published is left for the next drain), empties
// each slot it replays, and then publishes its new position, which gives the
// slots back to the producers.
//
// Why raw entry pointers are safe: entries are recorded by readers holding the
// shard lock shared, and destroyed only under the lock held exclusively, after
// every ring has been drained (with the lock exclusive, no producer is left
// halfway, so a drain empties the ring). So every pointer in a ring refers to
// an entry alive since the last exclusive section.
#pragma once

#include <keel/cache/detail/entry_list.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace keel::detail {

class read_buffer {
 public:
  static constexpr std::uint64_t capacity = 16;

  /// Records a hit; call with the shard lock held shared. Returns true when the
  /// ring is full (this hit filled it or was dropped): the caller should drain.
  bool record(policy_entry* e) noexcept {
    std::uint64_t ticket = writes_.load(std::memory_order_relaxed);
    std::uint64_t used = 0;
    do {
      used = ticket - reads_.load(std::memory_order_acquire);
      if (used >= capacity) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return true;
      }
    } while (!writes_.compare_exchange_weak(ticket, ticket + 1, std::memory_order_relaxed));
    slots_[ticket % capacity].store(e, std::memory_order_release);
    return used + 1 >= capacity;
  }

  /// Replays the recorded hits in order. One drain at a time (the caller holds
  /// the policy); producers may keep recording meanwhile.
  template <class Apply>
  void drain(Apply&& apply) noexcept {
    std::uint64_t r = reads_.load(std::memory_order_relaxed);
    for (;; ++r) {
      std::atomic<policy_entry*>& slot = slots_[r % capacity];
      policy_entry* e = slot.load(std::memory_order_acquire);
      if (e == nullptr) break;  // empty, or claimed and not yet published
      apply(*e);
      slot.store(nullptr, std::memory_order_relaxed);
    }
    reads_.store(r, std::memory_order_release);
  }

  /// Every hit ever recorded, including dropped ones.
  std::uint64_t recorded() const noexcept {
    return writes_.load(std::memory_order_relaxed) + dropped_.load(std::memory_order_relaxed);
  }
  /// Hits not kept because the ring was full.
  std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> writes_{0};   // slots claimed
  std::atomic<std::uint64_t> reads_{0};    // slots replayed
  std::atomic<std::uint64_t> dropped_{0};  // hits not recorded: the ring was full
  std::array<std::atomic<policy_entry*>, capacity> slots_{};
};

}  // namespace keel::detail
