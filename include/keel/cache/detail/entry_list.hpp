// keel/cache/detail/entry_list.hpp — what an eviction policy sees of an entry.
//
// Policies order entries in intrusive doubly linked lists, so moving an entry
// to the front on a hit is four pointer writes and never allocates. The
// cache's node derives from policy_entry; a policy only reads hash and weight,
// and owns prev/next/queue.
#pragma once

#include <cstddef>
#include <cstdint>

namespace keel::detail {

struct policy_entry {
  policy_entry* prev = nullptr;
  policy_entry* next = nullptr;
  std::uint64_t hash = 0;  ///< the cache's mixed key hash (the sketch counts by it)
  std::size_t weight = 1;  ///< set by the cache before on_insert / on_update
  std::uint8_t queue = 0;  ///< which of the policy's lists holds the entry
};

/// A circular list with a sentinel: front is most recently used, back least.
class entry_list {
 public:
  entry_list() noexcept { head_.prev = head_.next = &head_; }
  entry_list(const entry_list&) = delete;
  entry_list& operator=(const entry_list&) = delete;

  bool empty() const noexcept { return head_.next == &head_; }
  std::size_t weight() const noexcept { return weight_; }
  std::size_t size() const noexcept { return size_; }
  policy_entry* front() const noexcept { return empty() ? nullptr : head_.next; }
  policy_entry* back() const noexcept { return empty() ? nullptr : head_.prev; }

  void push_front(policy_entry& e) noexcept {
    e.prev = &head_;
    e.next = head_.next;
    head_.next->prev = &e;
    head_.next = &e;
    weight_ += e.weight;
    ++size_;
  }
  void erase(policy_entry& e) noexcept {
    e.prev->next = e.next;
    e.next->prev = e.prev;
    e.prev = e.next = nullptr;
    weight_ -= e.weight;
    --size_;
  }
  void move_to_front(policy_entry& e) noexcept {
    if (head_.next == &e) return;
    e.prev->next = e.next;
    e.next->prev = e.prev;
    e.prev = &head_;
    e.next = head_.next;
    head_.next->prev = &e;
    head_.next = &e;
  }
  /// The entry's weight changed from `old_weight` while it stayed in this list.
  void reweigh(std::size_t old_weight, std::size_t new_weight) noexcept { weight_ = weight_ - old_weight + new_weight; }
  void clear() noexcept {
    head_.prev = head_.next = &head_;
    weight_ = size_ = 0;
  }

 private:
  policy_entry head_;
  std::size_t weight_ = 0;
  std::size_t size_ = 0;
};

}  // namespace keel::detail
