// Single-threaded behaviour of keel::mpmc_queue: capacity, outcomes, close and
// drain, batches, item lifetimes, deadlines on a manual clock, and a
// model-based comparison with std::deque on random operation sequences.
#include <keel/queue/mpmc_queue.hpp>

#include <catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr keel::rejection queue_empty = keel::reject(keel::errc::queue_empty);

/// Counts how often each id is destroyed while owning its value: moved-from
/// objects own nothing, so a correct queue ends with every count at exactly 1.
class tracked {
 public:
  tracked(std::vector<int>& destroyed, int id) : destroyed_(&destroyed), id_(id) {}
  tracked(tracked&& other) noexcept : destroyed_(std::exchange(other.destroyed_, nullptr)), id_(other.id_) {}
  tracked& operator=(tracked&& other) noexcept {
    if (this != &other) {
      drop();
      destroyed_ = std::exchange(other.destroyed_, nullptr);
      id_ = other.id_;
    }
    return *this;
  }
  tracked(const tracked&) = delete;
  tracked& operator=(const tracked&) = delete;
  ~tracked() { drop(); }

  int id() const noexcept { return id_; }

 private:
  void drop() noexcept {
    if (destroyed_ != nullptr) ++(*destroyed_)[static_cast<std::size_t>(id_)];
    destroyed_ = nullptr;
  }
  std::vector<int>* destroyed_;
  int id_;
};

}  // namespace

TEST_CASE("capacity is rounded up to a power of two, at least 2", "[queue]") {
  CHECK(keel::mpmc_queue<int>(1).capacity() == 2);
  CHECK(keel::mpmc_queue<int>(2).capacity() == 2);
  CHECK(keel::mpmc_queue<int>(3).capacity() == 4);
  CHECK(keel::mpmc_queue<int>(1000).capacity() == 1024);
  CHECK(keel::mpmc_queue<int>(4096).capacity() == 4096);
}

TEST_CASE("lane counts are rounded up to a power of two; 0 picks the default", "[queue]") {
  CHECK(keel::mpmc_queue<int>(8, keel::queue_lanes{1}).lanes() == 1);
  CHECK(keel::mpmc_queue<int>(8, keel::queue_lanes{3}).lanes() == 4);
  CHECK(keel::mpmc_queue<int>(8, keel::queue_lanes{64}).lanes() == 64);
  const std::size_t automatic = keel::mpmc_queue<int>(8).lanes();
  CHECK(automatic == keel::mpmc_queue<int>(8, keel::queue_lanes{0}).lanes());
  CHECK(automatic >= 1);
  CHECK(automatic <= 8);
  CHECK((automatic & (automatic - 1)) == 0);
  CHECK(keel::mpmc_queue<int>(8, keel::queue_lanes{4}).capacity() == 8);  // lanes never change the capacity
  // The default keeps lanes x capacity within 2^20 slots: a queue of 2^20
  // items has one lane.
  CHECK(keel::mpmc_queue<char>(std::size_t{1} << 20).lanes() == 1);
  CHECK(keel::mpmc_queue<char>(std::size_t{1} << 19).lanes() == std::min<std::size_t>(automatic, 2));
}

TEST_CASE("invalid capacities are rejected at construction", "[queue]") {
  CHECK_THROWS_WITH(keel::mpmc_queue<int>(0), "keel::queue: capacity must be at least 1");
  CHECK_THROWS_WITH(keel::mpmc_queue<int>((std::size_t{1} << 62) + 1), "keel::queue: capacity must be at most 2^62");
  CHECK_THROWS_WITH(keel::mpmc_queue<int>(8, keel::queue_lanes{65}), "keel::queue: lanes.count must be at most 64");
  CHECK_THROWS_WITH(keel::mpmc_queue<int>(std::size_t{1} << 62, keel::queue_lanes{2}),
                    "keel::queue: capacity times lanes.count must be at most 2^62");
  CHECK_THROWS_AS(keel::mpmc_queue<int>(0), keel::config_error);
}

TEST_CASE("try_push fills the queue, try_pop empties it in FIFO order", "[queue]") {
  keel::mpmc_queue<int> q(4);
  CHECK(q.empty());
  for (int i = 0; i < 4; ++i) REQUIRE(q.try_push(i));
  CHECK(q.size() == 4);
  const auto full = q.try_push(99);
  REQUIRE_FALSE(full);
  CHECK(full.error().code == keel::errc::queue_full);
  for (int i = 0; i < 4; ++i) {
    auto r = q.try_pop();
    REQUIRE(r);
    CHECK(*r == i);
  }
  const auto none = q.try_pop();
  REQUIRE_FALSE(none);
  CHECK(none.error() == queue_empty);
  CHECK(q.empty());
}

