#include <keel/core/clock.hpp>
#include <keel/limit/keyed.hpp>

#include "counting_allocator.hpp"

#include <catch.hpp>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;

namespace {
template <class Limiter, class Key>
int drain(Limiter& l, const Key& key, std::int64_t cost = 1) {
  int n = 0;
  while (l.try_acquire(key, cost)) ++n;
  return n;
}
keel::keyed_config one_shard(std::size_t max_keys) { return keel::keyed_config{max_keys, 1}; }
}  // namespace

TEST_CASE("each key has its own limit, and a new key starts with its full burst", "[limit][keyed]") {
  keel::manual_clock clock;
  keel::keyed_limiter<std::string, keel::manual_clock> l{keel::rate_limit::per_second(10, 3), {}, clock};
  CHECK(drain(l, std::string("acme")) == 3);
  CHECK(drain(l, std::string("globex")) == 3);
  const auto r = l.try_acquire("acme");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == keel::errc::rate_limited);
  CHECK(*r.error().retry_after == 100ms);
  clock.advance(100ms);
  CHECK(drain(l, std::string("acme")) == 1);
  CHECK(l.size() == 2);
}

TEST_CASE("quotas (tiers) come from the user's function", "[limit][keyed]") {
  keel::manual_clock clock;
  int calls = 0;
  keel::keyed_limiter<int, keel::manual_clock> l{[&](const int& tenant) {
                                                   ++calls;
                                                   return tenant < 100 ? keel::rate_limit::per_second(100, 50)
                                                                       : keel::rate_limit::per_second(10, 5);
                                                 },
                                                 {},
                                                 clock};
  CHECK(drain(l, 7) == 50);
  CHECK(drain(l, 700) == 5);
  CHECK(calls == 2);                                                          // asked once per new key, not per call
  CHECK(l.try_acquire(700, 6).error().code == keel::errc::invalid_argument);  // above this tier's burst
  CHECK(l.try_acquire(7, 6).error().code == keel::errc::rate_limited);
  CHECK(l.peek(7, 51).error().code == keel::errc::invalid_argument);
}

TEST_CASE("a key at rest is dropped, and coming back behaves exactly like a fresh key", "[limit][keyed]") {
  keel::manual_clock clock;
  keel::keyed_limiter<int, keel::manual_clock> l{keel::rate_limit::per_second(10, 5), one_shard(100), clock};
  REQUIRE(l.try_acquire(1, 5));  // TAT = 500 ms
  REQUIRE(l.try_acquire(2, 1));  // TAT = 100 ms
  clock.advance(100ms);
  CHECK(l.sweep() == 1);  // key 2 is at rest; key 1 still owes 400 ms
  CHECK(l.size() == 1);
  clock.advance(400ms);
  CHECK(l.sweep() == 1);
  CHECK(l.size() == 0);
  CHECK(drain(l, 1) == 5);
  CHECK(l.stats().dropped == 2);
}

TEST_CASE("the table never holds more than max_keys; a full table refuses new keys, not keys in debt",
          "[limit][keyed]") {
  keel::manual_clock clock;
  keel::keyed_limiter<int, keel::manual_clock> l{keel::rate_limit::per_second(10, 5), one_shard(3), clock};
  for (int k = 0; k < 3; ++k) REQUIRE(l.try_acquire(k, 1 + k));  // at rest at 100, 200, 300 ms
  const auto full = l.try_acquire(3);
  REQUIRE_FALSE(full);
  CHECK(full.error().code == keel::errc::overloaded);
  CHECK(std::string(full.error().reason) == "keel::keyed_limiter: key table full");
  CHECK(l.try_acquire(0, 2));  // known keys are still served; key 0 now owes until 300 ms
  clock.advance(250ms);        // key 1 (TAT 200 ms) is at rest, keys 0 and 2 are not
  CHECK(l.try_acquire(3));     // the full shard swept itself and made room
  CHECK(l.size() == 3);
  const auto st = l.stats();
  CHECK(st.keys == 3);
  CHECK(st.max_keys == 3);
  CHECK(st.refused == 1);
  CHECK(st.dropped == 1);
}

