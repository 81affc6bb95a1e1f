// Model-based tests: keel::cache against simple single-threaded references on
// seeded random operation sequences.
//  * keel::lru, one shard: exact agreement with a std::list + std::unordered_map
//    LRU (same hits, same evictions in the same order, same size), by count and
//    by weight.
//  * keel::w_tinylfu, any shards: every get returns the last value written for
//    its key or nothing (never a stale, erased or foreign value), weight stays
//    within capacity, and the internal structures agree.
#include <keel/cache/cache.hpp>
#include <keel/core/clock.hpp>

#include <catch.hpp>

#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <random>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

// The reference: what a user writes, single-threaded.
class reference_lru {
 public:
  explicit reference_lru(std::size_t capacity) : capacity_(capacity) {}

  std::optional<int> get(int key) {
    const auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    order_.splice(order_.begin(), order_, it->second);
    return it->second->value;
  }
  void put(int key, int value, std::size_t weight, std::vector<std::pair<int, int>>& evicted) {
    const auto it = index_.find(key);
    if (weight > capacity_) {  // keel drops a value that can never fit, and the one it replaces
      if (it != index_.end()) erase(key);
      evicted.emplace_back(key, value);
      return;
    }
    if (it != index_.end()) {
      weight_ = weight_ - it->second->weight + weight;
      it->second->value = value;
      it->second->weight = weight;
      order_.splice(order_.begin(), order_, it->second);
    } else {
      order_.push_front({key, value, weight});
      index_[key] = order_.begin();
      weight_ += weight;
    }
    while (weight_ > capacity_) {
      const auto& victim = order_.back();
      evicted.emplace_back(victim.key, victim.value);
      weight_ -= victim.weight;
      index_.erase(victim.key);
      order_.pop_back();
    }
  }
  bool erase(int key) {
    const auto it = index_.find(key);
    if (it == index_.end()) return false;
    weight_ -= it->second->weight;
    order_.erase(it->second);
    index_.erase(it);
    return true;
  }
  std::size_t size() const { return index_.size(); }
  std::size_t weight() const { return weight_; }

 private:
  struct item {
    int key;
    int value;
    std::size_t weight;
  };
  std::list<item> order_;
  std::unordered_map<int, std::list<item>::iterator> index_;
  std::size_t capacity_;
  std::size_t weight_ = 0;
};

struct value_weigher {  // the weight is stored in the value's low bits: 1..5
  std::size_t operator()(const int&, const int& v) const { return static_cast<std::size_t>(v % 5 + 1); }
};

}  // namespace

TEST_CASE("keel::lru with one shard agrees exactly with a reference LRU", "[cache][model]") {
  const bool weighted = GENERATE(false, true);
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    std::mt19937_64 rng(seed);
    const std::size_t capacity = 1 + rng() % 24;
    const int keys = static_cast<int>(2 + rng() % (3 * capacity));
    std::vector<std::pair<int, int>> evicted;
    auto listener = [&](const int& k, const int& v, keel::removal_cause why) {
      if (why == keel::removal_cause::evicted) evicted.emplace_back(k, v);
    };
    using model_cache =
        keel::cache<int, int, keel::lru, keel::manual_clock, std::hash<int>, std::equal_to<int>, value_weigher>;
    model_cache c({.capacity = capacity, .shards = 1}, keel::manual_clock{}, value_weigher{}, listener);
    reference_lru ref(capacity);
    std::vector<std::pair<int, int>> ref_evicted;
    CAPTURE(seed, capacity, keys, weighted);

    for (int step = 0; step < 3000; ++step) {
      const int key = static_cast<int>(rng() % static_cast<std::uint64_t>(keys));
      const auto op = rng() % 10;
      CAPTURE(step, key, op);
      if (op < 5) {
        REQUIRE(c.get(key) == ref.get(key));
      } else if (op < 9) {
        const int value = weighted ? static_cast<int>(rng() % 1000) : static_cast<int>(5 * (rng() % 1000));
        c.put(key, value);
        ref.put(key, value, value_weigher{}(key, value), ref_evicted);
      } else {
        REQUIRE(c.erase(key) == ref.erase(key));
      }
      REQUIRE(c.size() == ref.size());
      REQUIRE(c.weight() == ref.weight());
      REQUIRE(evicted == ref_evicted);
    }
    bool consistent = false;
    c.inspect([&](std::size_t, std::size_t, bool ok) { consistent = ok; });
    CHECK(consistent);
  }
}

TEST_CASE("keel::w_tinylfu never returns a stale value and stays within capacity", "[cache][model]") {
  const std::size_t shards = GENERATE(std::size_t{1}, std::size_t{4});
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    const std::size_t capacity = shards * (4 + rng() % 60);
    const int keys = static_cast<int>(capacity * (1 + rng() % 4));
    keel::manual_clock clock;
    keel::cache<int, int, keel::w_tinylfu, keel::manual_clock> c(
        {.capacity = capacity, .shards = shards, .expire_after_write = std::chrono::seconds(50)}, clock);
    // The model: the last value written for each key and when; absent = erased or never written.
    std::unordered_map<int, std::pair<int, std::int64_t>> last;
    std::int64_t now = 0;
    CAPTURE(seed, capacity, keys, shards);
    for (int step = 0; step < 4000; ++step) {
      // Skewed keys: small keys are hot.
      const int key = static_cast<int>((rng() % static_cast<std::uint64_t>(keys)) *
                                       (rng() % static_cast<std::uint64_t>(keys)) / static_cast<std::uint64_t>(keys));
      const auto op = rng() % 20;
      if (op < 12) {
        const auto got = c.get(key);
        if (got) {
          const auto it = last.find(key);
          REQUIRE(it != last.end());
          REQUIRE(*got == it->second.first);
          REQUIRE(now < it->second.second + 50);  // expired values are never returned
        }
      } else if (op < 18) {
        const int value = static_cast<int>(rng());
        c.put(key, value);
        last[key] = {value, now};
      } else if (op < 19) {
        c.erase(key);
        last.erase(key);
      } else {
        clock.advance(std::chrono::seconds(1));
        ++now;
      }
      REQUIRE(c.weight() <= capacity);
      REQUIRE(c.size() <= capacity);
    }
    bool consistent = true;
    c.inspect([&](std::size_t cap, std::size_t w, bool ok) { consistent = consistent && ok && w <= cap; });
    CHECK(consistent);
  }
}
