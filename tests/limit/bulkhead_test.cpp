#include <keel/limit/bulkhead.hpp>

#include <catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("a bulkhead admits at most N and a permit frees its slot however it ends", "[limit][bulkhead]") {
  keel::bulkhead slots{2};
  auto a = slots.try_acquire();
  auto b = slots.try_acquire();
  REQUIRE(a);
  REQUIRE(b);
  const auto c = slots.try_acquire();
  REQUIRE_FALSE(c);
  CHECK(c.error().code == keel::errc::overloaded);
  CHECK(std::string(c.error().reason) == "keel::bulkhead: all slots in use");
  CHECK(slots.in_flight() == 2);

  a->release();
  a->release();  // once only
  CHECK(slots.in_flight() == 1);
  {
    auto d = slots.try_acquire();
    REQUIRE(d);
    CHECK(slots.in_flight() == 2);
  }  // dropped: freed
  CHECK(slots.in_flight() == 1);

  auto moved = std::move(*b);
  CHECK_FALSE(b->active());
  CHECK(moved.active());
  auto e = slots.try_acquire();
  REQUIRE(e);
  *e = std::move(moved);  // e's own slot is freed, moved's slot moves in
  CHECK(slots.in_flight() == 1);
  e->release();
  CHECK(slots.in_flight() == 0);
  CHECK(slots.stats().max_in_flight == 2);
}

TEST_CASE("acquire_for waits for a released slot, and gives up after the wait", "[limit][bulkhead]") {
  keel::bulkhead slots{1};
  auto held = slots.try_acquire();
  REQUIRE(held);

  const auto start = std::chrono::steady_clock::now();
  const auto timed_out = slots.acquire_for(30ms);
  REQUIRE_FALSE(timed_out);
  CHECK(timed_out.error().code == keel::errc::overloaded);
  CHECK(std::chrono::steady_clock::now() - start >= 30ms);
  CHECK_FALSE(slots.acquire_for(0ms));  // no wait: like try_acquire

  std::thread releaser([&] {
    while (slots.stats().waiting == 0) std::this_thread::yield();
    held->release();
  });
  auto got = slots.acquire_for(10s);  // woken by the release, long before 10 s
  releaser.join();
  REQUIRE(got);
  CHECK(slots.in_flight() == 1);
  CHECK(slots.stats().waiting == 0);

  // An unbounded wait (duration::max()) does not overflow the deadline.
  std::thread releaser2([&] {
    while (slots.stats().waiting == 0) std::this_thread::yield();
    got->release();
  });
  auto forever = slots.acquire_for(std::chrono::hours::max());
  releaser2.join();
  CHECK(forever);
}

TEST_CASE("invalid bulkhead size is refused", "[limit][bulkhead]") {
  CHECK_THROWS_WITH(keel::bulkhead(0), "keel::bulkhead: max_in_flight must be at least 1");
}

TEST_CASE("concurrent callers never exceed the bulkhead and every slot comes back", "[limit][bulkhead][stress]") {
  constexpr int limit = 3;
  keel::bulkhead slots{limit};
  std::atomic<int> inside{0};
  std::atomic<int> worst{0};
  std::atomic<int> served{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        auto p = (t % 2 == 0) ? slots.try_acquire() : slots.acquire_for(5ms);
        if (!p) continue;
        const int now = inside.fetch_add(1) + 1;
        int w = worst.load();
        while (now > w && !worst.compare_exchange_weak(w, now)) {
        }
        std::this_thread::yield();
        inside.fetch_sub(1);
        ++served;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(worst.load() <= limit);
  CHECK(served.load() > 0);
  CHECK(slots.in_flight() == 0);
  CHECK(slots.stats().waiting == 0);
}
