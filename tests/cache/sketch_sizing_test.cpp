// How much memory W-TinyLFU's bookkeeping takes: the frequency sketch and the
// ghost tables follow the number of entries a shard holds (estimated from the
// average weight), not its capacity, so a cache bounded by bytes does not
// allocate counters for a billion entries; the sketch grows without losing a
// count when more entries arrive.
#include <keel/cache/cache.hpp>
#include <keel/cache/frequency_sketch.hpp>
#include <keel/cache/w_tinylfu.hpp>

#include <catch.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

namespace {
std::uint64_t spread(std::uint64_t i) { return keel::detail::mix_hash(i); }

constexpr std::size_t kib = 1024;
constexpr std::size_t mib = 1024 * kib;
constexpr std::size_t gib = 1024 * mib;

// The value is its own weight in bytes.
struct byte_weigher {
  std::size_t operator()(int, std::size_t bytes) const noexcept { return bytes; }
};

// Inserts entries of `weight` into a lone policy, evicting as keel::cache does.
struct policy_driver {
  keel::w_tinylfu policy;
  std::deque<keel::detail::policy_entry> entries;  // stable addresses
  std::uint64_t next_key = 0;

  explicit policy_driver(std::size_t capacity) : policy(capacity) {}
  void insert(std::size_t weight) {
    keel::detail::policy_entry& e = entries.emplace_back();
    e.hash = spread(next_key++);
    e.weight = weight;
    policy.on_insert(e);
    while (keel::detail::policy_entry* v = policy.victim()) policy.on_remove(*v);
  }
};
}  // namespace

TEST_CASE("frequency_sketch grows without losing a count, and never beyond its bound", "[cache][sketch]") {
  keel::frequency_sketch sketch(64);
  CHECK(sketch.capacity() == 64);
  CHECK(sketch.memory_bytes() == 64 * 8);
  constexpr std::uint64_t keys = 300;  // in a 64-entry table: many collisions
  for (std::uint64_t k = 0; k < keys; ++k)
    for (std::uint64_t i = 0; i < k % 4; ++i) sketch.increment(spread(k));
  REQUIRE(sketch.sample_count() == 450);  // below 640: no halving yet
  std::vector<unsigned> before;
  for (std::uint64_t k = 0; k < keys; ++k) before.push_back(sketch.frequency(spread(k)));
  REQUIRE(sketch.ensure_capacity(5000));
  CHECK(sketch.capacity() == 8192);
  CHECK(sketch.memory_bytes() == 8192 * 8);
  for (std::uint64_t k = 0; k < keys; ++k) CHECK(sketch.frequency(spread(k)) == before[k]);
  // The larger table separates keys that shared blocks in the small one: new
  // counts for one key now move (almost) no other key's estimate.
  int others_moved_small = 0;
  {
    keel::frequency_sketch small(64);
    for (std::uint64_t k = 0; k < keys; ++k)
      for (std::uint64_t i = 0; i < k % 4; ++i) small.increment(spread(k));
    for (std::uint64_t k = keys; k < keys + 40; ++k)
      for (int i = 0; i < 4; ++i) small.increment(spread(k));
    for (std::uint64_t k = 0; k < keys; ++k) others_moved_small += small.frequency(spread(k)) != before[k] ? 1 : 0;
  }
  for (std::uint64_t k = keys; k < keys + 40; ++k)
    for (int i = 0; i < 4; ++i) sketch.increment(spread(k));
  int others_moved = 0;
  for (std::uint64_t k = 0; k < keys; ++k) others_moved += sketch.frequency(spread(k)) != before[k] ? 1 : 0;
  CAPTURE(others_moved, others_moved_small);
  CHECK(others_moved < others_moved_small);
  REQUIRE(sketch.ensure_capacity(100));  // never shrinks
  CHECK(sketch.capacity() == 8192);
  REQUIRE(sketch.ensure_capacity(std::size_t{1} << 40));
  CHECK(sketch.memory_bytes() == 8 * mib);  // bounded: 2^20 entries
}

TEST_CASE("W-TinyLFU bounded by entry count sizes its sketch for its capacity at the first insert", "[cache][sketch]") {
  policy_driver d(10'000);
  const std::size_t unsized = d.policy.memory_bytes();
  CHECK(unsized <= 1 * kib);  // nothing is allocated for capacity before an entry arrives
  d.insert(1);
  CHECK(d.policy.sketch().capacity() == 16'384);          // bit_ceil(10,000), as it always was
  CHECK(d.policy.sketch().sample_size() == 10 * 10'000);  // ages after 10 × capacity
  for (int i = 0; i < 20'000; ++i) d.insert(1);
  CHECK(d.policy.sketch().capacity() == 16'384);
  CHECK(d.policy.weight() == 10'000);
}

TEST_CASE("W-TinyLFU bounded by weight sizes its sketch for the entries it holds, and grows with them",
          "[cache][sketch]") {
  policy_driver d(1 * gib);
  for (int i = 0; i < 100; ++i) d.insert(1 * mib);  // 1 MiB values: 1,024 fit
  CHECK(d.policy.sketch().capacity() == 1024);
  CHECK(d.policy.sketch().sample_size() == 10 * 1024);  // ages at the pace of 1,024 entries, not 10 × 2^30
  const std::size_t small = d.policy.memory_bytes();
  CHECK(small <= 16 * kib);  // was 8 MiB of counters + 1 MiB of ghosts when sized by capacity
  // Smaller values arrive: the shard will hold more entries, and the sketch grows.
  for (int i = 0; i < 20'000; ++i) d.insert(16 * kib);
  CHECK(d.policy.sketch().capacity() > 1024);
  CHECK(d.policy.sketch().capacity() <= 2 * gib / (16 * kib));  // at most twice the 65,536 entries that fit
  CHECK(d.policy.memory_bytes() > small);
  CHECK(d.policy.weight() <= 1 * gib);
}

TEST_CASE("keel::cache bounded by a huge byte capacity does not allocate a huge sketch", "[cache][sketch]") {
  keel::cache<int, std::size_t, keel::w_tinylfu, std::chrono::steady_clock, std::hash<int>, std::equal_to<int>,
              byte_weigher>
      c({.capacity = 64 * gib});
  for (int k = 0; k < 3000; ++k) c.put(k, 256 * kib);  // a few thousand large embeddings
  std::size_t bytes = 0;
  std::size_t shards = 0;
  c.inspect_policies([&](const keel::w_tinylfu& p) {
    bytes += p.memory_bytes();
    ++shards;
  });
  CAPTURE(bytes, shards);
  REQUIRE(shards == c.shard_count());
  // 64 GiB of 256 KiB values is 262,144 entries when full: 12 bytes of
  // bookkeeping each (8 of sketch, 2 + 2 of ghost tables), at most doubled
  // by rounding each shard up to a power of two. Sized by capacity, it was
  // 9 MiB per shard (144 MiB with 16 shards).
  CHECK(bytes <= 2 * 262'144 * 12);
  CHECK(c.size() == 3000);
}
