// Concurrency invariants of keel::mpmc_queue, checked after real races (run
// under ThreadSanitizer in CI): no item lost or duplicated, per-producer FIFO,
// close never loses an accepted item, and sleeping waiters are always woken.
// Sizes are small so the suite stays fast under TSan.
#include <keel/queue/detail/event_count.hpp>
#include <keel/queue/mpmc_queue.hpp>

#include <catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <random>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct item {
  std::uint32_t producer;
  std::uint32_t seq;
};

/// What one consumer saw, in order.
using trace = std::vector<item>;

/// P producers push `per_producer` items each with a mix of try_push, blocking
/// push and try_push_batch; C consumers take with try_pop, pop and pop_batch
/// until queue_closed. Afterwards every (producer, seq) must have been seen
/// exactly once, and each consumer must have seen each producer's items in
/// increasing order. Meanwhile the capacity bound is checked from below: a
/// pop reserves what it may take before it tries, so pushes completed minus
/// pops reserved never exceeds the items queued, which may not exceed the
/// capacity.
void run_producers_consumers(int producers, int consumers, std::uint32_t per_producer, std::size_t capacity,
                             std::size_t lanes) {
  keel::mpmc_queue<item> q(capacity, keel::queue_lanes{lanes});
  std::vector<trace> traces(static_cast<std::size_t>(consumers));
  std::vector<std::thread> threads;
  std::atomic<int> producers_left{producers};
  std::atomic<std::int64_t> pushed{0};         // items whose push has returned success
  std::atomic<std::int64_t> pops_reserved{0};  // items pops may have taken
  std::atomic<std::int64_t> most_queued{0};    // the largest lower bound seen
  const auto record_push = [&](std::int64_t n) {
    const std::int64_t at_least = pushed.fetch_add(n) + n - pops_reserved.load();
    std::int64_t seen = most_queued.load();
    while (at_least > seen && !most_queued.compare_exchange_weak(seen, at_least)) {
    }
  };

  for (int c = 0; c < consumers; ++c) {
    threads.emplace_back([&q, &out = traces[static_cast<std::size_t>(c)], &pops_reserved, c] {
      std::vector<item> batch;
      for (std::uint32_t round = 0;; ++round) {
        const auto how = (round + static_cast<std::uint32_t>(c)) % 3;
        const std::int64_t may_take = how == 2 ? 5 : 1;
        pops_reserved.fetch_add(may_take);
        if (how == 0) {
          auto r = q.try_pop();
          if (!r) pops_reserved.fetch_sub(may_take);
          if (r) {
            out.push_back(*r);
          } else if (r.error().code == keel::errc::queue_closed) {
            return;
          } else {
            std::this_thread::yield();
          }
        } else if (how == 1) {
          auto r = q.pop();
          if (!r) {
            pops_reserved.fetch_sub(may_take);
            REQUIRE(r.error().code == keel::errc::queue_closed);
            return;
          }
          out.push_back(*r);
        } else {
          batch.clear();
          auto r = q.pop_batch(std::back_inserter(batch), 5);
          pops_reserved.fetch_sub(may_take - static_cast<std::int64_t>(batch.size()));
          if (!r) {
            REQUIRE(r.error().code == keel::errc::queue_closed);
            return;
          }
          REQUIRE(*r == batch.size());
          out.insert(out.end(), batch.begin(), batch.end());
        }
      }
    });
  }
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      const auto id = static_cast<std::uint32_t>(p);
      std::uint32_t seq = 0;
      while (seq < per_producer) {
        const auto how = seq % 3;
        if (how == 0) {
          if (!q.try_push(item{id, seq})) {
            std::this_thread::yield();
            continue;
          }
          record_push(1);
          ++seq;
        } else if (how == 1) {
          REQUIRE(q.push(item{id, seq}));
          record_push(1);
          ++seq;
        } else {
          item batch[4];
          const std::uint32_t k = std::min<std::uint32_t>(4, per_producer - seq);
          for (std::uint32_t i = 0; i < k; ++i) batch[i] = item{id, seq + i};
          const auto r = q.try_push_batch(std::span<item>(batch, k));
          if (!r) {
            REQUIRE(r.error().code == keel::errc::queue_full);
            std::this_thread::yield();
            continue;
          }
          record_push(static_cast<std::int64_t>(*r));
          seq += static_cast<std::uint32_t>(*r);
        }
      }
      if (producers_left.fetch_sub(1) == 1) q.close();  // the last producer shuts the queue
    });
  }
  for (auto& t : threads) t.join();

  std::vector<std::vector<int>> seen(static_cast<std::size_t>(producers), std::vector<int>(per_producer, 0));
  for (const trace& t : traces) {
    std::vector<std::int64_t> last(static_cast<std::size_t>(producers), -1);
    for (const item& i : t) {
      REQUIRE(i.producer < static_cast<std::uint32_t>(producers));
      REQUIRE(i.seq < per_producer);
      ++seen[i.producer][i.seq];
      REQUIRE(static_cast<std::int64_t>(i.seq) > last[i.producer]);  // per-producer FIFO, per consumer
      last[i.producer] = i.seq;
    }
  }
  for (const auto& per : seen) {
    for (const int count : per) REQUIRE(count == 1);  // none lost, none duplicated
  }
  CHECK(q.empty());
  CHECK(most_queued.load() <= static_cast<std::int64_t>(q.capacity()));
}

}  // namespace

