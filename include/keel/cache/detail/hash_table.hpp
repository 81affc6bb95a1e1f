// keel/cache/detail/hash_table.hpp — the index of one cache shard.
//
// A chained hash table of nodes that the table owns, looked up by the cache's
// mixed 64-bit key hash, which the cache computes once per operation (a
// std::unordered_map would hash the key again, divide by a prime, and, in
// libstdc++, walk through the node *before* the bucket's first: one more
// cache miss per hit). The bucket is the hash's low bits (the cache picks the
// shard with high bits); a node keeps the hash's high half as a tag, checked
// before the key is compared, and the whole hash (for rehashing) in its
// policy hooks. Nodes are allocated one by one, so their addresses are stable
// (the policy's lists and the read buffers point at them) until erase().
//
// Node must provide `Node* chain` and `std::uint32_t tag` (the table's),
// and `std::uint64_t hash` (set before insert()).
//
//   detail::hash_table<node> table;
//   table.insert(std::make_unique<node>(...));                       // may grow
//   node* n = table.find(h, [&](const node& x) { return x.key == key; });
//   table.erase(*n);
//
// Not thread-safe: find() runs under the shard lock shared, the rest under it
// exclusively.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

namespace keel::detail {

template <class Node>
class hash_table {
 public:
  hash_table() : buckets_(std::make_unique<Node*[]>(initial_buckets)), mask_(initial_buckets - 1) {}
  ~hash_table() { clear(); }
  hash_table(const hash_table&) = delete;
  hash_table& operator=(const hash_table&) = delete;

  static constexpr std::uint32_t tag_of(std::uint64_t hash) noexcept { return static_cast<std::uint32_t>(hash >> 32); }

  std::size_t size() const noexcept { return size_; }

  /// The node with hash `hash` for which match(node) is true, or null.
  template <class Match>
  Node* find(std::uint64_t hash, Match&& match) const {
    const std::uint32_t tag = tag_of(hash);
    for (Node* n = buckets_[hash & mask_]; n != nullptr; n = n->chain) {
      if (n->tag == tag && match(static_cast<const Node&>(*n))) return n;
    }
    return nullptr;
  }

  /// Makes room for one more node: may allocate (and throw), changes nothing
  /// else. Call before insert() when a failure must leave nothing half done.
  void reserve_one() {
    if (size_ < mask_ + 1) return;  // load factor at most 1
    const std::size_t count = 2 * (mask_ + 1);
    auto grown = std::make_unique<Node*[]>(count);
    for (std::size_t b = 0; b <= mask_; ++b) {
      for (Node* n = buckets_[b]; n != nullptr;) {
        Node* next = n->chain;
        link(grown.get(), count - 1, n);
        n = next;
      }
    }
    buckets_ = std::move(grown);
    mask_ = count - 1;
  }

  /// Takes `n` (its hash set, not already in the table).
  Node& insert(std::unique_ptr<Node> n) {
    reserve_one();
    Node* p = n.release();
    p->tag = tag_of(p->hash);
    link(buckets_.get(), mask_, p);
    ++size_;
    return *p;
  }

  /// Unlinks and destroys `n`.
  void erase(Node& n) noexcept {
    Node** at = &buckets_[n.hash & mask_];
    while (*at != &n) at = &(*at)->chain;
    *at = n.chain;
    --size_;
    delete &n;
  }

  template <class F>
  void for_each(F&& f) const {
    for (std::size_t b = 0; b <= mask_; ++b) {
      for (Node* n = buckets_[b]; n != nullptr; n = n->chain) f(*n);
    }
  }

  /// Destroys every node (keeps the buckets' size).
  void clear() noexcept {
    for (std::size_t b = 0; b <= mask_; ++b) {
      for (Node* n = buckets_[b]; n != nullptr;) delete std::exchange(n, n->chain);
      buckets_[b] = nullptr;
    }
    size_ = 0;
  }

 private:
  static constexpr std::size_t initial_buckets = 16;

  static void link(Node** buckets, std::size_t mask, Node* n) noexcept {
    Node*& head = buckets[n->hash & mask];
    n->chain = head;
    head = n;
  }

  std::unique_ptr<Node*[]> buckets_;
  std::size_t mask_;
  std::size_t size_ = 0;
};

}  // namespace keel::detail
