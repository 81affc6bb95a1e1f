// Concurrency stress (run under ThreadSanitizer in CI): mixed get / put / erase /
// get_or_load / begin_load / expiry from several threads, with a checker thread
// asserting the weight bound and the internal consistency continuously, and
// every value read checked to belong to the key it was read for.
#include <keel/cache/cache.hpp>
#include <keel/core/clock.hpp>

#include <catch.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {
constexpr std::int64_t stride = 1'000'000;  // value = key * stride + version

struct value_weigher {
  std::size_t operator()(const int&, const std::int64_t& v) const { return static_cast<std::size_t>(v % 7 + 1); }
};

template <class Policy>
void stress(std::size_t shards) {
  keel::manual_clock clock;
  constexpr std::size_t capacity = 256;
  keel::cache<int, std::int64_t, Policy, keel::manual_clock, std::hash<int>, std::equal_to<int>, value_weigher> c(
      {.capacity = capacity, .shards = shards, .expire_after_access = 40ms, .negative_ttl = 5ms}, clock);
  constexpr int workers = 4;
  constexpr int ops = 20'000;
  std::atomic<bool> stop{false};
  std::atomic<int> wrong_values{0};
  std::atomic<int> over_capacity{0};
  std::atomic<int> inconsistent{0};
  std::atomic<std::int64_t> loader_calls{0};

  std::thread checker([&] {
    while (!stop.load()) {
      if (c.weight() > capacity) ++over_capacity;
      c.inspect([&](std::size_t cap, std::size_t w, bool ok) {
        if (!ok || w > cap) ++inconsistent;
      });
      clock.advance(1ms);  // time moves while others work: entries expire mid-operation
    }
  });
  std::vector<std::thread> pool;
  for (int t = 0; t < workers; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 1);
      for (int i = 0; i < ops; ++i) {
        const int key = static_cast<int>(rng() % 600);
        const auto op = rng() % 100;
        const std::int64_t version = static_cast<std::int64_t>(rng() % 1000);
        if (op < 60) {
          if (auto v = c.get(key); v && *v / stride != key) ++wrong_values;
        } else if (op < 75) {
          c.put(key, key * stride + version);
        } else if (op < 78) {
          c.put(key, key * stride + version, std::chrono::milliseconds(rng() % 20));
        } else if (op < 85) {
          c.erase(key);
        } else if (op < 95) {
          auto r = c.get_or_load(key, [&]() -> keel::result<std::int64_t> {
            ++loader_calls;
            if (version % 10 == 0) return keel::reject(keel::errc::upstream_failure);
            return key * stride + version;
          });
          if (r && *r / stride != key) ++wrong_values;
        } else if (op < 99) {
          auto ticket = c.begin_load(key);
          if (ticket.permit.active()) ticket.permit.complete(key * stride + version);
          if (auto r = ticket.result.wait(); r && *r / stride != key) ++wrong_values;
        } else {
          c.cleanup();
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  stop = true;
  checker.join();

  CHECK(wrong_values == 0);
  CHECK(over_capacity == 0);
  CHECK(inconsistent == 0);
  const auto st = c.stats();
  CHECK(st.weight <= capacity);
  CHECK(st.loads >= static_cast<std::uint64_t>(loader_calls.load()));
  CHECK(st.hits + st.misses > 0);
  bool consistent = true;
  c.inspect([&](std::size_t cap, std::size_t w, bool ok) { consistent = consistent && ok && w <= cap; });
  CHECK(consistent);
}
}  // namespace

TEST_CASE("stress: W-TinyLFU under mixed concurrent operations with expiry", "[cache][stress]") {
  stress<keel::w_tinylfu>(4);
}

TEST_CASE("stress: LRU on a single shard (all threads on one lock)", "[cache][stress]") { stress<keel::lru>(1); }

TEST_CASE("stress: concurrent hits and writes of one hot key", "[cache][stress]") {
  // LRU: the most recently used key is never the victim, so key 1 must never miss.
  keel::cache<int, std::int64_t, keel::lru> c({.capacity = 64, .shards = 1});
  c.put(1, stride);
  std::atomic<bool> stop{false};
  std::atomic<int> misses{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      for (int i = 0; i < 20'000; ++i) {
        auto v = c.get(1);
        if (!v)
          ++misses;
        else if (*v / stride != 1)
          ++wrong;
      }
    });
  }
  std::thread writer([&] {
    for (std::int64_t i = 0; !stop.load(); ++i) {
      c.put(1, stride + i % 1000);
      c.put(static_cast<int>(2 + i % 200), i);  // churn other keys through the same shard
    }
  });
  for (auto& r : readers) r.join();
  stop = true;
  writer.join();
  CHECK(wrong == 0);
  CHECK(misses == 0);
}