TEST_CASE("positions wrap around the ring many times", "[queue]") {
  keel::mpmc_queue<std::uint64_t> q(2);
  std::uint64_t next_in = 0;
  std::uint64_t next_out = 0;
  for (int round = 0; round < 1000; ++round) {
    while (q.try_push(next_in)) ++next_in;
    CHECK(q.size() == 2);
    auto r = q.try_pop();
    REQUIRE(r);
    CHECK(*r == next_out++);
  }
  while (auto r = q.try_pop()) CHECK(*r == next_out++);
  CHECK(next_in == next_out);
}

TEST_CASE("a failed try_push leaves a move-only item with the caller", "[queue]") {
  keel::mpmc_queue<std::unique_ptr<int>> q(2);
  REQUIRE(q.try_push(std::make_unique<int>(1)));
  REQUIRE(q.try_push(std::make_unique<int>(2)));
  auto third = std::make_unique<int>(3);
  CHECK(q.try_push(std::move(third)).error().code == keel::errc::queue_full);
  REQUIRE(third != nullptr);  // NOLINT(bugprone-use-after-move): not moved on failure, by contract
  CHECK(*third == 3);
  CHECK(**q.try_pop() == 1);
  REQUIRE(q.try_push(std::move(third)));
  CHECK(**q.try_pop() == 2);
  CHECK(**q.try_pop() == 3);
}

TEST_CASE("strings and copies: try_push(const T&) copies, try_emplace constructs in place", "[queue]") {
  keel::mpmc_queue<std::string> q(4);
  const std::string hello = "hello";
  REQUIRE(q.try_push(hello));
  CHECK(hello == "hello");
  REQUIRE(q.try_emplace(3u, 'x'));
  REQUIRE(q.push(std::string(40, 'y'), std::chrono::steady_clock::now()));
  CHECK(*q.try_pop() == "hello");
  CHECK(*q.try_pop() == "xxx");
  CHECK(*q.try_pop() == std::string(40, 'y'));
}

TEST_CASE("close refuses pushes, wakes nobody wrongly, and lets consumers drain first", "[queue]") {
  keel::mpmc_queue<int> q(4);
  REQUIRE(q.try_push(1));
  REQUIRE(q.try_push(2));
  CHECK_FALSE(q.closed());
  q.close();
  q.close();  // idempotent
  CHECK(q.closed());
  CHECK(q.try_push(3).error().code == keel::errc::queue_closed);
  CHECK(q.push(3).error().code == keel::errc::queue_closed);
  int more[] = {4, 5};
  CHECK(q.try_push_batch(more).error().code == keel::errc::queue_closed);
  CHECK(q.size() == 2);
  CHECK(*q.try_pop() == 1);
  CHECK(*q.pop() == 2);  // a blocking pop still gets what was accepted
  CHECK(q.try_pop().error().code == keel::errc::queue_closed);
  CHECK(q.pop().error().code == keel::errc::queue_closed);  // and then does not block
  std::vector<int> out;
  CHECK(q.pop_batch(std::back_inserter(out), 8).error().code == keel::errc::queue_closed);
  CHECK(out.empty());
}

TEST_CASE("stats report capacity, size and closed", "[queue]") {
  keel::mpmc_queue<int> q(5);
  REQUIRE(q.try_push(1));
  REQUIRE(q.try_push(2));
  keel::queue_stats s = q.stats();
  CHECK(s.capacity == 8);
  CHECK(s.size == 2);
  CHECK(s.waiting_consumers == 0);
  CHECK(s.waiting_producers == 0);
  CHECK_FALSE(s.closed);
  q.close();
  CHECK(q.stats().closed);
}

