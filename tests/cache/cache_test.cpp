// keel::cache basics: get/put/erase/clear, capacity by count and by weight,
// heterogeneous lookup, stats, the removal listener and bad configuration.
#include <keel/cache/cache.hpp>
#include <keel/core/clock.hpp>

#include <catch.hpp>

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {
using int_cache = keel::cache<int, int, keel::lru, keel::manual_clock>;

struct removal {
  int key;
  int value;
  keel::removal_cause cause;
  friend bool operator==(const removal&, const removal&) = default;
};
}  // namespace

TEST_CASE("cache stores, finds, replaces and erases", "[cache]") {
  keel::cache<int, std::string> c({.capacity = 100});
  CHECK_FALSE(c.get(1).has_value());
  c.put(1, "one");
  c.put(2, "two");
  REQUIRE(c.get(1).has_value());
  CHECK(*c.get(1) == "one");
  c.put(1, "uno");
  CHECK(*c.get(1) == "uno");
  CHECK(c.size() == 2);
  CHECK(c.erase(1));
  CHECK_FALSE(c.erase(1));
  CHECK_FALSE(c.get(1).has_value());
  CHECK(c.size() == 1);
  c.clear();
  CHECK(c.size() == 0);
  CHECK_FALSE(c.get(2).has_value());
}

TEST_CASE("cache counts hits and misses exactly", "[cache]") {
  keel::cache<int, int> c({.capacity = 1000});
  for (int i = 0; i < 10; ++i) c.put(i, i * i);
  int found = 0;
  for (int i = 0; i < 40; ++i) found += c.get(i % 20).has_value() ? 1 : 0;
  const auto st = c.stats();
  CHECK(found == 20);
  CHECK(st.hits == 20);
  CHECK(st.misses == 20);
  CHECK(st.hit_ratio() == 0.5);
  CHECK(st.size == 10);
  CHECK(st.weight == 10);
  CHECK(st.evictions == 0);
}

TEST_CASE("cache bounded by count evicts the least recently used with keel::lru", "[cache]") {
  std::vector<removal> removed;
  int_cache c({.capacity = 3, .shards = 1}, keel::manual_clock{}, {},
              [&](const int& k, const int& v, keel::removal_cause why) {
                removed.push_back({k, v, why});
              });
  c.put(1, 10);
  c.put(2, 20);
  c.put(3, 30);
  CHECK(c.get(1).has_value());  // 1 is now the most recent; 2 the least
  c.put(4, 40);
  CHECK_FALSE(c.get(2).has_value());
  CHECK(c.get(1).has_value());
  CHECK(c.get(3).has_value());
  CHECK(c.get(4).has_value());
  REQUIRE(removed.size() == 1);
  CHECK(removed[0] == removal{2, 20, keel::removal_cause::evicted});
  c.put(3, 33);
  c.erase(4);
  REQUIRE(removed.size() == 3);
  CHECK(removed[1] == removal{3, 30, keel::removal_cause::replaced});
  CHECK(removed[2] == removal{4, 40, keel::removal_cause::erased});
  CHECK(c.stats().evictions == 1);
}

TEST_CASE("cache bounded by weight never holds more than its capacity", "[cache][weight]") {
  auto bytes = [](const int&, const std::string& v) { return v.size(); };
  keel::cache<int, std::string, keel::w_tinylfu, std::chrono::steady_clock, std::hash<int>, std::equal_to<int>,
              decltype(bytes)>
      c({.capacity = 100, .shards = 1}, {}, bytes);
  for (int i = 0; i < 200; ++i) {
    c.put(i, std::string(static_cast<std::size_t>(1 + i % 37), 'x'));
    REQUIRE(c.weight() <= 100);
  }
  CHECK(c.weight() > 50);  // it is used, not emptied
  bool consistent = true;
  c.inspect([&](std::size_t cap, std::size_t w, bool ok) { consistent = consistent && ok && w <= cap; });
  CHECK(consistent);

  // A value heavier than the whole cache is not stored, and does not leave a stale value behind.
  c.put(7, "small");
  c.put(7, std::string(101, 'y'));
  CHECK_FALSE(c.get(7).has_value());
}

TEST_CASE("cache finds std::string keys by std::string_view with a transparent hash", "[cache]") {
  keel::cache<std::string, int, keel::w_tinylfu, std::chrono::steady_clock, keel::string_hash, std::equal_to<>> c(
      {.capacity = 16});
  c.put("reset my password", 1);
  const std::string_view view = "reset my password";
  REQUIRE(c.get(view).has_value());
  CHECK(*c.get(view) == 1);
  CHECK(c.get("reset my password").has_value());
  CHECK(c.erase(view));
  CHECK_FALSE(c.get(std::string("reset my password")).has_value());
  auto loaded = c.get_or_load(view, [] { return 2; });
  REQUIRE(loaded);
  CHECK(*loaded == 2);
  CHECK(*c.get(view) == 2);
}