TEST_CASE("P producers x C consumers: nothing lost or duplicated, FIFO per producer", "[queue][stress]") {
  for (const std::size_t lanes : {std::size_t{1}, std::size_t{4}}) {
    for (const int producers : {1, 2, 4}) {
      for (const int consumers : {1, 2, 4}) {
        CAPTURE(lanes, producers, consumers);
        run_producers_consumers(producers, consumers, 2000, 8, lanes);
      }
    }
  }
}

TEST_CASE("a tiny queue under heavy contention wraps many laps without losing items", "[queue][stress]") {
  for (const std::size_t lanes : {std::size_t{0}, std::size_t{1}, std::size_t{4}}) {
    CAPTURE(lanes);
    run_producers_consumers(4, 4, 3000, 2, lanes);
  }
}

// With several lanes the capacity is kept by credits that move between the
// lanes; these tests check the bound and that no credit is ever lost.
TEST_CASE("producers on different lanes together fill the queue to exactly its capacity", "[queue][stress]") {
  // 64 lanes: live threads hold distinct numbers below 64, so each thread
  // here has a lane of its own.
  keel::mpmc_queue<int> q(1024, keel::queue_lanes{64});  // credits are granted in batches of 32
  std::atomic<int> accepted{0};
  auto fill = [&](int value) {
    accepted = 0;
    std::vector<std::thread> producers;
    for (int p = 0; p < 4; ++p) {
      producers.emplace_back([&] {
        for (int misses = 0; misses < 50;) {
          if (q.try_push(value)) {
            accepted.fetch_add(1);
            misses = 0;
          } else {
            ++misses;
            std::this_thread::yield();
          }
        }
      });
    }
    for (auto& t : producers) t.join();
  };
  fill(1);
  CHECK(accepted.load() == 1024);  // no consumer ran: every credit was spent, none twice
  CHECK(q.size() == 1024);

  // This thread frees 10 places; producers on other lanes find all 10, even
  // though some of their lanes hold unspent credits from the first round.
  for (int i = 0; i < 10; ++i) REQUIRE(q.try_pop());
  fill(2);
  CHECK(accepted.load() == 10);
  CHECK(q.size() == 1024);
  const auto r = q.try_push(3);
  REQUIRE(!r);
  CHECK(r.error().code == keel::errc::queue_full);

  std::size_t drained = 0;
  while (q.try_pop()) ++drained;
  CHECK(drained == 1024);
  fill(4);
  CHECK(accepted.load() == 1024);
}

TEST_CASE("after a concurrent run every freed place can be filled again", "[queue][stress]") {
  for (const std::size_t lanes : {std::size_t{2}, std::size_t{4}, std::size_t{64}}) {
    CAPTURE(lanes);
    keel::mpmc_queue<int> q(16, keel::queue_lanes{lanes});
    constexpr int per_producer = 3000;
    std::atomic<int> to_pop{3 * per_producer};
    std::vector<std::thread> threads;
    for (int p = 0; p < 3; ++p) {
      threads.emplace_back([&] {
        for (int i = 0; i < per_producer;) {
          if (q.try_push(i)) {
            ++i;
          } else {
            std::this_thread::yield();
          }
        }
      });
      threads.emplace_back([&] {
        while (to_pop.load() > 0) {
          if (q.pop(std::chrono::steady_clock::now() + 1ms)) to_pop.fetch_sub(1);
        }
      });
    }
    for (auto& t : threads) t.join();
    REQUIRE(q.empty());
    // Producers exited holding unspent credits; this thread's try_push
    // finds them, so all 16 places are there, and not one more.
    for (int i = 0; i < 16; ++i) REQUIRE(q.try_push(i));
    CHECK(q.size() == 16);
    CHECK(q.try_push(16).error().code == keel::errc::queue_full);
  }
}

