// keel/cache/eviction_policy.hpp — what keel::cache asks of an eviction policy.
//
// A policy decides which entry of one shard leaves when the shard is over its
// capacity. keel ships two: keel::w_tinylfu (the default; scan- and
// one-hit-wonder-resistant) and keel::lru (plain recency). The cache calls a
// policy only while it holds the shard's exclusive lock, so a policy is plain
// single-threaded code. It sees entries as detail::policy_entry (intrusive
// list hooks, the key's hash and the entry's weight), never keys or values.
//
//   struct my_policy {
//     explicit my_policy(std::size_t capacity);
//     void on_insert(keel::detail::policy_entry&);            // a new entry (weight set)
//     void on_hit(keel::detail::policy_entry&);               // a read of a live entry
//     void on_update(keel::detail::policy_entry&, std::size_t old_weight);  // value replaced
//     void on_remove(keel::detail::policy_entry&);            // gone (evicted, expired, erased)
//     keel::detail::policy_entry* victim();                   // who leaves now, or null if within capacity
//     void clear();                                           // every entry is gone
//     std::size_t weight() const;                             // total weight held
//   };
#pragma once

#include <keel/cache/detail/entry_list.hpp>

#include <concepts>
#include <cstddef>

namespace keel {

template <class P>
concept eviction_policy = std::constructible_from<P, std::size_t> &&
    requires(P& p, const P& cp, detail::policy_entry& e, std::size_t old_weight) {
  p.on_insert(e);
  p.on_hit(e);
  p.on_update(e, old_weight);
  p.on_remove(e);
  { p.victim() } -> std::same_as<detail::policy_entry*>;
  p.clear();
  { cp.weight() } -> std::convertible_to<std::size_t>;
};

}  // namespace keel
