// keel/cache/detail/expiry_heap.hpp — which entry expires next.
//
// A binary min-heap of entries by deadline, with each entry's position stored
// in the entry, so an erase or a deadline change is O(log n) and never
// searches. The cache pops expired entries a few at a time during writes
// (amortised sweeping: no background thread), and checks the deadline on every
// read so an expired entry is never returned even before it is swept.
// Expire-after-access moves deadlines later without the exclusive lock; the
// heap then holds an early key, and the sweep re-files the entry when it finds
// the entry still alive.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace keel::detail {

struct expiry_entry {
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  std::int64_t heap_deadline = 0;
  std::size_t heap_index = npos;
};

class expiry_heap {
 public:
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  expiry_entry* top() const noexcept { return heap_.empty() ? nullptr : heap_.front(); }

  /// Makes room for one more push(), which then cannot throw; may allocate.
  void reserve_one() {
    if (heap_.size() == heap_.capacity()) heap_.reserve(std::max<std::size_t>(16, 2 * heap_.size()));
  }

  /// Files `e` (not yet in the heap) under `deadline`; may allocate.
  void push(expiry_entry& e, std::int64_t deadline) {
    heap_.push_back(&e);
    e.heap_index = heap_.size() - 1;
    e.heap_deadline = deadline;
    sift_up(e.heap_index);
  }

  /// Moves `e` (in the heap) to `deadline`.
  void update(expiry_entry& e, std::int64_t deadline) noexcept {
    const std::int64_t old = std::exchange(e.heap_deadline, deadline);
    if (deadline < old) {
      sift_up(e.heap_index);
    } else {
      sift_down(e.heap_index);
    }
  }

  void erase(expiry_entry& e) noexcept {
    const std::size_t i = e.heap_index;
    e.heap_index = expiry_entry::npos;
    expiry_entry* last = heap_.back();
    heap_.pop_back();
    if (last == &e) return;
    heap_[i] = last;
    last->heap_index = i;
    sift_up(i);
    sift_down(last->heap_index);
  }

  void clear() noexcept {
    for (auto* e : heap_) e->heap_index = expiry_entry::npos;
    heap_.clear();
  }

 private:
  void place(std::size_t i, expiry_entry* e) noexcept {
    heap_[i] = e;
    e->heap_index = i;
  }
  void sift_up(std::size_t i) noexcept {
    expiry_entry* e = heap_[i];
    while (i > 0) {
      const std::size_t parent = (i - 1) / 2;
      if (heap_[parent]->heap_deadline <= e->heap_deadline) break;
      place(i, heap_[parent]);
      i = parent;
    }
    place(i, e);
  }
  void sift_down(std::size_t i) noexcept {
    expiry_entry* e = heap_[i];
    const std::size_t n = heap_.size();
    for (;;) {
      std::size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && heap_[child + 1]->heap_deadline < heap_[child]->heap_deadline) ++child;
      if (e->heap_deadline <= heap_[child]->heap_deadline) break;
      place(i, heap_[child]);
      i = child;
    }
    place(i, e);
  }

  std::vector<expiry_entry*> heap_;
};

}  // namespace keel::detail