TEST_CASE("keyed reserve/settle refunds and debts per key, and pins the key until settled", "[limit][keyed][settle]") {
  keel::manual_clock clock;
  keel::keyed_limiter<int, keel::manual_clock> l{keel::rate_limit::per_second(1000, 1000), one_shard(10), clock};
  auto a = l.reserve(1, 800);
  REQUIRE(a);
  CHECK(a->estimate() == 800);
  a->settle(100);
  CHECK(drain(l, 1, 100) == 9);

  auto b = l.reserve(2, 10);
  REQUIRE(b);
  clock.advance(1s);      // key 2's TAT has passed, but its reservation pins it
  CHECK(l.sweep() == 1);  // only key 1 goes
  CHECK(l.size() == 1);
  b->settle(1500);  // debt of 1490 charged from now (1 s): TAT = 2.49 s
  const auto r = l.try_acquire(2);
  REQUIRE_FALSE(r);
  CHECK(*r.error().retry_after == 491ms);  // 2.49 s + 1 ms - 1 s tolerance - 1 s now

  {
    auto c = l.reserve(3, 10);
    REQUIRE(c);
  }  // dropped unsettled: keeps the estimate, unpins
  CHECK(drain(l, 3) == 990);
  clock.advance(2s);
  CHECK(l.sweep() == 2);
  CHECK(l.size() == 0);

  auto d = l.reserve(4, 1);
  auto e = std::move(*d);
  d->settle(0);  // moved-from: ignored
  CHECK(l.try_acquire(4, 999));
  CHECK_FALSE(l.try_acquire(4, 1));
  e = std::move(*l.reserve(5, 1));  // e's own reservation is dropped (estimate kept), key 4 unpinned
  clock.advance(1s);
  CHECK(l.sweep() == 1);  // key 4 gone, key 5 pinned by e
  e.settle(0);
}

TEST_CASE("a throwing quota function leaves the table unchanged", "[limit][keyed]") {
  keel::manual_clock clock;
  keel::keyed_limiter<int, keel::manual_clock> l{[](const int& k) {
                                                   if (k < 0) throw std::runtime_error("unknown tenant");
                                                   return keel::rate_limit::per_second(10, 2);
                                                 },
                                                 one_shard(2), clock};
  CHECK_THROWS_AS(l.try_acquire(-1), std::runtime_error);
  CHECK_THROWS_AS(l.reserve(-1, 1), std::runtime_error);
  CHECK(l.size() == 0);
  CHECK(drain(l, 1) == 2);
  CHECK(drain(l, 2) == 2);
  CHECK(l.size() == 2);
}

TEST_CASE("invalid keyed configuration is refused with a clear message", "[limit][keyed]") {
  using keyed = keel::keyed_limiter<int, keel::manual_clock>;
  keel::manual_clock clock;
  CHECK_THROWS_WITH(keyed(keel::rate_limit::per_second(10), keel::keyed_config{100, 3}, clock),
                    "keel::keyed_limiter: shards must be a power of two");
  CHECK_THROWS_WITH(keyed(keel::rate_limit::per_second(10), keel::keyed_config{100, 0}, clock),
                    "keel::keyed_limiter: shards must be a power of two");
  CHECK_THROWS_WITH(keyed(keel::rate_limit::per_second(10), keel::keyed_config{0, 4}, clock),
                    "keel::keyed_limiter: max_keys must be at least 1");
  CHECK_THROWS_WITH(keyed(keel::rate_limit{10, 0, 1s}, {}, clock), "keel::limit: burst must be at least 1");
  CHECK_THROWS_WITH(keyed(keyed::quota_function{}, {}, clock), "keel::keyed_limiter: quota must be a callable");
  keyed bad_tier{[](const int&) { return keel::rate_limit{-1, 1, 1s}; }, {}, clock};
  CHECK_THROWS_WITH(bad_tier.try_acquire(1), "keel::limit: rate must be a positive, finite number");
  CHECK(bad_tier.size() == 0);
  CHECK(keyed(keel::rate_limit::per_second(10), keel::keyed_config{100, 4}, clock).stats().max_keys == 100);
  CHECK(keyed(keel::rate_limit::per_second(10), keel::keyed_config{101, 4}, clock).stats().max_keys == 104);
}

