// keel/cache/detail/read_buffer.hpp — hits recorded without the shard's write lock.
//
// BP-Wrapper (Ding, Ding, Jiang, Zhang: "BP-Wrapper: A System Framework Making
// Any Replacement Algorithms (Almost) Lock Contention Free", ICDE 2009), as
// Caffeine uses it: a reader that hits an entry does not reorder the policy's
// lists itself (that needs the exclusive lock); it appends the entry to a small
// per-shard ring and moves on. Whoever next holds the exclusive lock replays the
// ring into the policy, in order. When the ring is full, further hits are
// dropped until it is drained: the policy misses a few recency updates under
// heavy contention, which costs a little hit ratio and never correctness.
//
// Why raw entry pointers are safe here: readers record while holding the shard
// lock *shared*, and entries are only destroyed under the lock held
// *exclusively*, after the ring has been drained. So every pointer in the ring
// refers to an entry that was alive when the current exclusive section began.
//
// The write counter doubles as the shard's exact hit count (stats().hits).
#pragma once

#include <keel/cache/detail/entry_list.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace keel::detail {

class read_buffer {
 public:
  static constexpr std::size_t capacity = 16;

  /// Records a hit; call with the shard lock held shared. Returns true when the
  /// ring is full (this hit filled it or was dropped): the caller should drain.
  bool record(policy_entry* e) noexcept {
    const std::uint64_t ticket = writes_.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t used = ticket - reads_;
    if (used < capacity) slots_[ticket % capacity].store(e, std::memory_order_relaxed);
    return used + 1 >= capacity;
  }

  /// Replays the recorded hits in order; call with the shard lock held exclusively.
  template <class Apply>
  void drain(Apply&& apply) noexcept {
    const std::uint64_t end = writes_.load(std::memory_order_relaxed);
    const std::uint64_t n = std::min<std::uint64_t>(end - reads_, capacity);
    for (std::uint64_t i = 0; i < n; ++i) apply(*slots_[(reads_ + i) % capacity].load(std::memory_order_relaxed));
    reads_ = end;
  }

  /// Every hit ever recorded (including dropped ones).
  std::uint64_t recorded() const noexcept { return writes_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> writes_{0};
  std::uint64_t reads_ = 0;  // changed only under the exclusive lock, read under the shared one
  std::array<std::atomic<policy_entry*>, capacity> slots_{};
};

}  // namespace keel::detail