TEST_CASE("try_push_batch takes the prefix that fits with one claim", "[queue]") {
  keel::mpmc_queue<std::unique_ptr<int>> q(4);
  std::vector<std::unique_ptr<int>> items;
  for (int i = 0; i < 6; ++i) items.push_back(std::make_unique<int>(i));
  const auto n = q.try_push_batch(items);
  REQUIRE(n);
  CHECK(*n == 4);
  for (std::size_t i = 0; i < 4; ++i) CHECK(items[i] == nullptr);  // moved into the queue
  CHECK(*items[4] == 4);                                           // the rest is untouched
  CHECK(q.try_push_batch(std::span(items).subspan(4)).error().code == keel::errc::queue_full);
  CHECK(*q.try_push_batch({}) == 0);

  std::vector<std::unique_ptr<int>> out;
  auto inserter = std::back_inserter(out);
  CHECK(*q.try_pop_batch(inserter, 3) == 3);
  CHECK(*q.pop_batch(std::back_inserter(out), 8) == 1);  // takes what is ready, no waiting for more
  REQUIRE(out.size() == 4);
  for (int i = 0; i < 4; ++i) CHECK(*out[static_cast<std::size_t>(i)] == i);
  CHECK(q.try_pop_batch(inserter, 3).error() == queue_empty);
  CHECK(*q.try_pop_batch(inserter, 0) == 0);
}

TEST_CASE("every item is destroyed exactly once, including those left queued", "[queue]") {
  std::vector<int> destroyed(100, 0);
  {
    keel::mpmc_queue<tracked> q(16);
    for (int id = 0; id < 10; ++id) REQUIRE(q.try_emplace(destroyed, id));
    for (int id = 0; id < 4; ++id) {
      auto r = q.try_pop();
      REQUIRE(r);
      CHECK(r->id() == id);
    }
    std::vector<tracked> batch;
    batch.emplace_back(destroyed, 10);
    batch.emplace_back(destroyed, 11);
    REQUIRE(*q.try_push_batch(batch) == 2);
    batch.clear();  // moved-from shells own nothing
    std::vector<tracked> popped;
    REQUIRE(*q.pop_batch(std::back_inserter(popped), 3) == 3);
    CHECK(popped[0].id() == 4);
    // Ids 0–3 were destroyed with their results, 4–6 live in `popped`,
    // 7–11 are still queued when q goes out of scope.
    for (int id = 0; id < 4; ++id) CHECK(destroyed[static_cast<std::size_t>(id)] == 1);
    for (int id = 4; id < 12; ++id) CHECK(destroyed[static_cast<std::size_t>(id)] == 0);
  }
  for (int id = 0; id < 12; ++id) CHECK(destroyed[static_cast<std::size_t>(id)] == 1);
}

TEST_CASE("items left in several lanes are destroyed exactly once with the queue", "[queue]") {
  std::vector<int> destroyed(40, 0);
  {
    // 64 lanes: each of the four threads (distinct live numbers) has its own.
    keel::mpmc_queue<tracked> q(64, keel::queue_lanes{64});
    std::atomic<int> accepted{0};
    std::vector<std::thread> producers;
    for (int p = 0; p < 4; ++p) {
      producers.emplace_back([&, p] {
        for (int i = 0; i < 10; ++i) accepted += q.try_emplace(destroyed, p * 10 + i) ? 1 : 0;
      });
    }
    for (auto& t : producers) t.join();
    REQUIRE(accepted.load() == 40);
    CHECK(q.size() == 40);
    // This thread takes one item from whichever lane it looks at first.
    auto r = q.try_pop();
    REQUIRE(r);
    CHECK(destroyed[static_cast<std::size_t>(r->id())] == 0);
  }
  for (int id = 0; id < 40; ++id) CHECK(destroyed[static_cast<std::size_t>(id)] == 1);
}

#if KEEL_HAS_EXCEPTIONS
namespace {
struct explosive {
  explicit explosive(int v) : value(v) {
    if (v < 0) throw std::runtime_error("negative");
  }
  explosive(explosive&&) noexcept = default;
  int value;
};

/// An output iterator whose third write throws (a vector that cannot grow).
struct flaky_out {
  using difference_type = std::ptrdiff_t;
  std::vector<std::unique_ptr<int>>* sink;
  int* writes;
  flaky_out& operator*() { return *this; }
  flaky_out& operator=(std::unique_ptr<int>&& p) {
    if (++*writes == 3) throw std::bad_alloc();
    sink->push_back(std::move(p));
    return *this;
  }
  flaky_out& operator++() { return *this; }
  flaky_out operator++(int) { return *this; }
};
}  // namespace

