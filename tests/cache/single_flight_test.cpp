// Single-flight loading: concurrent misses on one key run the loader once; a
// failure (rejection or exception) reaches every waiter and is not cached;
// negative caching; the non-blocking begin_load / load_permit protocol.
#include <keel/cache/cache.hpp>
#include <keel/core/clock.hpp>

#include <catch.hpp>

#include <atomic>
#include <chrono>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {
using string_cache = keel::cache<std::string, std::string, keel::w_tinylfu, keel::manual_clock>;

// Waits (bounded) until `done()` holds, so a leader can hold its load open
// until every other thread is provably waiting on it.
template <class Done>
bool eventually(Done done) {
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::yield();
  }
  return true;
}
}  // namespace

TEST_CASE("64 threads missing one key run the loader once and all get its value", "[cache][single_flight]") {
  constexpr int threads = 64;
  string_cache c({.capacity = 100}, keel::manual_clock{});
  std::atomic<int> calls{0};
  std::vector<std::string> got(threads);
  std::latch start(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      start.arrive_and_wait();
      auto r = c.get_or_load("reset my password", [&] {
        ++calls;
        // Keep the load open until the 63 others wait on it.
        CHECK(eventually([&] { return c.stats().coalesced_waits == threads - 1; }));
        return std::string("embedding");
      });
      got[static_cast<std::size_t>(t)] = r ? *r : "rejected";
    });
  }
  for (auto& th : pool) th.join();
  CHECK(calls == 1);
  for (const auto& g : got) CHECK(g == "embedding");
  const auto st = c.stats();
  CHECK(st.loads == 1);
  CHECK(st.coalesced_waits == threads - 1);
  CHECK(st.load_failures == 0);
  CHECK(c.get("reset my password") == std::string("embedding"));
}

TEST_CASE("a loader that throws reaches every waiter, is not cached, and the next call retries",
          "[cache][single_flight]") {
  constexpr int threads = 8;
  string_cache c({.capacity = 100}, keel::manual_clock{});
  std::atomic<int> calls{0};
  std::atomic<int> saw_exception{0};
  std::latch start(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      start.arrive_and_wait();
      try {
        (void)c.get_or_load("k", [&]() -> std::string {
          ++calls;
          CHECK(eventually([&] { return c.stats().coalesced_waits == threads - 1; }));
          throw std::runtime_error("model down");
        });
      } catch (const std::runtime_error& e) {
        if (std::string(e.what()) == "model down") ++saw_exception;
      }
    });
  }
  for (auto& th : pool) th.join();
  CHECK(calls == 1);
  CHECK(saw_exception == threads);
  CHECK_FALSE(c.get("k").has_value());
  CHECK(c.stats().load_failures == 1);

  auto retry = c.get_or_load("k", [&] {
    ++calls;
    return std::string("v");
  });
  CHECK(calls == 2);
  REQUIRE(retry);
  CHECK(*retry == "v");
}

TEST_CASE("a loader's rejection reaches every waiter and is not cached", "[cache][single_flight]") {
  constexpr int threads = 8;
  string_cache c({.capacity = 100}, keel::manual_clock{});
  std::atomic<int> calls{0};
  std::atomic<int> rejected{0};
  std::latch start(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      start.arrive_and_wait();
      auto r = c.get_or_load("k", [&]() -> keel::result<std::string> {
        ++calls;
        CHECK(eventually([&] { return c.stats().coalesced_waits == threads - 1; }));
        return keel::reject(keel::errc::overloaded, 2s);
      });
      if (!r && r.error().code == keel::errc::overloaded && r.error().retry_after == std::chrono::nanoseconds(2s))
        ++rejected;
    });
  }
  for (auto& th : pool) th.join();
  CHECK(calls == 1);
  CHECK(rejected == threads);
  CHECK(c.size() == 0);
  auto again = c.get_or_load("k", [&]() -> keel::result<std::string> {
    ++calls;
    return std::string("ok");
  });
  CHECK(calls == 2);
  CHECK(again == keel::result<std::string>(std::string("ok")));
}

TEST_CASE("negative_ttl remembers a rejection for its own TTL", "[cache][single_flight][expiry]") {
  keel::manual_clock clock;
  string_cache c({.capacity = 100, .expire_after_write = 1h, .negative_ttl = 5s}, clock);
  int calls = 0;
  auto failing = [&]() -> keel::result<std::string> {
    ++calls;
    return keel::reject(keel::errc::upstream_failure, "vector store timed out");
  };
  CHECK_FALSE(c.get_or_load("k", failing));
  clock.advance(5s - 1ns);
  const auto remembered = c.get_or_load("k", failing);
  CHECK(calls == 1);  // served from the negative entry
  REQUIRE_FALSE(remembered);
  CHECK(std::string(remembered.error().reason) == "vector store timed out");
  CHECK_FALSE(c.get("k").has_value());  // get() never returns a failure
  clock.advance(1ns);
  CHECK_FALSE(c.get_or_load("k", failing));
  CHECK(calls == 2);
  // A successful load replaces the remembered failure.
  clock.advance(5s);
  CHECK(c.get_or_load("k", [] { return std::string("v"); }) == keel::result<std::string>(std::string("v")));
  CHECK(c.get("k") == std::string("v"));
}

