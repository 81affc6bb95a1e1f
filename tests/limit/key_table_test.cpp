// Model-based test of the keyed limiter's open-addressing table against
// std::unordered_map, on random seeded sequences of inserts, lookups,
// predicate erases (backward shift) and lookups by id after keys have moved.
// A weak hash forces long runs and wrap-around; std::string keys make ASan
// check every construction, move and destruction.
#include <keel/limit/detail/key_table.hpp>

#include "counting_allocator.hpp"

#include <catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <unordered_map>

namespace {
struct weak_hash {  // 16 distinct values: many keys per run
  std::size_t operator()(const std::string& s) const noexcept { return std::hash<std::string>()(s) % 16; }
};
using table = keel::detail::key_table<std::string, weak_hash, std::equal_to<std::string>,
                                      keel_test::counting_allocator<std::string>>;
}  // namespace

TEST_CASE("key_table matches std::unordered_map under random inserts, erases and moves", "[limit][keyed][model]") {
  keel_test::allocation_counter bytes;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    {
      std::mt19937_64 rng(seed);
      auto pick = [&](std::int64_t lo, std::int64_t hi) {
        return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
      };
      table t{weak_hash{}, {}, keel_test::counting_allocator<std::string>(&bytes)};
      struct model_entry {
        std::int64_t tat;
        std::uint64_t id;
      };
      std::unordered_map<std::string, model_entry> model;
      INFO("seed " << seed);
      for (int step = 0; step < 4000; ++step) {
        const std::string key = "tenant-with-a-long-name-" + std::to_string(pick(0, 300));
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
            auto& added = t.insert(key, h, keel::detail::key_state{{1, 1}, tat, 0});
            model.emplace(key, model_entry{tat, added.id});
          }
        } else if (op < 7) {  // drop every key below a random threshold
          const std::int64_t below = pick(0, 400);
          const auto erased = t.erase_if([&](const table::slot& s) { return s.state.tat < below; });
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
        CHECK(t.size() * 4 <= t.capacity() * 3);
      }
    }
    CHECK(bytes.live == 0);  // every slot array and every key freed
  }
}