TEST_CASE("a consumer whose own lane never runs dry still drains the other lanes", "[queue][stress]") {
  keel::mpmc_queue<int> q(64, keel::queue_lanes{64});
  std::thread other([&] {
    for (int i = 0; i < 10; ++i) REQUIRE(q.try_push(1000 + i));
  });
  other.join();
  // This thread keeps its own lane non-empty: it pushes before every pop.
  // Every 64th pop looks at the other lanes first, in rotation, so each lane
  // is served at least once per 64 x 64 pops.
  std::vector<int> from_other;
  REQUIRE(q.try_push(-1));
  for (int n = 0; n < 64 * 64 * 12 && from_other.size() < 10; ++n) {
    REQUIRE(q.try_push(-2 - n));  // this thread's items are negative
    const auto r = q.try_pop();
    REQUIRE(r);
    if (*r >= 1000) from_other.push_back(*r);
  }
  REQUIRE(from_other.size() == 10);
  for (int i = 0; i < 10; ++i) CHECK(from_other[static_cast<std::size_t>(i)] == 1000 + i);  // in its order
}

TEST_CASE("the rotation belongs to the queue: popping another queue in between starves no lane", "[queue][stress]") {
  // A pop counter kept per thread would let every 64th pop land on `other`
  // (for one of the two parities tried here), so `q` would never look past
  // this thread's own, never-empty lane.
  keel::mpmc_queue<int> q(64, keel::queue_lanes{64});
  keel::mpmc_queue<int> other(64, keel::queue_lanes{64});
  for (int extra = 0; extra < 2; ++extra) {
    CAPTURE(extra);
    std::thread producer([&] {
      for (int i = 0; i < 10; ++i) (void)q.try_push(1000 + i);
    });
    producer.join();
    for (int i = 0; i < extra; ++i) CHECK(!other.try_pop());
    int from_other_lane = 0;
    for (int n = 0; n < 64 * 64 * 12 && from_other_lane < 10; ++n) {
      REQUIRE(q.try_push(-1 - n));  // this thread's lane never runs dry
      const auto r = q.try_pop();
      REQUIRE(r);
      if (*r >= 1000) ++from_other_lane;
      CHECK(!other.try_pop());
    }
    CHECK(from_other_lane == 10);
    while (q.try_pop()) {
    }
  }
}

TEST_CASE("close racing with pushes: every accepted item is popped, nothing else", "[queue][stress]") {
  for (int round = 0; round < 100; ++round) {
    CAPTURE(round);
    keel::mpmc_queue<std::uint32_t> q(16);
    std::atomic<std::uint32_t> accepted{0};
    std::atomic<std::uint64_t> accepted_sum{0};
    std::uint64_t popped_sum = 0;
    std::uint32_t popped = 0;
    std::vector<std::thread> producers;
    for (std::uint32_t p = 0; p < 2; ++p) {
      producers.emplace_back([&, p] {
        for (std::uint32_t i = 1;; ++i) {
          const std::uint32_t value = i * 2 + p;
          const auto r = q.push(value, std::chrono::steady_clock::now() + 1ms);
          if (r) {
            accepted.fetch_add(1);
            accepted_sum.fetch_add(value);
          } else if (r.error().code == keel::errc::queue_closed) {
            return;
          }
        }
      });
    }
    std::thread closer([&] {
      std::this_thread::sleep_for(std::chrono::microseconds(50 + round * 7));
      q.close();
    });
    for (;;) {
      auto r = q.pop();
      if (!r) {
        REQUIRE(r.error().code == keel::errc::queue_closed);
        break;
      }
      ++popped;
      popped_sum += *r;
    }
    closer.join();
    for (auto& t : producers) t.join();
    CHECK(popped == accepted.load());
    CHECK(popped_sum == accepted_sum.load());
  }
}

TEST_CASE("wake-ups are never lost: consumers that sleep are always woken by a push", "[queue][stress]") {
  // Producers push in small bursts separated by pauses long enough for the
  // consumers to fall asleep. A lost wake-up would strand an item while a
  // consumer sleeps; the generous deadline turns that hang into a failure.
  keel::mpmc_queue<int> q(4);
  constexpr int bursts = 300;
  constexpr int per_burst = 3;
  std::atomic<int> received{0};
  std::atomic<int> timeouts{0};
  std::vector<std::thread> consumers;
  for (int c = 0; c < 2; ++c) {
    consumers.emplace_back([&] {
      for (;;) {
        auto r = q.pop(std::chrono::steady_clock::now() + 10s);
        if (r) {
          received.fetch_add(1);
        } else if (r.error().code == keel::errc::queue_closed) {
          return;
        } else {
          timeouts.fetch_add(1);
        }
      }
    });
  }
  std::mt19937 rng(7);
  int sleepers_seen = 0;
  for (int b = 0; b < bursts; ++b) {
    // Wait (briefly, bounded) for a consumer to be asleep, so pushes race with sleeping.
    for (int i = 0; i < 200 && q.stats().waiting_consumers == 0; ++i) std::this_thread::sleep_for(10us);
    if (q.stats().waiting_consumers > 0) ++sleepers_seen;
    for (int i = 0; i < per_burst; ++i) REQUIRE(q.push(i));
    if (rng() % 4 == 0) std::this_thread::yield();
  }
  q.close();
  for (auto& t : consumers) t.join();
  CHECK(received.load() == bursts * per_burst);
  CHECK(timeouts.load() == 0);
  CHECK(sleepers_seen > bursts / 2);  // the scenario really exercised sleeping consumers
}