TEST_CASE("cache rejects bad configuration naming the field", "[cache][config]") {
  using c = keel::cache<int, int>;
  CHECK_THROWS_WITH(c({.capacity = 0}), "keel::cache: capacity must be at least 1");
  CHECK_THROWS_WITH(c({.capacity = 100, .shards = 3}),
                    "keel::cache: shards must be a power of two (or 0 to choose automatically)");
  CHECK_THROWS_WITH(c({.capacity = 2, .shards = 4}), "keel::cache: shards must not exceed capacity");
  CHECK_THROWS_WITH(c({.capacity = 2, .expire_after_write = std::chrono::seconds(-1)}),
                    "keel::cache: expire_after_write must not be negative");
  CHECK_THROWS_WITH(c({.capacity = 2, .expire_after_access = std::chrono::seconds(-1)}),
                    "keel::cache: expire_after_access must not be negative");
  CHECK_THROWS_WITH(c({.capacity = 2, .negative_ttl = std::chrono::seconds(-1)}),
                    "keel::cache: negative_ttl must not be negative");
  CHECK_THROWS_AS(c({.capacity = 0}), keel::config_error);
}

TEST_CASE("automatic sharding keeps at least 32 units of capacity per shard", "[cache][config]") {
  CHECK(keel::cache<int, int>({.capacity = 31}).shard_count() == 1);
  CHECK(keel::cache<int, int>({.capacity = 64}).shard_count() == 2);
  const auto big = keel::cache<int, int>({.capacity = 1 << 20}).shard_count();
  CHECK(big >= 8);
  CHECK((big & (big - 1)) == 0);
}

TEST_CASE("a throwing removal listener leaves the cache consistent", "[cache][listener]") {
  int calls = 0;
  int_cache c({.capacity = 2, .shards = 1}, keel::manual_clock{}, {}, [&](const int&, const int&, keel::removal_cause) {
    ++calls;
    throw std::runtime_error("listener failed");
  });
  c.put(1, 1);
  c.put(2, 2);
  // The put completes (3 stored, 1 evicted), then the listener's exception surfaces.
  CHECK_THROWS_WITH(c.put(3, 3), "listener failed");
  CHECK(calls == 1);
  CHECK_FALSE(c.get(1).has_value());
  CHECK(c.get(3).has_value());
  CHECK(c.size() == 2);
  CHECK_THROWS_WITH(c.erase(2), "listener failed");
  CHECK_FALSE(c.get(2).has_value());
  CHECK_THROWS_WITH(c.clear(), "listener failed");
  CHECK(c.size() == 0);
  bool consistent = false;
  c.inspect([&](std::size_t, std::size_t w, bool ok) { consistent = ok && w == 0; });
  CHECK(consistent);
  c.put(5, 5);  // still usable
  CHECK(*c.get(5) == 5);
}

TEST_CASE("a throwing weigher changes nothing", "[cache][weight]") {
  auto weigher = [](const int& k, const int&) -> std::size_t {
    if (k < 0) throw std::invalid_argument("negative key");
    return 1;
  };
  keel::cache<int, int, keel::lru, keel::manual_clock, std::hash<int>, std::equal_to<int>, decltype(weigher)> c(
      {.capacity = 4}, keel::manual_clock{}, weigher);
  c.put(1, 1);
  CHECK_THROWS_AS(c.put(-1, 1), std::invalid_argument);
  CHECK(c.size() == 1);
  CHECK(c.get(1).has_value());
}

namespace {
// A value whose move throws on demand: the cache moves it into a new entry.
struct fragile {
  static inline bool fail = false;
  int v = 0;
  explicit fragile(int x) : v(x) {}
  fragile(const fragile&) = default;
  fragile(fragile&& o) : v(o.v) {
    if (fail) throw std::runtime_error("no room for the value");
  }
  fragile& operator=(const fragile&) = default;
  fragile& operator=(fragile&&) = default;
};
}  // namespace

TEST_CASE("a value that throws while being stored changes nothing, and its storage is reused", "[cache]") {
  keel::cache<int, fragile, keel::lru, keel::manual_clock> c(
      {.capacity = 4, .shards = 1, .expire_after_write = std::chrono::seconds(1)});
  c.put(1, fragile(1));
  fragile::fail = true;
  CHECK_THROWS_WITH(c.put(2, fragile(2)), "no room for the value");
  fragile::fail = false;
  CHECK(c.size() == 1);
  CHECK_FALSE(c.get(2).has_value());
  bool consistent = false;
  c.inspect([&](std::size_t, std::size_t w, bool ok) { consistent = ok && w == 1; });
  CHECK(consistent);
  for (int k = 2; k < 40; ++k) c.put(k, fragile(k));  // churn through evictions: storage is recycled
  CHECK(c.size() == 4);
  CHECK(c.get(39)->v == 39);
  c.inspect([&](std::size_t, std::size_t w, bool ok) { consistent = ok && w == 4; });
  CHECK(consistent);
}
