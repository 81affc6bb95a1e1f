// keel/limit/detail/tier_table.hpp — the distinct quotas (tiers) of one shard of a keyed limiter.
//
// Keys share a handful of quotas (plans: free, pro, enterprise), so a table
// slot keeps a 32-bit index into this table instead of the 16-byte GCRA
// parameters: that is what lets a slot for a std::uint64_t key fit in 32
// bytes, two to a cache line. Entries are counted: each key holding a tier is
// one user, and an entry whose users dropped to zero is reused by the next
// new quota, so the table never holds more entries than its shard holds keys.
// Interning scans the entries (a new key is the slow path; with one distinct
// quota per key the scan is as long as the shard). Not thread-safe: the
// keyed limiter holds the shard's mutex around every call.
#pragma once

#include <keel/limit/rate_limit.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace keel::detail {

template <class Allocator>
class tier_table {
 public:
  explicit tier_table(const Allocator& a) : entries_(entry_allocator(a)) {}

  /// The index of `p`, counting one more user; may allocate (strong guarantee).
  std::uint32_t acquire(const gcra_params& p) {
    std::size_t unused = entries_.size();
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      entry& e = entries_[i];
      if (e.users == 0) {
        if (unused == entries_.size()) unused = i;
      } else if (e.params == p) {
        ++e.users;
        return static_cast<std::uint32_t>(i);
      }
    }
    if (unused == entries_.size()) entries_.push_back(entry{p, 0});
    entries_[unused] = entry{p, 1};
    return static_cast<std::uint32_t>(unused);
  }

  /// One user of tier `i` is gone.
  void release(std::uint32_t i) noexcept { --entries_[i].users; }

  const gcra_params& operator[](std::uint32_t i) const noexcept { return entries_[i].params; }

  /// Entries held (some may have no user, waiting for reuse).
  std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct entry {
    gcra_params params;
    std::uint32_t users = 0;
  };
  using entry_allocator = typename std::allocator_traits<Allocator>::template rebind_alloc<entry>;

  std::vector<entry, entry_allocator> entries_;
};

}  // namespace keel::detail
