// Model-based test of the keyed limiter's open-addressing table against
// std::unordered_map, on random seeded sequences of inserts, lookups,
// predicate erases (backward shift) and lookups by id after keys have moved.
// A weak hash forces long runs and wrap-around. Two key types: std::string
// (a 64-byte slot, one per cache line; ASan checks every construction, move
// and destruction) and std::uint64_t (32-byte slots, two per line, so homes
// are line-aligned and a run starts mid-line).
#include <keel/limit/detail/key_table.hpp>
#include <keel/limit/detail/tier_table.hpp>

#include "counting_allocator.hpp"

#include <catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <unordered_map>

namespace {
struct weak_hash {  // 16 distinct values: many keys per run
  std::size_t operator()(const std::string& s) const noexcept { return std::hash<std::string>()(s) % 16; }
  std::size_t operator()(std::uint64_t k) const noexcept { return std::hash<std::uint64_t>()(k) % 16; }
};
template <class Key>
using table_of = keel::detail::key_table<Key, weak_hash, std::equal_to<Key>, keel_test::counting_allocator<Key>>;

static_assert(sizeof(table_of<std::string>::slot) == 64 && table_of<std::string>::per_line == 1);
static_assert(sizeof(table_of<std::uint64_t>::slot) == 32 && table_of<std::uint64_t>::per_line == 2);

std::string make_key(std::int64_t i, const std::string*) { return "tenant-with-a-long-name-" + std::to_string(i); }
std::uint64_t make_key(std::int64_t i, const std::uint64_t*) { return static_cast<std::uint64_t>(i) * 977; }
}  // namespace

TEMPLATE_TEST_CASE("key_table matches std::unordered_map under random inserts, erases and moves",
                   "[limit][keyed][model]", std::string, std::uint64_t) {
  using key_type = TestType;
  using table = table_of<key_type>;
  keel_test::allocation_counter bytes;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    {
      std::mt19937_64 rng(seed);
      auto pick = [&](std::int64_t lo, std::int64_t hi) {
        return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
      };
      table t{weak_hash{}, {}, keel_test::counting_allocator<key_type>(&bytes)};
      struct model_entry {
        std::int64_t tat;
        std::uint64_t id;
      };
      std::unordered_map<key_type, model_entry> model;
      INFO("seed " << seed);
      for (int step = 0; step < 4000; ++step) {
        const key_type key = make_key(pick(0, 300), static_cast<const key_type*>(nullptr));
        const std::size_t h = weak_hash()(key);
        const auto op = pick(0, 9);
        if (op < 5) {  // find, insert if absent
          auto* found = t.find(key, h);
          const auto it = model.find(key);
          REQUIRE((found != nullptr) == (it != model.end()));
          if (found) {
            CHECK(found->key() == key);
            CHECK(found->state.tat == it->second.tat);
            CHECK(found->id == it->second.id);
            found->state.tat = pick(0, 1000);
            it->second.tat = found->state.tat;
          } else {
            const std::int64_t tat = pick(0, 1000);
            auto& added = t.insert(key, h, keel::detail::key_state{tat, 0, 0});
            model.emplace(key, model_entry{tat, added.id});
          }
        } else if (op < 7) {  // drop every key below a random threshold
          const std::int64_t below = pick(0, 400);
          const auto erased = t.erase_if([&](const typename table::slot& s) { return s.state.tat < below; });
          const auto want = std::erase_if(model, [&](const auto& e) { return e.second.tat < below; });
          CHECK(erased == want);
        } else if (!model.empty()) {  // a key that may have moved is found again by its id
          auto it = model.begin();
          std::advance(it, pick(0, static_cast<std::int64_t>(model.size()) - 1));
          auto& s = t.find_id(weak_hash()(it->first), it->second.id);
          CHECK(s.key() == it->first);
          CHECK(s.state.tat == it->second.tat);
        }
        REQUIRE(t.size() == model.size());
        CHECK(t.size() * table::max_load_den <= t.capacity() * table::max_load_num);
      }
    }
    CHECK(bytes.live == 0);  // every slot array and every key freed
  }
}

TEST_CASE("tier_table interns equal quotas once and reuses entries no key uses", "[limit][keyed]") {
  keel_test::allocation_counter bytes;
  {
    keel::detail::tier_table<keel_test::counting_allocator<int>> tiers{keel_test::counting_allocator<int>(&bytes)};
    const keel::detail::gcra_params free{1000, 3000}, pro{10, 400}, team{100, 100};
    CHECK(tiers.acquire(free) == 0);
    CHECK(tiers.acquire(pro) == 1);
    CHECK(tiers.acquire(free) == 0);  // a second key on the free plan
    CHECK(tiers[1] == pro);
    tiers.release(1);                 // the only pro key is dropped ...
    CHECK(tiers.acquire(team) == 1);  // ... and its entry serves the next new quota
    CHECK(tiers[1] == team);
    tiers.release(0);
    CHECK(tiers.acquire(pro) == 2);  // free still has a user
    tiers.release(0);
    CHECK(tiers.acquire(pro) == 2);  // an existing equal entry wins over a free one
    CHECK(tiers.acquire(team) == 1);
    CHECK(tiers.size() == 3);
    CHECK(bytes.live > 0);
  }
  CHECK(bytes.live == 0);
}
