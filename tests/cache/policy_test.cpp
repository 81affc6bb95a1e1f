// Eviction policies on their own: the frequency sketch, W-TinyLFU's scan and
// one-hit-wonder resistance against LRU, and the hill climber's window.
#include <keel/cache/cache.hpp>
#include <keel/cache/frequency_sketch.hpp>
#include <keel/cache/lru.hpp>
#include <keel/cache/w_tinylfu.hpp>

#include <catch.hpp>

#include <cstddef>
#include <cstdint>

namespace {
std::uint64_t spread(std::uint64_t i) { return keel::detail::mix_hash(i); }

// Cache-aside access: a hit counts, a miss is filled.
template <class Cache>
bool access(Cache& c, int key) {
  if (c.get(key)) return true;
  c.put(key, key);
  return false;
}
}  // namespace

TEST_CASE("frequency_sketch counts up to 15 and halves after its sample size", "[cache][sketch]") {
  keel::frequency_sketch sketch(64);  // ages after 640 increments
  const std::uint64_t hot = spread(1);
  CHECK(sketch.frequency(hot) == 0);
  for (int i = 0; i < 10; ++i) sketch.increment(hot);
  CHECK(sketch.frequency(hot) == 10);
  for (int i = 0; i < 10; ++i) sketch.increment(hot);
  CHECK(sketch.frequency(hot) == 15);  // saturates
  // Other keys: estimates are upper bounds, and rarely far off for a sketch this size.
  int exact = 0;
  for (std::uint64_t k = 100; k < 150; ++k) {
    sketch.increment(spread(k));
    exact += sketch.frequency(spread(k)) == 1 ? 1 : 0;
    CHECK(sketch.frequency(spread(k)) >= 1);
  }
  CHECK(exact >= 45);
  // Fill the sample: every counter is halved once.
  for (std::uint64_t k = 1000, last = 0; sketch.sample_count() >= last && k < 5000; ++k) {
    last = sketch.sample_count();
    sketch.increment(spread(k));
  }
  CHECK(sketch.frequency(hot) == 7);
}

TEST_CASE("W-TinyLFU keeps a hot set through scans that flush LRU", "[cache][policy]") {
  constexpr std::size_t capacity = 100;
  keel::cache<int, int, keel::w_tinylfu> tiny({.capacity = capacity, .shards = 1});
  keel::cache<int, int, keel::lru> lru({.capacity = capacity, .shards = 1});
  auto run = [](auto& c) {
    for (int round = 0; round < 20; ++round)
      for (int k = 0; k < 50; ++k) access(c, k);
    // A scan of 1000 one-time keys, with the hot set still read between them.
    int hot_hits = 0;
    int scan_key = 1'000'000;
    for (int i = 0; i < 500; ++i) {
      access(c, scan_key++);
      access(c, scan_key++);
      hot_hits += access(c, i % 50) ? 1 : 0;
    }
    // A pure one-pass scan of 3 × capacity, nothing hot in between.
    for (int i = 0; i < 300; ++i) access(c, scan_key++);
    int kept = 0;
    for (int k = 0; k < 50; ++k) kept += c.get(k) ? 1 : 0;
    return std::pair{hot_hits, kept};
  };
  const auto [tiny_hits, tiny_kept] = run(tiny);
  const auto [lru_hits, lru_kept] = run(lru);
  CAPTURE(tiny_hits, tiny_kept, lru_hits, lru_kept);
  CHECK(lru_hits < 50);  // 149 distinct keys between two reads of a hot key: only the first round hits
  CHECK(lru_kept == 0);
  CHECK(tiny_hits >= 450);
  CHECK(tiny_kept >= 45);
}

TEST_CASE("W-TinyLFU hits on a loop larger than the cache, where LRU never hits", "[cache][policy]") {
  constexpr std::size_t capacity = 1000;
  keel::cache<int, int, keel::w_tinylfu> tiny({.capacity = capacity, .shards = 1});
  keel::cache<int, int, keel::lru> lru({.capacity = capacity, .shards = 1});
  int tiny_hits = 0;
  int lru_hits = 0;
  for (int pass = 0; pass < 50; ++pass) {
    for (int key = 0; key < 1500; ++key) {
      tiny_hits += access(tiny, key) ? 1 : 0;
      lru_hits += access(lru, key) ? 1 : 0;
    }
  }
  CAPTURE(tiny_hits, lru_hits);
  CHECK(lru_hits == 0);               // each key is evicted just before it comes round again
  CHECK(tiny_hits >= 50 * 1500 / 3);  // frequency keeps a stable part of the loop resident
}

TEST_CASE("W-TinyLFU admits by frequency: a one-hit wonder does not displace a reused key", "[cache][policy]") {
  keel::cache<int, int, keel::w_tinylfu> c({.capacity = 10, .shards = 1});
  for (int k = 0; k < 10; ++k) c.put(k, k);
  for (int round = 0; round < 3; ++round)
    for (int k = 0; k < 10; ++k) CHECK(c.get(k).has_value());
  for (int k = 100; k < 200; ++k) c.put(k, k);  // 100 one-hit wonders
  int kept = 0;
  for (int k = 0; k < 10; ++k) kept += c.get(k) ? 1 : 0;
  CHECK(kept >= 9);  // the window (here 0 entries at 1% of 10) holds at most the newest wonder
  CHECK(c.stats().evictions >= 90);
}