TEST_CASE("a throwing constructor in try_emplace leaves the queue untouched", "[queue]") {
  keel::mpmc_queue<explosive> q(2);
  CHECK_THROWS_AS(q.try_emplace(-1), std::runtime_error);
  CHECK(q.empty());
  REQUIRE(q.try_emplace(7));
  REQUIRE(q.try_emplace(8));
  CHECK(q.try_pop()->value == 7);
  CHECK(q.try_pop()->value == 8);
}

TEST_CASE("a throwing output iterator in pop_batch leaves the queue consistent", "[queue]") {
  keel::mpmc_queue<std::unique_ptr<int>> q(8);
  for (int i = 0; i < 6; ++i) REQUIRE(q.try_push(std::make_unique<int>(i)));
  std::vector<std::unique_ptr<int>> sink;
  int writes = 0;
  CHECK_THROWS_AS(q.pop_batch(flaky_out{&sink, &writes}, 5), std::bad_alloc);
  // Items 0 and 1 were delivered; 2 (being written) and 3, 4 (claimed) are
  // destroyed; 5 is still queued and all 8 slots are usable again.
  CHECK(sink.size() == 2);
  CHECK(q.size() == 1);
  for (int i = 6; i < 13; ++i) REQUIRE(q.try_push(std::make_unique<int>(i)));
  CHECK(q.try_push(std::make_unique<int>(13)).error().code == keel::errc::queue_full);
  CHECK(**q.try_pop() == 5);
  for (int i = 6; i < 13; ++i) CHECK(**q.try_pop() == i);
}
#endif

TEST_CASE("deadlines follow the queue's clock: passed, standing still, advanced by another thread", "[queue]") {
  keel::manual_clock clock;
  keel::mpmc_queue<int, keel::manual_clock> q(2, clock);

  SECTION("a deadline already passed returns at once") {
    CHECK(q.pop(clock.now()).error() == queue_empty);
    CHECK(q.pop(clock.now() - 1s).error() == queue_empty);
    REQUIRE(q.try_push(1));
    REQUIRE(q.try_push(2));
    CHECK(q.push(3, clock.now()).error().code == keel::errc::queue_full);
    CHECK(*q.pop(clock.now() - 1h) == 1);  // an available item is taken whatever the deadline
  }
  SECTION("while the clock stands still the deadline does not pass, so the item arriving later is taken") {
    std::thread producer([&] {
      std::this_thread::sleep_for(30ms);  // real time passes, the queue's clock does not
      REQUIRE(q.try_push(42));
    });
    const auto r = q.pop(clock.now() + 1ms);
    producer.join();
    REQUIRE(r);
    CHECK(*r == 42);
  }
  SECTION("advancing the clock past the deadline ends a blocked pop and a blocked push") {
    std::thread timekeeper([&] {
      std::this_thread::sleep_for(20ms);
      clock.advance(10ms);
    });
    CHECK(q.pop(clock.now() + 5ms).error() == queue_empty);
    timekeeper.join();
    REQUIRE(q.try_push(1));
    REQUIRE(q.try_push(2));
    std::thread timekeeper2([&] {
      std::this_thread::sleep_for(20ms);
      clock.advance(10ms);
    });
    CHECK(q.push(3, clock.now() + 5ms).error().code == keel::errc::queue_full);
    timekeeper2.join();
  }
}

TEST_CASE("time_left saturates for far deadlines and clocks that jump", "[queue]") {
  keel::manual_clock clock;
  using tp = keel::manual_clock::time_point;
  CHECK_FALSE(keel::detail::time_left(clock, tp::max()).has_value());  // no deadline
  CHECK(*keel::detail::time_left(clock, tp(5ms)) == 5ms);
  CHECK(*keel::detail::time_left(clock, tp::min()) == 0ns);
  CHECK(*keel::detail::time_left(clock, tp::max() - 1ns) == 1h);  // slices of at most an hour
  clock.set(tp::min());                                           // clock far in the past
  CHECK(*keel::detail::time_left(clock, tp(1s)) == 1h);           // no overflow
  clock.set(tp(tp::max() - 1ns));                                 // jumped far ahead
  CHECK(*keel::detail::time_left(clock, tp(1s)) == 0ns);
}

