// keel/cache/lru.hpp — least-recently-used eviction.
//
// Evicts the entry read or written longest ago. Cheap and predictable, and the
// right choice when recency is all there is (a sliding working set, a session
// cache). It is not scan-resistant: one pass over many cold keys flushes the
// hot set; keel::w_tinylfu (the default) keeps it. keel_sim cache/hit_ratio
// shows both on the same traces.
//
//   keel::cache<std::string, reply, keel::lru> sessions({.capacity = 10'000});
#pragma once

#include <keel/cache/detail/entry_list.hpp>
#include <keel/cache/eviction_policy.hpp>

#include <cstddef>

namespace keel {

class lru {
 public:
  explicit lru(std::size_t capacity) noexcept : capacity_(capacity) {}

  void on_insert(detail::policy_entry& e) noexcept { order_.push_front(e); }
  void on_hit(detail::policy_entry& e) noexcept { order_.move_to_front(e); }
  void on_update(detail::policy_entry& e, std::size_t old_weight) noexcept {
    order_.reweigh(old_weight, e.weight);
    order_.move_to_front(e);
  }
  void on_remove(detail::policy_entry& e) noexcept { order_.erase(e); }
  detail::policy_entry* victim() noexcept { return order_.weight() > capacity_ ? order_.back() : nullptr; }
  void clear() noexcept { order_.clear(); }
  std::size_t weight() const noexcept { return order_.weight(); }

 private:
  detail::entry_list order_;  // front = most recently used
  std::size_t capacity_;
};

static_assert(eviction_policy<lru>);

}  // namespace keel
