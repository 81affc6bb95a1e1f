// W-TinyLFU's adaptation, driven through the policy alone: the hill climber
// and the recency alarm move the window towards recency on a sliding working
// set (where LRU is right) and back to a small window on a loop (where
// frequency is right). Deterministic: no clock, no threads, no randomness
// beyond the policy's fixed-seed generator.
#include <keel/cache/lru.hpp>
#include <keel/cache/w_tinylfu.hpp>
#include <keel/core/detail/random.hpp>

#include <catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <unordered_map>

namespace {

// A cache-aside loop over a policy: what keel::cache does with one shard and
// no concurrency, minus the values.
template <class Policy>
class policy_sim {
 public:
  explicit policy_sim(std::size_t capacity) : policy_(capacity) {}

  bool access(std::uint64_t key) {
    const auto it = entries_.find(key);
    if (it != entries_.end()) {
      policy_.on_hit(it->second);
      return true;
    }
    node& e = entries_[key];
    e.key = key;
    e.hash = keel::detail::mix64(key);
    policy_.on_insert(e);
    while (keel::detail::policy_entry* v = policy_.victim()) {
      policy_.on_remove(*v);
      entries_.erase(static_cast<node*>(v)->key);
    }
    return false;
  }
  Policy& policy() { return policy_; }
  std::size_t size() const { return entries_.size(); }

 private:
  struct node : keel::detail::policy_entry {
    std::uint64_t key = 0;
  };
  std::unordered_map<std::uint64_t, node> entries_;  // node-based: stable addresses
  Policy policy_;
};

// `passes` passes over a working set of `width` keys that slides forward by
// width/18 keys a pass: recently used keys return, the most frequent never do.
template <class Sim>
double sliding(Sim& sim, std::size_t width, int passes, std::size_t& max_window) {
  std::size_t hits = 0;
  std::size_t total = 0;
  for (std::size_t base = 0, pass = 0; pass < static_cast<std::size_t>(passes); ++pass, base += width / 18) {
    for (std::size_t i = 0; i < width; ++i, ++total) {
      hits += sim.access(base + i) ? 1 : 0;
      if constexpr (requires { sim.policy().window_capacity(); })
        max_window = std::max(max_window, sim.policy().window_capacity());
    }
  }
  return static_cast<double>(hits) / static_cast<double>(total);
}

// Skewed popularity: key k of 20,000 drawn with probability ~ 1/(k+1) (a
// harmonic distribution, by inverse CDF on a fixed-seed generator).
std::uint64_t harmonic_key(std::uint64_t& state) {
  const double u = static_cast<double>(keel::detail::splitmix64(state) >> 11) * 0x1p-53;
  return static_cast<std::uint64_t>(std::exp(u * std::log(20'000.0))) - 1;
}

}  // namespace

TEST_CASE("W-TinyLFU opens its window to the whole cache on a sliding working set, and matches LRU",
          "[cache][policy][adaptive]") {
  constexpr std::size_t capacity = 1000;
  policy_sim<keel::w_tinylfu> tiny(capacity);
  policy_sim<keel::lru> lru(capacity);
  CHECK(tiny.policy().window_capacity() == capacity / 100);  // starts at 1%
  std::size_t max_window = 0;
  std::size_t unused = 0;
  const double tiny_ratio = sliding(tiny, 570, 1200, max_window);
  const double lru_ratio = sliding(lru, 570, 1200, unused);
  CAPTURE(tiny_ratio, lru_ratio, max_window, tiny.policy().window_capacity());
  CHECK(max_window == capacity);                                // the recency alarm tried pure LRU...
  CHECK(tiny.policy().window_capacity() >= capacity * 9 / 10);  // ...and it stayed, because it was better
  CHECK(tiny_ratio >= lru_ratio - 0.01);
  CHECK(tiny.size() <= capacity);
}

TEST_CASE("W-TinyLFU's window comes back down when frequency wins again (a loop larger than the cache)",
          "[cache][policy][adaptive]") {
  constexpr std::size_t capacity = 1000;
  policy_sim<keel::w_tinylfu> tiny(capacity);
  std::size_t max_window = 0;
  sliding(tiny, 570, 600, max_window);
  REQUIRE(tiny.policy().window_capacity() >= capacity * 9 / 10);
  // A loop over 1500 keys: LRU (a full window) never hits; a small window
  // with frequency admission keeps a stable part of the loop.
  std::size_t hits_late = 0;
  for (int pass = 0; pass < 400; ++pass)
    for (std::uint64_t k = 0; k < 1500; ++k) {
      const bool hit = tiny.access((1ULL << 40) + k);
      if (pass >= 350) hits_late += hit ? 1 : 0;
    }
  CAPTURE(tiny.policy().window_capacity(), hits_late);
  CHECK(tiny.policy().window_capacity() <= capacity / 10);
  CHECK(hits_late >= 50 * 1500 / 3);
}

TEST_CASE("W-TinyLFU keeps a small window on skewed traffic: the recency alarm stays quiet",
          "[cache][policy][adaptive]") {
  constexpr std::size_t capacity = 1000;
  policy_sim<keel::w_tinylfu> tiny(capacity);
  std::uint64_t state = 42;
  std::size_t max_window = 0;
  for (int i = 0; i < 400'000; ++i) {
    tiny.access(harmonic_key(state));
    max_window = std::max(max_window, tiny.policy().window_capacity());
  }
  CAPTURE(max_window);
  CHECK(max_window < capacity / 2);  // never jumped to LRU
}

TEST_CASE("W-TinyLFU answers a popularity shift within about one cache's worth of requests, wherever it falls",
          "[cache][policy][adaptive]") {
  // Skewed traffic over 20,000 keys, then the same popularity over 20,000 new
  // keys (yesterday's hot keys never return). The shift falls at different
  // points of the climber's 10 × capacity samples: the alarm's evidence is
  // counted over recent misses, not per sample, so where it falls does not
  // matter. (Counted per sample, the window opened 1,500-7,000 requests after
  // the shift and W-TinyLFU trailed LRU by 3.7-8.3 points over the next
  // 10,000 requests: this test fails.)
  constexpr std::size_t capacity = 1000;
  for (const int before_shift : {10'500, 15'000, 20'500, 30'000}) {
    policy_sim<keel::w_tinylfu> tiny(capacity);
    policy_sim<keel::lru> lru(capacity);
    std::uint64_t state = 42;
    for (int i = 0; i < before_shift; ++i) {
      const std::uint64_t key = harmonic_key(state);
      tiny.access(key);
      lru.access(key);
    }
    REQUIRE(tiny.policy().window_capacity() < capacity / 2);
    int opened_after = -1;
    int tiny_hits = 0;
    int lru_hits = 0;
    constexpr int after_shift = 10'000;
    for (int i = 0; i < after_shift; ++i) {
      const std::uint64_t key = (1ULL << 40) + harmonic_key(state);
      tiny_hits += tiny.access(key) ? 1 : 0;
      lru_hits += lru.access(key) ? 1 : 0;
      if (opened_after < 0 && tiny.policy().window_capacity() == capacity) opened_after = i;
    }
    const double tiny_ratio = tiny_hits / double{after_shift};
    const double lru_ratio = lru_hits / double{after_shift};
    CAPTURE(before_shift, opened_after, tiny_ratio, lru_ratio);
    CHECK(opened_after >= 0);
    CHECK(opened_after <= 1200);             // the recency alarm rang (measured: 312-755)
    CHECK(tiny_ratio >= lru_ratio - 0.035);  // measured: 1.3-2.8 points below
  }
}
