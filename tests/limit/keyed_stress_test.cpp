// Concurrency: threads admit, reserve and settle over many keys of a small
// keyed_limiter while the clock moves, so keys are dropped and re-created all
// the time. Per key, what was charged never exceeds burst + rate × elapsed:
// dropping a key at rest loses nothing. Run under ThreadSanitizer in CI.
#include <keel/core/clock.hpp>
#include <keel/limit/detail/shard_mutex.hpp>
#include <keel/limit/keyed.hpp>

#include <catch.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

TEST_CASE("keyed limiter under concurrent load with eviction never over-admits a key", "[limit][keyed][stress]") {
  constexpr int workers = 4;
  constexpr int keys = 16;
  constexpr std::int64_t burst = 8;
  constexpr std::int64_t interval_ns = 1'000'000;  // 1000 per second per key
  keel::manual_clock clock;
  // Room for half the keys: shards fill, sweep and refuse new keys.
  keel::keyed_limiter<int, keel::manual_clock> limiter{keel::rate_limit::per_second(1000, burst),
                                                       keel::keyed_config{keys / 2, 2}, clock};
  std::array<std::atomic<std::int64_t>, keys> charged{};
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> calls{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937 rng(static_cast<unsigned>(w + 7));
      std::uniform_int_distribution<int> key(0, keys - 1);
      std::uniform_int_distribution<std::int64_t> cost(0, 3);
      while (!stop.load(std::memory_order_relaxed)) {
        const int k = key(rng);
        const std::int64_t c = cost(rng);
        if (w % 2 == 0) {
          if (limiter.try_acquire(k, c)) charged[static_cast<std::size_t>(k)].fetch_add(c);
        } else if (auto p = limiter.reserve(k, c + 1)) {
          p->settle(c);  // refund one
          charged[static_cast<std::size_t>(k)].fetch_add(c);
        }
        if (calls.fetch_add(1) % 16 == 0) std::this_thread::yield();
      }
    });
  }
  std::mt19937 rng(5);
  std::uniform_int_distribution<std::int64_t> step(0, 2 * interval_ns);
  std::int64_t elapsed = 0;
  for (int i = 0; i < 2000; ++i) {
    // Move only after ~20 calls per key, so busy keys stay at their limit;
    // every 100 steps jump past every tolerance, so all keys come to rest.
    const std::int64_t seen = calls.load();
    while (calls.load() < seen + 20 * keys) std::this_thread::yield();
    const std::int64_t dt = i % 100 == 99 ? 20 * interval_ns : step(rng);
    clock.advance(std::chrono::nanoseconds(dt));
    elapsed += dt;
  }
  stop = true;
  for (auto& t : threads) t.join();

  const std::int64_t allowed = burst + elapsed / interval_ns;
  std::int64_t worst = 0;
  for (const auto& c : charged) worst = std::max(worst, c.load());
  const auto st = limiter.stats();
  INFO("worst key charged " << worst << " of " << allowed << "; " << calls.load() << " calls, " << st.dropped
                            << " dropped, " << st.refused << " refused");
  CHECK(worst <= allowed);
  CHECK(worst >= allowed / 2);  // the keys did run at their limit
  CHECK(st.keys <= st.max_keys);
  CHECK(st.dropped > 0);
}

TEST_CASE("keyed limiter tables grow while other threads look keys up", "[limit][keyed][stress]") {
  // The clock stands still and every key is called at least 4 times (once
  // per worker in order), so each key admits exactly its burst, however the
  // calls interleave with the growth of its shard's table (and with the
  // lock-free prefetch of slots that growth moves).
  constexpr int workers = 4;
  constexpr int keys = 4000;
  constexpr std::int64_t burst = 3;
  keel::manual_clock clock;
  keel::keyed_limiter<int, keel::manual_clock> limiter{keel::rate_limit::per_second(1, burst),
                                                       keel::keyed_config{2 * keys, 4}, clock};
  std::vector<std::atomic<std::int64_t>> admitted(keys);
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937 rng(static_cast<unsigned>(w + 11));
      for (int i = 0; i < keys * 2; ++i) {
        // Mostly new keys in order (each shard's table keeps growing), and
        // keys already present, at random.
        const int k = (i % 2 == 0) ? i / 2 : std::uniform_int_distribution<int>(0, i / 2)(rng);
        if (limiter.try_acquire(k)) admitted[static_cast<std::size_t>(k)].fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  int exact = 0;
  for (const auto& a : admitted) exact += a.load() == burst ? 1 : 0;
  CHECK(exact == keys);
  const auto st = limiter.stats();
  CHECK(st.keys == static_cast<std::size_t>(keys));
  CHECK(st.refused == 0);
}

TEST_CASE("shard_mutex excludes: contended increments under it are never lost", "[limit][keyed][stress]") {
  // Four threads on two cores: holders are preempted inside the lock, so
  // waiters go to sleep (state 2) and releases must wake them. A plain
  // counter under the lock: a lost update or (under TSan) a data race would
  // show any hole in the exclusion.
  constexpr int workers = 4;
  constexpr int rounds = 20'000;
  keel::detail::shard_mutex mutex;
  std::int64_t counter = 0;
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      for (int i = 0; i < rounds; ++i) {
        std::lock_guard lock(mutex);
        counter = counter + 1;
        if (i % 1000 == 0) std::this_thread::yield();  // hold it across a reschedule now and then
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(counter == std::int64_t{workers} * rounds);
  CHECK(mutex.try_lock());
  CHECK_FALSE(mutex.try_lock());
  mutex.unlock();
}
