// keel/limit/detail/key_table.hpp — the keyed limiter's per-shard hash table.
//
// Open addressing with linear probing and backward-shift deletion (Knuth,
// TAOCP vol. 3, 6.4, Algorithm R): each slot holds the key and its GCRA state
// inline, so finding a tenant costs one cache miss, where std::unordered_map
// costs three dependent ones (bucket, the node before, the node). No
// tombstones: a deletion moves later keys of the same run back, so probe
// lengths stay short under constant churn. Slots move (on deletion and
// growth), so a slot is also named by an id that never changes; a reservation
// keeps the id and finds its slot again if it moved. Not thread-safe: the
// keyed limiter holds the shard's mutex around every call.
#pragma once

#include <keel/core/detail/random.hpp>
#include <keel/limit/detail/gcra_math.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>

namespace keel::detail {

/// One key's GCRA state.
struct key_state {
  gcra_params params;
  std::int64_t tat = 0;
  std::uint32_t pins = 0;  ///< unsettled reservations: a pinned key is never dropped
};

template <class Key, class Hash, class KeyEqual, class Allocator>
class key_table {
 public:
  struct slot {
    std::uint64_t id;  ///< 0: empty
    key_state state;
    alignas(Key) unsigned char key_bytes[sizeof(Key)];
    Key& key() noexcept { return *std::launder(reinterpret_cast<Key*>(key_bytes)); }
  };

  key_table(const Hash& h, const KeyEqual& eq, const Allocator& a) : hash_(h), eq_(eq), alloc_(a) {}
  key_table(const key_table&) = delete;
  key_table& operator=(const key_table&) = delete;
  ~key_table() { release(slots_, capacity_); }

  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }

  slot* find(const Key& key, std::size_t hash) noexcept {
    if (capacity_ == 0) return nullptr;
    for (std::size_t i = home(hash);; i = (i + 1) & mask()) {
      slot& s = slots_[i];
      if (s.id == 0) return nullptr;
      if (eq_(s.key(), key)) return &s;
    }
  }

  /// The slot with `id`, which was inserted with `hash` and is still present.
  slot& find_id(std::size_t hash, std::uint64_t id) noexcept {
    std::size_t i = home(hash);
    while (slots_[i].id != id) i = (i + 1) & mask();
    return slots_[i];
  }

  /// Inserts a key known to be absent; grows (allocates) at 3/4 load. Strong guarantee.
  slot& insert(const Key& key, std::size_t hash, const key_state& st) {
    if ((size_ + 1) * 4 > capacity_ * 3) grow();
    std::size_t i = home(hash);
    while (slots_[i].id != 0) i = (i + 1) & mask();
    slot& s = slots_[i];
    ::new (static_cast<void*>(s.key_bytes)) Key(key);  // may throw: nothing changed yet
    s.state = st;
    s.id = next_id_++;
    ++size_;
    return s;
  }

  /// Erases every slot for which drop(slot) is true; returns how many.
  template <class Drop>
  std::size_t erase_if(Drop&& drop) {
    std::size_t erased = 0;
    for (std::size_t i = 0; i < capacity_;) {
      // After an erase, slot i holds a key moved back from later in its run:
      // look at i again. A key moved across the wrap-around may be looked at
      // twice, which is harmless; none is skipped.
      if (slots_[i].id != 0 && drop(std::as_const(slots_[i]))) {
        erase_at(i);
        ++erased;
      } else {
        ++i;
      }
    }
    return erased;
  }

 private:
  using slot_allocator = typename std::allocator_traits<Allocator>::template rebind_alloc<slot>;
  using traits = std::allocator_traits<slot_allocator>;

  std::size_t mask() const noexcept { return capacity_ - 1; }
  // A full 64-bit mix (splitmix64's finaliser), so the slot index is
  // independent of the high bits that picked the shard.
  std::size_t home(std::size_t hash) const noexcept { return static_cast<std::size_t>(mix64(hash)) & mask(); }

  void erase_at(std::size_t hole) {
    slots_[hole].key().~Key();
    slots_[hole].id = 0;
    --size_;
    // Backward shift: move each later key of the run into the hole unless its
    // home lies cyclically after the hole (then it must stay reachable where it is).
    for (std::size_t j = (hole + 1) & mask(); slots_[j].id != 0; j = (j + 1) & mask()) {
      const std::size_t h = home(hash_(slots_[j].key()));
      const bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
      if (stays) continue;
      relocate(slots_[j], slots_[hole]);
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
    const std::size_t capacity = capacity_ == 0 ? 16 : capacity_ * 2;
    slot_allocator a(alloc_);
    slot* fresh = traits::allocate(a, capacity);
    for (std::size_t i = 0; i < capacity; ++i) ::new (static_cast<void*>(fresh + i)) slot{};
    slot* old = std::exchange(slots_, fresh);
    const std::size_t old_capacity = std::exchange(capacity_, capacity);
    for (std::size_t i = 0; i < old_capacity; ++i) {
      if (old[i].id == 0) continue;
      std::size_t j = home(hash_(old[i].key()));
      while (slots_[j].id != 0) j = (j + 1) & mask();
      relocate(old[i], slots_[j]);
    }
    traits::deallocate(a, old, old_capacity);
  }

  void release(slot* slots, std::size_t capacity) noexcept {
    if (slots == nullptr) return;
    for (std::size_t i = 0; i < capacity; ++i)
      if (slots[i].id != 0) slots[i].key().~Key();
    slot_allocator a(alloc_);
    traits::deallocate(a, slots, capacity);
  }

  [[no_unique_address]] Hash hash_;
  [[no_unique_address]] KeyEqual eq_;
  [[no_unique_address]] Allocator alloc_;
  slot* slots_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t size_ = 0;
  std::uint64_t next_id_ = 1;
};

}  // namespace keel::detail
