// cache/keel/* vs cache/mutex_lru/*: keel::cache against what users write
// without it — a std::mutex around a std::list + std::unordered_map LRU.
//
//   get_hit        every read hits (10,000 resident keys, random order);
//                  cache/keel_lru/* is keel::cache with keel::lru, to separate
//                  the concurrency design from W-TinyLFU's per-hit bookkeeping
//   mixed_90_10    90% get / 10% put over 20,000 keys in a 10,000-entry cache
//   single_flight  every thread asks for the same sequence of new keys; a miss
//                  costs a ~20 µs "model call". keel coalesces concurrent misses
//                  (loader_calls/request < 1 with 2 threads); the mutex LRU
//                  calls the model once per miss per thread. Both use LRU here.
//                  A thread that falls behind finds the keys cached (both
//                  caches: 0.5 calls/request); only overlapping misses differ.
// Run with --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
// and quote medians; the 2-thread cases need ->Threads(2)->UseRealTime().
#include <keel/cache/cache.hpp>

#include "fixed_iterations.hpp"

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

// The peer: a textbook mutex LRU.
class mutex_lru {
 public:
  explicit mutex_lru(std::size_t capacity) : capacity_(capacity) { index_.reserve(capacity * 2); }

  std::optional<std::int64_t> get(std::int64_t key) {
    std::lock_guard lock(mutex_);
    const auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    order_.splice(order_.begin(), order_, it->second);
    return it->second->second;
  }
  void put(std::int64_t key, std::int64_t value) {
    std::lock_guard lock(mutex_);
    if (const auto it = index_.find(key); it != index_.end()) {
      it->second->second = value;
      order_.splice(order_.begin(), order_, it->second);
      return;
    }
    order_.emplace_front(key, value);
    index_[key] = order_.begin();
    if (index_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
  }
  template <class Loader>
  std::int64_t get_or_load(std::int64_t key, Loader&& loader) {
    if (auto v = get(key)) return *v;
    const std::int64_t v = loader();
    put(key, v);
    return v;
  }

 private:
  std::mutex mutex_;
  std::list<std::pair<std::int64_t, std::int64_t>> order_;
  std::unordered_map<std::int64_t, std::list<std::pair<std::int64_t, std::int64_t>>::iterator> index_;
  std::size_t capacity_;
};

using keel_cache = keel::cache<std::int64_t, std::int64_t>;
using keel_lru_base = keel::cache<std::int64_t, std::int64_t, keel::lru>;
// keel's sharding and read path with plain LRU: separates the cost of the
// concurrency design from W-TinyLFU's bookkeeping (the sketch update per hit).
struct keel_lru_cache : keel::cache<std::int64_t, std::int64_t, keel::lru> {
  using keel::cache<std::int64_t, std::int64_t, keel::lru>::cache;
};

constexpr std::int64_t resident_keys = 10'000;

std::vector<std::int64_t> random_keys(std::int64_t range, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> keys(1 << 16);
  for (auto& k : keys) k = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(range));
  return keys;
}

template <class Cache>
Cache& shared_cache(std::size_t capacity, std::int64_t preload) {
  // One cache per benchmark process run, shared by the benchmark's threads.
  static std::unique_ptr<Cache> c;
  static std::once_flag once;
  std::call_once(once, [&] {
    if constexpr (std::is_base_of_v<keel_cache, Cache> || std::is_same_v<Cache, keel_lru_cache>) {
      c = std::make_unique<Cache>(keel::cache_config{.capacity = capacity});
    } else {
      c = std::make_unique<Cache>(capacity);
    }
    for (std::int64_t k = 0; k < preload; ++k) c->put(k, k);
  });
  return *c;
}