TEST_CASE("begin_load gives one permit; waiters see its completion, async or blocking", "[cache][single_flight]") {
  string_cache c({.capacity = 100}, keel::manual_clock{});
  auto leader = c.begin_load("k");
  REQUIRE(leader.permit.active());
  CHECK(leader.permit.key() == "k");
  CHECK_FALSE(leader.result.ready());
  auto follower = c.begin_load("k");
  CHECK_FALSE(follower.permit.active());
  std::string seen_by_callback;
  follower.result.on_ready([&](const keel::result<std::string>& r) { seen_by_callback = r ? *r : "failed"; });
  CHECK(seen_by_callback.empty());

  std::thread finisher([p = std::move(leader.permit)]() mutable { p.complete(std::string("v")); });
  const auto waited = follower.result.wait();
  finisher.join();
  CHECK(waited == keel::result<std::string>(std::string("v")));
  CHECK(seen_by_callback == "v");
  CHECK(leader.result.wait() == keel::result<std::string>(std::string("v")));

  // Now a hit: ready at once, no permit.
  auto hit = c.begin_load("k");
  CHECK_FALSE(hit.permit.active());
  CHECK(hit.result.ready());
  CHECK(*hit.result.wait() == "v");
  const auto st = c.stats();
  CHECK(st.loads == 1);
  CHECK(st.coalesced_waits == 1);
}

TEST_CASE("a dropped load permit fails its waiters and caches nothing", "[cache][single_flight]") {
  string_cache c({.capacity = 100}, keel::manual_clock{});
  auto follower_result = [&] {
    auto leader = c.begin_load("k");
    REQUIRE(leader.permit.active());
    auto follower = c.begin_load("k");
    return follower.result;
  }();  // the leader's permit is destroyed here without complete()
  REQUIRE(follower_result.ready());
  const auto r = follower_result.wait();
  REQUIRE_FALSE(r);
  CHECK(r.error().code == keel::errc::upstream_failure);
  CHECK(std::string(r.error().reason) == "load abandoned");
  CHECK(c.size() == 0);
  CHECK(c.stats().load_failures == 1);
  CHECK(c.begin_load("k").permit.active());  // the next caller loads again
}

TEST_CASE("erase or put during a load wins over the loaded value", "[cache][single_flight]") {
  string_cache c({.capacity = 100}, keel::manual_clock{});
  auto erased = c.begin_load("a");
  c.erase("a");
  erased.permit.complete(std::string("loaded"));
  CHECK(erased.result.wait() == keel::result<std::string>(std::string("loaded")));  // waiters still get it
  CHECK_FALSE(c.get("a").has_value());                                              // but it is not cached

  auto overwritten = c.begin_load("b");
  c.put("b", "fresh");
  overwritten.permit.complete(std::string("stale"));
  CHECK(c.get("b") == std::string("fresh"));

  auto cleared = c.begin_load("c");
  c.clear();
  cleared.permit.complete(std::string("loaded"));
  CHECK_FALSE(c.get("c").has_value());
}

TEST_CASE("completing a permit twice or after a move does nothing more", "[cache][single_flight]") {
  string_cache c({.capacity = 100}, keel::manual_clock{});
  auto t = c.begin_load("k");
  auto moved = std::move(t.permit);
  CHECK_FALSE(t.permit.active());
  t.permit.complete(std::string("ignored"));  // inactive: no effect
  CHECK_FALSE(t.result.ready());
  moved.complete(std::string("v"));
  CHECK_FALSE(moved.active());
  moved.complete(std::string("w"));
  CHECK(c.get("k") == std::string("v"));
  CHECK(c.stats().loads == 1);
}

TEST_CASE("move-assigning a load permit abandons the load it held", "[cache][single_flight]") {
  string_cache c({.capacity = 100}, keel::manual_clock{});
  auto a = c.begin_load("a");
  auto b = c.begin_load("b");
  a.permit = std::move(b.permit);  // a's load is abandoned; the permit now loads "b"
  REQUIRE(a.result.ready());
  CHECK_FALSE(a.result.wait());
  CHECK(a.result.wait().error().code == keel::errc::upstream_failure);
  CHECK_FALSE(b.permit.active());
  a.permit.complete(std::string("v"));
  CHECK(b.result.wait() == keel::result<std::string>(std::string("v")));
  CHECK(c.get("b") == std::string("v"));
  CHECK_FALSE(c.get("a").has_value());
  CHECK(c.begin_load("a").permit.active());  // the abandoned key loads again
}
