// keel/limit/detail/key_table.hpp — the keyed limiter's per-shard hash table.
//
// Open addressing with linear probing and backward-shift deletion (Knuth,
// TAOCP vol. 3, 6.4, Algorithm R): each slot holds the key and its GCRA state
// inline, so finding a tenant costs one cache miss, where std::unordered_map
// costs three dependent ones (bucket, the node before, the node). No
// tombstones: a deletion moves later keys of the same run back, so probe
// lengths stay short under constant churn.
//
// Made for one cache line per lookup. A slot is small — for a std::uint64_t
// key 32 bytes: key, TAT, id, pins, and a 32-bit tier index (the GCRA parameters
// live once per distinct quota, detail/tier_table.hpp) — and its alignment is
// its size rounded up to a power of two, so no slot straddles two lines. A
// key's home is the first slot of a cache line, so the first line read holds
// every slot of that line (this is linear probing over buckets of one line,
// as Swiss tables and F14 probe a group at a time). prefetch() lets the
// caller start that miss before it does anything else (the keyed limiter
// reads the clock meanwhile).
//
// Slots move (on deletion and growth), so a slot is also named by an id that
// never changes; a reservation keeps the id and finds its slot again if it
// moved. Not thread-safe, except prefetch(): the keyed limiter holds the
// shard's mutex around every other call.
#pragma once

#include <keel/core/detail/cache_line.hpp>
#include <keel/core/detail/random.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>

namespace keel::detail {

/// One key's GCRA state; its T and τ are in the shard's tier table.
struct key_state {
  std::int64_t tat = 0;
  std::uint32_t tier = 0;  ///< index into the shard's tier_table
  std::uint32_t pins = 0;  ///< unsettled reservations: a pinned key is never dropped
};

template <class Key>
struct key_slot_fields {
  std::uint64_t id;  ///< 0: empty
  key_state state;
  alignas(Key) unsigned char key_bytes[sizeof(Key)];
  Key& key() noexcept { return *std::launder(reinterpret_cast<Key*>(key_bytes)); }
  const Key& key() const noexcept { return *std::launder(reinterpret_cast<const Key*>(key_bytes)); }
};

template <class Key, class Hash, class KeyEqual, class Allocator>
class key_table {
  static constexpr std::size_t slot_align = std::min(cache_line, std::bit_ceil(sizeof(key_slot_fields<Key>)));

 public:
  struct alignas(slot_align) slot : key_slot_fields<Key> {};

  /// Slots per cache line (1 for slots of a line or more).
  static constexpr std::size_t per_line = sizeof(slot) < cache_line ? cache_line / sizeof(slot) : 1;
  /// The table grows when an insert would pass 7/8 full.
  static constexpr std::size_t max_load_num = 7, max_load_den = 8;

  /// The hash bits the table uses: the low bits pick the home slot, so a
  /// caller sharding on the high bits keeps the two independent.
  static constexpr std::uint64_t spread(std::size_t hash) noexcept { return mix64(hash); }

  key_table(const Hash& h, const KeyEqual& eq, const Allocator& a) : hash_(h), eq_(eq), alloc_(a) {}
  key_table(const key_table&) = delete;
  key_table& operator=(const key_table&) = delete;
  ~key_table() { release(lines(), capacity()); }

  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_.load(std::memory_order_relaxed); }

  /// Starts loading the line where a key with `hash` would be, and the next
  /// one: at 7/8 load about one lookup in five runs past its home line (in a
  /// simulation of 1 562 keys in 2 048 slots, 23%; 12% past two lines), and
  /// two prefetches in flight cost one miss's wait. Safe without the lock: it
  /// reads two atomics, and a prefetch of a stale address (the table grew
  /// meanwhile) never faults; it only wastes the prefetch.
  void prefetch(std::size_t hash) const noexcept {
    // Capacity first (acquire, paired with grow's release): the lines read
    // after it are at least that large, so the address is inside them.
    const std::size_t cap = capacity_.load(std::memory_order_acquire);
    if (cap == 0) return;
    const auto base = reinterpret_cast<std::uintptr_t>(lines_.load(std::memory_order_relaxed));
    const std::size_t first = home(hash, cap - 1) / per_line;
    __builtin_prefetch(reinterpret_cast<const void*>(base + first * sizeof(line)), 1);
    __builtin_prefetch(reinterpret_cast<const void*>(base + ((first + 1) & (cap / per_line - 1)) * sizeof(line)), 1);
  }

  slot* find(const Key& key, std::size_t hash) noexcept {
    const view v = slots();
    if (v.mask == 0) return nullptr;
    slot& s = probe(v, hash, [&](const slot& at) { return at.id == 0 || eq_(at.key(), key); });
    return s.id == 0 ? nullptr : &s;
  }

  /// The slot with `id`, which was inserted with `hash` and is still present.
  slot& find_id(std::size_t hash, std::uint64_t id) noexcept {
    return probe(slots(), hash, [&](const slot& at) { return at.id == id; });
  }