TEST_CASE("a million distinct keys stay within max_keys and bounded memory", "[limit][keyed][memory]") {
  using alloc = keel_test::counting_allocator<std::uint64_t>;
  using keyed =
      keel::keyed_limiter<std::uint64_t, keel::manual_clock, std::hash<std::uint64_t>, std::equal_to<>, alloc>;
  constexpr std::size_t max_keys = 4096;
  keel_test::allocation_counter bytes;

  SECTION("keys come to rest: all are served and resting keys make room") {
    keel::manual_clock clock;
    keyed l{keel::rate_limit::per_second(1, 1), keel::keyed_config{max_keys, 16}, clock, {}, {}, alloc(&bytes)};
    // One call per key, one key per millisecond: a key rests 1 s after its
    // call, so about 1 000 keys are live at any time, while a million pass.
    // Shards fill with resting keys and sweep themselves; no one is refused.
    std::uint64_t refused = 0;
    for (std::uint64_t k = 0; k < 1'000'000; ++k) {
      if (!l.try_acquire(k)) ++refused;
      clock.advance(1ms);
    }
    const auto st = l.stats();
    INFO("peak " << bytes.peak << " bytes");
    CHECK(refused == 0);
    CHECK(st.keys <= max_keys);
    CHECK(st.dropped + st.keys == 1'000'000);
    CHECK(st.refused == 0);
    CHECK(bytes.peak <= max_keys * 160);  // node + bucket array, generously
  }
  SECTION("every key busy: new keys are refused, never evicting a key in debt") {
    keel::manual_clock clock;
    keyed l{keel::rate_limit::per_second(1, 1), keel::keyed_config{max_keys, 16}, clock, {}, {}, alloc(&bytes)};
    std::uint64_t admitted = 0;
    for (std::uint64_t k = 0; k < 1'000'000; ++k) admitted += l.try_acquire(k) ? 1 : 0;
    const auto st = l.stats();
    CHECK(admitted == st.keys);
    CHECK(st.keys <= max_keys);
    CHECK(st.keys > max_keys * 9 / 10);  // shards fill unevenly, but nearly all room is used
    CHECK(st.dropped == 0);
    CHECK(st.refused == 1'000'000 - admitted);
    CHECK(bytes.peak <= max_keys * 160);
  }
}

namespace {
// A key whose copy throws when asked to: the table copies a key when it adds it.
struct fragile_key {
  int id;
  bool throws_on_copy;
  fragile_key(int i, bool t) : id(i), throws_on_copy(t) {}
  fragile_key(const fragile_key& o) : id(o.id), throws_on_copy(o.throws_on_copy) {
    if (throws_on_copy) throw std::runtime_error("copy failed");
  }
  fragile_key(fragile_key&&) noexcept = default;
  fragile_key& operator=(const fragile_key&) = default;
  friend bool operator==(const fragile_key& a, const fragile_key& b) { return a.id == b.id; }
};
struct fragile_hash {
  std::size_t operator()(const fragile_key& k) const noexcept { return std::hash<int>()(k.id); }
};
}  // namespace

TEST_CASE("a key whose copy throws while being added leaves the limiter unchanged", "[limit][keyed]") {
  keel::manual_clock clock;
  keel::keyed_limiter<fragile_key, keel::manual_clock, fragile_hash> l{
      [](const fragile_key& k) { return keel::rate_limit::per_second(10, k.id < 100 ? 2 : 4); }, one_shard(100), clock};
  CHECK_THROWS_AS(l.try_acquire(fragile_key{1, true}), std::runtime_error);
  CHECK_THROWS_AS(l.reserve(fragile_key{200, true}, 1), std::runtime_error);
  CHECK(l.size() == 0);
  // The same keys, copyable now, start fresh with their own tiers.
  CHECK(drain(l, fragile_key{1, false}) == 2);
  CHECK(drain(l, fragile_key{200, false}) == 4);
  for (int k = 2; k < 40; ++k) CHECK(l.try_acquire(fragile_key{k, false}));  // the table grows past its first array
  CHECK(l.size() == 40);
  clock.advance(1s);
  CHECK(l.sweep() == 40);
}
