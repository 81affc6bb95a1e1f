// Expiry with keel::manual_clock, to the nanosecond: expire-after-write,
// expire-after-access, per-entry TTL, reclamation without reads, and a clock
// that stands still, jumps far ahead or goes backwards.
#include <keel/cache/cache.hpp>
#include <keel/core/clock.hpp>

#include <catch.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <vector>

using namespace std::chrono_literals;

namespace {
using timed_cache = keel::cache<int, int, keel::w_tinylfu, keel::manual_clock>;
}

TEST_CASE("expire_after_write removes an entry exactly at its deadline", "[cache][expiry]") {
  keel::manual_clock clock;
  std::vector<keel::removal_cause> causes;
  timed_cache c({.capacity = 100, .expire_after_write = 10s}, clock, {},
                [&](const int&, const int&, keel::removal_cause why) { causes.push_back(why); });
  c.put(1, 1);
  clock.advance(10s - 1ns);
  CHECK(c.get(1).has_value());  // reads do not extend a write deadline
  clock.advance(1ns);
  CHECK_FALSE(c.get(1).has_value());
  CHECK(c.stats().expirations == 1);
  CHECK(c.size() == 0);
  REQUIRE(causes.size() == 1);
  CHECK(causes[0] == keel::removal_cause::expired);

  c.put(2, 2);
  clock.advance(6s);
  c.put(2, 3);  // a write restarts the clock
  clock.advance(6s);
  CHECK(c.get(2) == 3);
}

TEST_CASE("expire_after_access is extended by every read, and capped by expire_after_write", "[cache][expiry]") {
  keel::manual_clock clock;
  timed_cache c({.capacity = 100, .expire_after_write = 25s, .expire_after_access = 10s}, clock);
  c.put(1, 1);
  for (int i = 0; i < 2; ++i) {
    clock.advance(9s);
    CHECK(c.get(1).has_value());
  }
  clock.advance(6s);  // t = 24s: last read at 18s, write deadline 25s
  CHECK(c.get(1).has_value());
  clock.advance(1s);  // t = 25s: expire_after_write wins although read 1s ago
  CHECK_FALSE(c.get(1).has_value());

  c.put(2, 2);
  clock.advance(10s);  // not read for 10s
  CHECK_FALSE(c.get(2).has_value());
}

TEST_CASE("a per-entry TTL overrides expire_after_write", "[cache][expiry]") {
  keel::manual_clock clock;
  timed_cache c({.capacity = 100, .expire_after_write = 10s}, clock);
  c.put(1, 1, 2s);
  c.put(2, 2, 1h);
  c.put(3, 3);
  c.put(4, 4, 0s);  // already expired: never returned
  CHECK_FALSE(c.get(4).has_value());
  clock.advance(2s);
  CHECK_FALSE(c.get(1).has_value());
  CHECK(c.get(3).has_value());
  clock.advance(8s);
  CHECK_FALSE(c.get(3).has_value());
  CHECK(c.get(2).has_value());
  clock.advance(1h);
  CHECK_FALSE(c.get(2).has_value());

  keel::cache<int, int, keel::lru, keel::manual_clock> untimed({.capacity = 10}, clock);
  untimed.put(1, 1, 5s);
  untimed.put(2, 2);
  clock.advance(5s);
  CHECK_FALSE(untimed.get(1).has_value());
  clock.advance(1000h);
  CHECK(untimed.get(2).has_value());
}

TEST_CASE("expired entries are reclaimed by writes and cleanup() without being read", "[cache][expiry]") {
  keel::manual_clock clock;
  timed_cache c({.capacity = 10'000, .shards = 1, .expire_after_write = 1s}, clock);
  for (int i = 0; i < 1000; ++i) c.put(i, i);
  clock.advance(1s);
  // Each write sweeps at most 16 expired entries, so 100 writes reclaim 1000.
  for (int i = 0; i < 100; ++i) c.put(100'000 + i, i);
  CHECK(c.stats().expirations == 1000);
  CHECK(c.size() == 100);
  clock.advance(1s);
  c.cleanup();
  CHECK(c.size() == 0);
  CHECK(c.stats().expirations == 1100);
}

TEST_CASE("expiry survives a clock that stands still, jumps far ahead or goes backwards", "[cache][expiry][clock]") {
  keel::manual_clock clock(keel::manual_clock::time_point(100s));
  timed_cache c({.capacity = 100, .expire_after_write = 10s, .expire_after_access = 5s}, clock);
  c.put(1, 1);
  for (int i = 0; i < 1000; ++i) CHECK(c.get(1).has_value());  // standing still: nothing expires

  clock.advance(-50s);  // backwards: treated as no time passed, entry still there
  CHECK(c.get(1).has_value());
  clock.advance(50s + 4s);  // 104s: the read at 50s did not pull the 105s access deadline earlier
  CHECK(c.get(1).has_value());

  // Far ahead: everything is expired, nothing overflows.
  clock.set(keel::manual_clock::time_point(std::chrono::nanoseconds(std::numeric_limits<std::int64_t>::max() - 1)));
  CHECK_FALSE(c.get(1).has_value());
  c.put(2, 2);  // deadline saturates instead of wrapping into the past
  CHECK(c.get(2).has_value());
  c.put(3, 3, 1h);
  CHECK(c.get(3).has_value());
}
