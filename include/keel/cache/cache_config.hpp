// keel/cache/cache_config.hpp — how a keel::cache is sized, expires and reports.
//
//   keel::cache_config cfg{.capacity = 512 << 20,                 // 512 MiB of embeddings
//                          .expire_after_write = std::chrono::hours(1),
//                          .negative_ttl = std::chrono::seconds(5)};
//
// Invalid settings are rejected when the cache is built, with a message that
// names the field ("keel::cache: capacity must be at least 1").
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace keel {

struct cache_config {
  /// Upper bound on the total weight of the entries (with the default weigher,
  /// weight 1 per entry: the number of entries). Required, at least 1.
  std::size_t capacity = 0;
  /// Independent shards (a power of two), each with its own lock and its own
  /// share of capacity and eviction policy. 0: chosen from the core count,
  /// keeping at least 32 units of capacity per shard.
  std::size_t shards = 0;
  /// Entries expire this long after they were written (0: never).
  std::chrono::nanoseconds expire_after_write{0};
  /// Entries expire this long after they were last read or written (0: never).
  std::chrono::nanoseconds expire_after_access{0};
  /// get_or_load / begin_load remember a failed load (a rejection, not an
  /// exception) this long and return it without loading again (0: never).
  std::chrono::nanoseconds negative_ttl{0};
};

/// Why an entry left the cache (passed to the removal listener).
enum class removal_cause : std::uint8_t {
  evicted,   ///< the policy chose it to make room (or it alone outweighs its shard)
  expired,   ///< its time to live passed
  erased,    ///< erase() or clear()
  replaced,  ///< put() or a completed load wrote a new value for its key
};

constexpr const char* to_string(removal_cause c) noexcept {
  switch (c) {
    case removal_cause::evicted: return "evicted";
    case removal_cause::expired: return "expired";
    case removal_cause::erased: return "erased";
    case removal_cause::replaced: return "replaced";
  }
  return "unknown";
}

/// A snapshot of a cache's counters since construction.
struct cache_stats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t evictions = 0;        ///< removed by the policy to respect capacity
  std::uint64_t expirations = 0;      ///< removed because their time to live passed
  std::uint64_t loads = 0;            ///< loader runs (get_or_load) and permits issued (begin_load)
  std::uint64_t load_failures = 0;    ///< loads that ended in a rejection, an exception or an abandoned permit
  std::uint64_t coalesced_waits = 0;  ///< misses that waited for another caller's load instead of loading
  std::size_t size = 0;               ///< entries held
  std::size_t weight = 0;             ///< total weight held

  double hit_ratio() const noexcept {
    const std::uint64_t total = hits + misses;
    return total == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(total);
  }
};

/// The default weigher: every entry weighs 1, so capacity counts entries.
struct unit_weigher {
  template <class Key, class Value>
  constexpr std::size_t operator()(const Key&, const Value&) const noexcept {
    return 1;
  }
};

/// A transparent string hash: with std::equal_to<>, a cache keyed by
/// std::string is searched with a std::string_view or a literal, no copy.
///   keel::cache<std::string, V, keel::w_tinylfu, Clock, keel::string_hash, std::equal_to<>>
struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

}  // namespace keel