TEST_CASE("blocking pop on the steady clock waits for the deadline, not less", "[queue]") {
  keel::mpmc_queue<int> q(4);
  const auto start = std::chrono::steady_clock::now();
  CHECK(q.pop(start + 20ms).error() == queue_empty);
  CHECK(std::chrono::steady_clock::now() - start >= 20ms);
  REQUIRE(q.try_push(1));
  REQUIRE(q.try_push(2));
  REQUIRE(q.try_push(3));
  REQUIRE(q.try_push(4));
  const auto start_push = std::chrono::steady_clock::now();
  CHECK(q.push(5, start_push + 20ms).error().code == keel::errc::queue_full);
  CHECK(std::chrono::steady_clock::now() - start_push >= 20ms);
}

// --- model-based ------------------------------------------------------------
// Random single-threaded sequences of every operation, checked step by step
// against std::deque with the capacity and close rules written out plainly.
// One thread pushes to and pops from its own lane, so every lane count must
// behave exactly like one FIFO of the stated capacity.
TEST_CASE("random operation sequences match a std::deque model", "[queue][model]") {
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    const std::size_t lanes = std::size_t{1} << (seed % 3 * 2);  // 1, 4, 16
    CAPTURE(seed, lanes);
    std::mt19937_64 rng(seed);
    const std::size_t requested = 1 + rng() % 9;
    keel::mpmc_queue<std::unique_ptr<int>> q(requested, keel::queue_lanes{lanes});
    const std::size_t cap = q.capacity();
    std::deque<int> model;
    bool closed = false;
    int next = 0;

    for (int step = 0; step < 400; ++step) {
      CAPTURE(step);
      const auto op = rng() % 100;
      if (op < 35) {  // try_push / blocking push with a passed deadline
        const bool blocking = rng() % 2 == 0;
        auto item = std::make_unique<int>(next);
        const auto r = blocking ? q.push(std::move(item), std::chrono::steady_clock::time_point::min())
                                : q.try_push(std::move(item));
        if (closed) {
          REQUIRE(r.error().code == keel::errc::queue_closed);
        } else if (model.size() == cap) {
          REQUIRE(r.error().code == keel::errc::queue_full);
        } else {
          REQUIRE(r);
          model.push_back(next++);
        }
      } else if (op < 45) {  // try_push_batch
        std::vector<std::unique_ptr<int>> batch;
        const std::size_t k = rng() % 5;
        for (std::size_t i = 0; i < k; ++i) batch.push_back(std::make_unique<int>(next + static_cast<int>(i)));
        const auto r = q.try_push_batch(batch);
        const std::size_t room = cap - model.size();
        if (k == 0) {
          REQUIRE(*r == 0);
        } else if (closed) {
          REQUIRE(r.error().code == keel::errc::queue_closed);
        } else if (room == 0) {
          REQUIRE(r.error().code == keel::errc::queue_full);
        } else {
          const std::size_t taken = std::min(k, room);
          REQUIRE(*r == taken);
          for (std::size_t i = 0; i < k; ++i) REQUIRE((batch[i] == nullptr) == (i < taken));
          for (std::size_t i = 0; i < taken; ++i) model.push_back(next++);
          next += static_cast<int>(k - taken);  // the ids not taken are simply skipped
        }
      } else if (op < 80) {  // try_pop / pop with a passed deadline
        const bool blocking = rng() % 2 == 0;
        auto r = blocking ? q.pop(std::chrono::steady_clock::time_point::min()) : q.try_pop();
        if (!model.empty()) {
          REQUIRE(r);
          REQUIRE(**r == model.front());
          model.pop_front();
        } else if (closed) {
          REQUIRE(r.error().code == keel::errc::queue_closed);
        } else {
          REQUIRE(r.error() == queue_empty);
        }
      } else if (op < 95) {  // try_pop_batch
        const std::size_t max = rng() % 6;
        std::vector<std::unique_ptr<int>> out;
        auto it = std::back_inserter(out);
        auto r = q.try_pop_batch(it, max);
        if (max == 0) {
          REQUIRE(*r == 0);
        } else if (!model.empty()) {
          const std::size_t taken = std::min(max, model.size());
          REQUIRE(*r == taken);
          REQUIRE(out.size() == taken);
          for (const auto& p : out) {
            REQUIRE(*p == model.front());
            model.pop_front();
          }
        } else if (closed) {
          REQUIRE(r.error().code == keel::errc::queue_closed);
        } else {
          REQUIRE(r.error() == queue_empty);
        }
      } else if (op < 97) {
        q.close();
        closed = true;
      }
      REQUIRE(q.size() == model.size());
      REQUIRE(q.closed() == closed);
    }
  }
}
