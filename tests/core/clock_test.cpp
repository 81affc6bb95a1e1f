#include <keel/core/clock.hpp>

#include <catch.hpp>

#include <chrono>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("manual_clock starts where told and moves only when told", "[core][clock]") {
  keel::manual_clock clock;
  CHECK(clock.now().time_since_epoch() == 0ns);
  clock.advance(1500ms);
  CHECK(clock.now().time_since_epoch() == 1500ms);

  keel::manual_clock later(keel::manual_clock::time_point(10s));
  CHECK(later.now().time_since_epoch() == 10s);
}

TEST_CASE("manual_clock copies share one time", "[core][clock]") {
  keel::manual_clock clock;
  const keel::manual_clock copy = clock;  // what a component stores
  clock.advance(3s);
  CHECK(copy.now().time_since_epoch() == 3s);
  copy.set(keel::manual_clock::time_point(1s));  // and backwards, for clock-jump tests
  CHECK(clock.now().time_since_epoch() == 1s);
  clock.advance(-2s);
  CHECK(clock.now().time_since_epoch() == -1s);
}

TEST_CASE("manual_clock is safe to advance from several threads", "[core][clock]") {
  keel::manual_clock clock;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([clock] {
      for (int i = 0; i < 10000; ++i) clock.advance(1ns);
    });
  }
  for (auto& t : threads) t.join();
  CHECK(clock.now().time_since_epoch() == 40000ns);
}

TEST_CASE("now_ns reads any keel clock as signed nanoseconds", "[core][clock]") {
  keel::manual_clock clock(keel::manual_clock::time_point(2us));
  CHECK(keel::detail::now_ns(clock) == 2000);
  CHECK(keel::detail::now_ns(std::chrono::steady_clock{}) > 0);
}