  /// Inserts a key known to be absent; grows (allocates) past 7/8 load. Strong guarantee.
  slot& insert(const Key& key, std::size_t hash, const key_state& st) {
    if ((size_ + 1) * max_load_den > capacity() * max_load_num) grow();
    slot& s = probe(slots(), hash, [](const slot& at) { return at.id == 0; });
    ::new (static_cast<void*>(s.key_bytes)) Key(key);  // may throw: nothing changed yet
    s.state = st;
    s.id = next_id_++;
    ++size_;
    return s;
  }

  /// Erases every slot for which drop(slot) is true, at once (so drop may
  /// account for what it drops); returns how many.
  template <class Drop>
  std::size_t erase_if(Drop&& drop) {
    std::size_t erased = 0;
    const view v = slots();
    for (std::size_t i = 0; i < capacity();) {
      // After an erase, slot i holds a key moved back from later in its run:
      // look at i again. A key moved across the wrap-around may be looked at
      // twice, which is harmless; none is skipped.
      if (v[i].id != 0 && drop(std::as_const(v[i]))) {
        erase_at(v, i);
        ++erased;
      } else {
        ++i;
      }
    }
    return erased;
  }

 private:
  struct alignas(cache_line) line {
    slot slots[per_line];
  };
  using line_allocator = typename std::allocator_traits<Allocator>::template rebind_alloc<line>;
  using traits = std::allocator_traits<line_allocator>;

  // The slot array as one load of each atomic: slot i and the index mask.
  struct view {
    line* lines;
    std::size_t mask;  ///< capacity − 1; 0 while there is no array
    slot& operator[](std::size_t i) const noexcept { return lines[i / per_line].slots[i % per_line]; }
  };
  view slots() const noexcept {
    const std::size_t cap = capacity();
    return {lines(), cap == 0 ? 0 : cap - 1};
  }
  line* lines() const noexcept { return lines_.load(std::memory_order_relaxed); }

  // The first slot of a line: the low bits of the spread hash pick the line.
  static std::size_t home(std::size_t hash, std::size_t mask) noexcept {
    return static_cast<std::size_t>(spread(hash)) & mask & ~(per_line - 1);
  }

  // The first slot from `hash`'s home, in probe order, where stop(slot) holds
  // (there is one: the table always has an empty slot). A home is the start
  // of a line, so the walk goes line by line, each line's slots in order.
  template <class Stop>
  static slot& probe(const view& v, std::size_t hash, Stop&& stop) noexcept {
    const std::size_t line_mask = v.mask / per_line;
    for (std::size_t l = home(hash, v.mask) / per_line;; l = (l + 1) & line_mask) {
      for (slot& s : v.lines[l].slots)
        if (stop(std::as_const(s))) return s;
    }
  }

  void erase_at(const view& v, std::size_t hole) {
    v[hole].key().~Key();
    v[hole].id = 0;
    --size_;
    // Backward shift: move each later key of the run into the hole unless its
    // home lies cyclically after the hole (then it must stay reachable where it is).
    for (std::size_t j = (hole + 1) & v.mask; v[j].id != 0; j = (j + 1) & v.mask) {
      const std::size_t h = home(hash_(v[j].key()), v.mask);
      const bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
      if (stays) continue;
      relocate(v[j], v[hole]);
      hole = j;
    }
  }

  static void relocate(slot& from, slot& to) noexcept {
    ::new (static_cast<void*>(to.key_bytes)) Key(std::move(from.key()));
    from.key().~Key();
    to.state = from.state;
    to.id = std::exchange(from.id, 0);
  }

  void grow() {
    const std::size_t old_capacity = capacity();
    const std::size_t cap = old_capacity == 0 ? std::max<std::size_t>(16, per_line) : old_capacity * 2;
    line_allocator a(alloc_);
    line* fresh = traits::allocate(a, cap / per_line);
    for (std::size_t i = 0; i < cap / per_line; ++i) ::new (static_cast<void*>(fresh + i)) line{};
    line* old = lines();
    for (std::size_t i = 0; i < old_capacity; ++i) {
      slot& from = old[i / per_line].slots[i % per_line];
      if (from.id == 0) continue;
      relocate(from, probe({fresh, cap - 1}, hash_(from.key()), [](const slot& at) { return at.id == 0; }));
    }
    lines_.store(fresh, std::memory_order_relaxed);
    capacity_.store(cap, std::memory_order_release);
    if (old != nullptr) traits::deallocate(a, old, old_capacity / per_line);
  }

  void release(line* ls, std::size_t cap) noexcept {
    if (ls == nullptr) return;
    for (std::size_t i = 0; i < cap; ++i)
      if (ls[i / per_line].slots[i % per_line].id != 0) ls[i / per_line].slots[i % per_line].key().~Key();
    line_allocator a(alloc_);
    traits::deallocate(a, ls, cap / per_line);
  }

  // Read without the lock by prefetch(); written only by grow(), lines first.
  std::atomic<line*> lines_{nullptr};
  std::atomic<std::size_t> capacity_{0};
  std::size_t size_ = 0;
  std::uint64_t next_id_ = 1;
  [[no_unique_address]] Hash hash_;
  [[no_unique_address]] KeyEqual eq_;
  [[no_unique_address]] Allocator alloc_;
};

}  // namespace keel::detail