TEST_CASE("wake-ups are never lost: producers blocked on a full queue are always woken by a pop", "[queue][stress]") {
  keel::mpmc_queue<int> q(2);
  constexpr int per_producer = 500;
  std::atomic<int> timeouts{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < 2; ++p) {
    producers.emplace_back([&] {
      for (int i = 0; i < per_producer;) {
        const auto r = q.push(i, std::chrono::steady_clock::now() + 10s);
        if (r) {
          ++i;
        } else {
          timeouts.fetch_add(1);
        }
      }
    });
  }
  int received = 0;
  int sleepers_seen = 0;
  while (received < 2 * per_producer) {
    for (int i = 0; i < 100 && q.stats().waiting_producers == 0; ++i) std::this_thread::sleep_for(5us);
    if (q.stats().waiting_producers > 0) ++sleepers_seen;
    auto r = q.pop(std::chrono::steady_clock::now() + 10s);
    REQUIRE(r);
    ++received;
  }
  for (auto& t : producers) t.join();
  CHECK(timeouts.load() == 0);
  CHECK(q.empty());
  CHECK(sleepers_seen > per_producer / 2);
}

TEST_CASE("close wakes every sleeping consumer and producer", "[queue][stress]") {
  keel::mpmc_queue<int> empty_q(2);
  keel::mpmc_queue<int> full_q(2);
  REQUIRE(full_q.try_push(1));
  REQUIRE(full_q.try_push(2));
  std::atomic<int> closed_seen{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.emplace_back([&] {
      if (empty_q.pop().error().code == keel::errc::queue_closed) closed_seen.fetch_add(1);
    });
    waiters.emplace_back([&] {
      if (full_q.push(3).error().code == keel::errc::queue_closed) closed_seen.fetch_add(1);
    });
  }
  // Wait until all six are asleep (bounded), then close both queues.
  for (int i = 0; i < 2000; ++i) {
    if (empty_q.stats().waiting_consumers == 3 && full_q.stats().waiting_producers == 3) break;
    std::this_thread::sleep_for(1ms);
  }
  CHECK(empty_q.stats().waiting_consumers == 3);
  CHECK(full_q.stats().waiting_producers == 3);
  empty_q.close();
  full_q.close();
  for (auto& t : waiters) t.join();
  CHECK(closed_seen.load() == 6);
  CHECK(full_q.size() == 2);  // accepted items survive close
}

// The event count alone, with both parking back ends: a waiter that sees
// `value` unchanged sleeps; a notifier bumps `value` then notifies. Each of
// many rounds must end with the waiter awake, however the two interleave.
template <class Parking>
void check_event_count_never_loses_a_notification() {
  keel::detail::event_count<Parking> ec;
  std::atomic<std::uint32_t> value{0};
  constexpr std::uint32_t rounds = 3000;
  std::atomic<int> timeouts{0};
  std::thread waiter([&] {
    for (std::uint32_t seen = 0; seen < rounds;) {
      if (value.load(std::memory_order_seq_cst) > seen) {
        ++seen;
        continue;
      }
      const auto key = ec.prepare_wait();
      if (value.load(std::memory_order_seq_cst) > seen) {
        ec.cancel_wait();
        continue;
      }
      const auto before = std::chrono::steady_clock::now();
      ec.wait(key, std::chrono::nanoseconds(10s));
      if (std::chrono::steady_clock::now() - before >= 10s) timeouts.fetch_add(1);
    }
  });
  for (std::uint32_t i = 0; i < rounds; ++i) {
    value.fetch_add(1, std::memory_order_seq_cst);
    ec.notify(1);
    if (i % 3 == 0) std::this_thread::yield();
  }
  waiter.join();
  CHECK(timeouts.load() == 0);
  CHECK(ec.waiting() == 0);
}

TEST_CASE("event_count never loses a notification (condition variable parking)", "[queue][stress]") {
  check_event_count_never_loses_a_notification<keel::detail::condvar_parking>();
}

#if defined(__linux__)
TEST_CASE("event_count never loses a notification (futex parking)", "[queue][stress]") {
  check_event_count_never_loses_a_notification<keel::detail::futex_parking>();
}
#endif