template <class Cache>
void get_hit(benchmark::State& state) {
  auto& c = shared_cache<Cache>(100'000, resident_keys);
  const auto keys = random_keys(resident_keys, static_cast<std::uint64_t>(state.thread_index()) + 1);
  std::size_t i = 0;
  std::int64_t sum = 0;
  for (auto _ : state) {
    const auto v = c.get(keys[i++ & (keys.size() - 1)]);
    sum += *v;
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

template <class Cache>
void mixed_90_10(benchmark::State& state) {
  // A separate cache from get_hit's (another template instance of shared_cache).
  auto& c = shared_cache<Cache>(10'000, 0);
  const auto keys = random_keys(20'000, static_cast<std::uint64_t>(state.thread_index()) + 7);
  std::size_t i = 0;
  std::int64_t found = 0;
  for (auto _ : state) {
    const std::int64_t k = keys[i & (keys.size() - 1)];
    if (i++ % 10 == 9) {
      c.put(k, k);
    } else if (auto v = c.get(k)) {
      found += *v;
    }
  }
  benchmark::DoNotOptimize(found);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// A cache type distinct per scenario, so each scenario gets its own instance.
struct keel_mixed : keel_cache {
  using keel_cache::keel_cache;
};
struct lru_mixed : mutex_lru {
  using mutex_lru::mutex_lru;
};

std::int64_t model_call(std::int64_t key) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
  while (std::chrono::steady_clock::now() < until) {
  }
  return key * 2;
}

std::atomic<std::int64_t> loader_calls{0};

template <class Cache>
void single_flight(benchmark::State& state) {
  static std::unique_ptr<Cache> c;
  if (state.thread_index() == 0) {
    if constexpr (std::is_base_of_v<keel_lru_base, Cache>) {
      c = std::make_unique<Cache>(keel::cache_config{.capacity = 1024});
    } else {
      c = std::make_unique<Cache>(1024);
    }
    loader_calls = 0;
  }
  std::int64_t key = 0;
  std::int64_t sum = 0;
  for (auto _ : state) {  // each thread walks the same sequence of fresh keys
    sum += c->get_or_load(key++, [&] {
      loader_calls.fetch_add(1, std::memory_order_relaxed);
      return model_call(key);
    });
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  if (state.thread_index() == 0) {
    state.counters["loader_calls/request"] = benchmark::Counter(
        static_cast<double>(loader_calls.load()) / static_cast<double>(state.iterations() * state.threads()));
  }
}

// LRU policy here, so that the comparison isolates coalescing: W-TinyLFU
// (rightly) declines to admit a stream of keys it has never seen twice, which
// would turn the lagging thread's would-be hits into misses.
struct keel_flight : keel_lru_base {
  using keel_lru_base::keel_lru_base;
  std::int64_t get_or_load(std::int64_t key, auto&& loader) { return *keel_lru_base::get_or_load(key, loader); }
};

}  // namespace

BENCHMARK(get_hit<keel_cache>)->Name("cache/keel/get_hit")->Apply(keel_bench::fixed_iterations);
BENCHMARK(get_hit<keel_lru_cache>)->Name("cache/keel_lru/get_hit")->Apply(keel_bench::fixed_iterations);
BENCHMARK(get_hit<mutex_lru>)->Name("cache/mutex_lru/get_hit")->Apply(keel_bench::fixed_iterations);
BENCHMARK(get_hit<keel_cache>)->Name("cache/keel/get_hit")->Threads(2)->UseRealTime();
BENCHMARK(get_hit<keel_lru_cache>)->Name("cache/keel_lru/get_hit")->Threads(2)->UseRealTime();
BENCHMARK(get_hit<mutex_lru>)->Name("cache/mutex_lru/get_hit")->Threads(2)->UseRealTime();
BENCHMARK(mixed_90_10<keel_mixed>)->Name("cache/keel/mixed_90_10")->Apply(keel_bench::fixed_iterations);
BENCHMARK(mixed_90_10<lru_mixed>)->Name("cache/mutex_lru/mixed_90_10")->Apply(keel_bench::fixed_iterations);
BENCHMARK(mixed_90_10<keel_mixed>)->Name("cache/keel/mixed_90_10")->Threads(2)->UseRealTime();
BENCHMARK(mixed_90_10<lru_mixed>)->Name("cache/mutex_lru/mixed_90_10")->Threads(2)->UseRealTime();
BENCHMARK(single_flight<keel_flight>)->Name("cache/keel/single_flight")->Threads(2)->UseRealTime();
BENCHMARK(single_flight<mutex_lru>)->Name("cache/mutex_lru/single_flight")->Threads(2)->UseRealTime();
