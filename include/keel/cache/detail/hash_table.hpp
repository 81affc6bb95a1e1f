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
// (the policy's lists and the read buffers point at them) until erase(). The
// storage of erased nodes is kept for the next inserts (up to `spares_kept`
// nodes), so a cache at capacity, which evicts one entry per insert, does not
// go to the allocator on a write.
//
// Node must provide `Node* chain` and `std::uint32_t tag` (the table's),
// and `std::uint64_t hash` (set by its constructor).
//
//   detail::hash_table<node> table;
//   table.reserve_one();                      // may throw; then nothing below does
//   node* n = table.make(hash, key, value);   // may throw (the node's constructor)
//   table.insert(*n);
//   node* found = table.find(hash, [&](const node& x) { return x.key == key; });
//   table.erase(*found);
//
// Not thread-safe: find() runs under the shard lock shared, the rest under it
// exclusively.
#pragma once

#include <keel/core/config.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>

namespace keel::detail {

template <class Node>
class hash_table {
 public:
  hash_table() : buckets_(std::make_unique<Node*[]>(initial_buckets)), mask_(initial_buckets - 1) {}
  ~hash_table() {
    clear();
    while (spares_ != nullptr) deallocate(std::exchange(spares_, spares_->next));
  }
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

  /// A new node, not in the table yet: insert() or destroy() it.
  template <class... Args>
  Node* make(Args&&... args) {
    void* storage = take();
#if KEEL_HAS_EXCEPTIONS
    try {
      return ::new (storage) Node(std::forward<Args>(args)...);
    } catch (...) {
      release(storage);
      throw;
    }
#else
    return ::new (storage) Node(std::forward<Args>(args)...);
#endif
  }

  /// Links `n` (from make()); call reserve_one() first.
  void insert(Node& n) noexcept {
    n.tag = tag_of(n.hash);
    link(buckets_.get(), mask_, &n);
    ++size_;
  }

  /// Unlinks and destroys `n`.
  void erase(Node& n) noexcept {
    Node** at = &buckets_[n.hash & mask_];
    while (*at != &n) at = &(*at)->chain;
    *at = n.chain;
    --size_;
    destroy(n);
  }

  /// Destroys a node from make() that was never inserted (or was unlinked).
  void destroy(Node& n) noexcept {
    n.~Node();
    release(&n);
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
      for (Node* n = buckets_[b]; n != nullptr;) destroy(*std::exchange(n, n->chain));
      buckets_[b] = nullptr;
    }
    size_ = 0;
  }

 private:
  static constexpr std::size_t initial_buckets = 16;
  static constexpr std::size_t spares_kept = 64;

  struct spare {
    spare* next;
  };

  static void* allocate() { return ::operator new (sizeof(Node), std::align_val_t{alignof(Node)}); }
  static void deallocate(void* p) noexcept { ::operator delete (p, std::align_val_t{alignof(Node)}); }

  void* take() {
    if (spares_ == nullptr) return allocate();
    --spare_count_;
    return std::exchange(spares_, spares_->next);
  }

  void release(void* storage) noexcept {
    if (spare_count_ == spares_kept) return deallocate(storage);
    spares_ = ::new (storage) spare{spares_};
    ++spare_count_;
  }

  static void link(Node** buckets, std::size_t mask, Node* n) noexcept {
    Node*& head = buckets[n->hash & mask];
    n->chain = head;
    head = n;
  }

  std::unique_ptr<Node*[]> buckets_;
  std::size_t mask_;
  std::size_t size_ = 0;
  spare* spares_ = nullptr;  // storage of erased nodes, reused by make()
  std::size_t spare_count_ = 0;
};

}  // namespace keel::detail
