// The cache's read path, piece by piece (run under ThreadSanitizer in CI):
//  * detail::shard_lock excludes: a writer is never inside with a reader or
//    another writer, while readers of every stripe come and go; a plain
//    (non-atomic) value written by writers and read by readers gives TSan a
//    data race to report if the lock ever lets them overlap; no write is lost
//    and no reader sees it go back.
//  * detail::read_buffer with several producers and a concurrent drainer
//    replays each recorded hit exactly once, in each producer's order, and
//    counts every hit, dropped or not.
//  * keel::cache counts every hit and miss of concurrent readers exactly, and
//    a single reader's hits reach the policy in order (keel::lru evicts the
//    least recently read key).
#include <keel/cache/cache.hpp>
#include <keel/cache/detail/read_buffer.hpp>
#include <keel/cache/detail/shard_lock.hpp>

#include <catch.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

TEST_CASE("shard_lock: a writer excludes every reader and every other writer", "[cache][read_path][stress]") {
  keel::detail::shard_lock lock(4);
  std::atomic<int> readers_inside{0};
  std::atomic<int> writers_inside{0};
  std::atomic<int> violations{0};
  std::int64_t guarded = 0;  // written by writers only, under the lock
  std::atomic<std::int64_t> writes{0};
  constexpr int threads = 4;
  constexpr int rounds = 20'000;

  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      std::int64_t last_read = 0;
      for (int i = 0; i < rounds; ++i) {
        if (rng() % 8 == 0) {
          std::unique_lock w(lock);
          if (writers_inside.fetch_add(1) != 0 || readers_inside.load() != 0) ++violations;
          guarded = guarded + 1;
          writes.fetch_add(1, std::memory_order_relaxed);
          writers_inside.fetch_sub(1);
        } else {
          keel::detail::shard_lock::reader r(lock);
          readers_inside.fetch_add(1);
          if (writers_inside.load() != 0) ++violations;
          if (guarded < last_read) ++violations;  // an earlier write not visible
          last_read = guarded;
          readers_inside.fetch_sub(1);
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  CHECK(violations == 0);
  std::unique_lock w(lock);
  CHECK(guarded > 0);
  CHECK(guarded == writes.load());  // no two writers overlapped
}

TEST_CASE("read_buffer: concurrent producers and drains replay each hit once, in order", "[cache][read_path][stress]") {
  constexpr std::size_t producers = 3;
  constexpr std::size_t per_producer = 30'000;
  keel::detail::read_buffer buffer;
  std::mutex consumer;  // one drain at a time, as the cache's `draining` flag ensures
  // Entry (p, i) is recorded once, by producer p, i-th; its weight counts replays.
  std::vector<std::vector<keel::detail::policy_entry>> entries(producers,
                                                               std::vector<keel::detail::policy_entry>(per_producer));
  for (std::size_t p = 0; p < producers; ++p)
    for (std::size_t i = 0; i < per_producer; ++i) {
      entries[p][i].hash = std::uint64_t{p} << 32 | std::uint64_t{i};
      entries[p][i].weight = 0;
    }
  std::vector<std::int64_t> last_seen(producers, -1);  // guarded by `consumer`
  int out_of_order = 0;                                // guarded by `consumer`
  auto replay = [&](keel::detail::policy_entry& e) {
    const auto p = static_cast<std::size_t>(e.hash >> 32);
    const auto i = static_cast<std::int64_t>(e.hash & 0xffffffff);
    if (i <= last_seen[p]) ++out_of_order;
    last_seen[p] = i;
    ++e.weight;
  };

  std::vector<std::thread> pool;
  for (std::size_t p = 0; p < producers; ++p) {
    pool.emplace_back([&, p] {
      for (std::size_t i = 0; i < per_producer; ++i) {
        if (buffer.record(&entries[p][i]) && consumer.try_lock()) {
          buffer.drain(replay);
          consumer.unlock();
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  {
    std::lock_guard g(consumer);
    buffer.drain(replay);  // what an exclusive section does: everything left
  }

  std::uint64_t replayed = 0;
  int replayed_twice = 0;
  for (auto& row : entries)
    for (auto& e : row) {
      replayed += e.weight;
      if (e.weight > 1) ++replayed_twice;
    }
  CHECK(out_of_order == 0);
  CHECK(replayed_twice == 0);
  CHECK(buffer.recorded() == std::uint64_t{producers} * per_producer);  // every hit counted
  CHECK(replayed == buffer.recorded() - buffer.dropped());              // every kept hit replayed
  CHECK(replayed > 0);
}

TEST_CASE("concurrent readers' hits and misses are counted exactly", "[cache][read_path][stress]") {
  keel::cache<int, int> c({.capacity = 4096, .shards = 4});
  for (int k = 0; k < 1000; ++k) c.put(k, k);
  constexpr int threads = 4;
  constexpr int reads = 20'000;
  std::atomic<std::uint64_t> hits{0};
  std::atomic<std::uint64_t> misses{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::uint64_t h = 0;
      std::uint64_t m = 0;
      for (int i = 0; i < reads; ++i) {
        const int k = (i * 7 + t * 13) % 2000;  // every key of 0..1999 ten times; 1000..1999 are absent
        if (auto v = c.get(k)) {
          ++h;
          if (*v != k) ++wrong;
        } else {
          ++m;
        }
      }
      hits += h;
      misses += m;
    });
  }
  for (auto& th : pool) th.join();
  const auto st = c.stats();
  CHECK(wrong == 0);
  CHECK(hits == threads * reads / 2);  // nothing is evicted or written: exactly the resident half
  CHECK(st.hits == hits.load());
  CHECK(st.misses == misses.load());
}

TEST_CASE("a reader's hits reach the policy in order, buffered or not", "[cache][read_path]") {
  // 100 reads, more than any read buffer holds, then one write: keel::lru must
  // evict exactly the key read least recently.
  keel::cache<int, int, keel::lru> c({.capacity = 50, .shards = 1});
  for (int k = 0; k < 50; ++k) c.put(k, k);
  for (int round = 0; round < 2; ++round)
    for (int k = 49; k >= 0; --k) REQUIRE(c.get(k).has_value());  // key 49 is now the least recent
  c.put(100, 100);
  CHECK_FALSE(c.get(49).has_value());
  for (int k = 0; k < 49; ++k) CHECK(c.get(k).has_value());
}
