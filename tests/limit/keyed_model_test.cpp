// Model-based test of the whole keyed limiter against a plain reference: a
// std::unordered_map from key to {TAT, T and τ, pins}, judged with the same
// GCRA functions (detail/gcra_math.hpp, model-tested on their own in
// gcra_model_test.cpp), on random seeded sequences of try_acquire, reserve,
// settle, dropped reservations, peek, clock steps and sweeps. What it checks
// is the table's plumbing: each key keeps its own state and its own tier
// through moves, growth and the drops of other keys; quotas are asked once
// per new key; a tier change reaches a key only once it was dropped; sweep
// drops exactly the unpinned keys at rest; interned tiers are reused.
#include <keel/core/clock.hpp>
#include <keel/limit/keyed.hpp>

#include <catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <unordered_map>
#include <vector>

namespace {

struct reference_key {
  std::int64_t tat;
  keel::detail::gcra_params params;
  std::uint32_t pins;
};

// What the limiter should answer for `cost` against `tat`: admitted (and the
// new TAT) or the rejection's code and retry_after.
struct expected {
  bool admitted;
  keel::errc code;
  std::int64_t retry_after_ns;
  std::int64_t new_tat;
};
expected judge(std::int64_t tat, std::int64_t now, std::int64_t cost, keel::detail::gcra_params p) {
  if (cost < 0) return {false, keel::errc::invalid_argument, -1, tat};
  const auto d = keel::detail::gcra_decide(tat, now, now, cost, p);
  switch (d.verdict) {
    case keel::detail::gcra_verdict::admit: return {true, keel::errc::rate_limited, -1, d.new_tat};
    case keel::detail::gcra_verdict::reject: return {false, keel::errc::rate_limited, d.wait, tat};
    case keel::detail::gcra_verdict::never: break;
  }
  return {false, keel::errc::invalid_argument, -1, tat};
}

template <class Result>
void check_same(const Result& got, const expected& want) {
  REQUIRE(static_cast<bool>(got) == want.admitted);
  if (want.admitted) return;
  CHECK(got.error().code == want.code);
  if (want.retry_after_ns >= 0) CHECK(got.error().retry_after->count() == want.retry_after_ns);
}

}  // namespace

TEST_CASE("keyed_limiter matches a map of GCRA states under random calls, settles, clock steps and sweeps",
          "[limit][keyed][model]") {
  const keel::rate_limit plans[] = {keel::rate_limit::per_second(10, 3), keel::rate_limit::per_second(1000, 40),
                                    keel::rate_limit::per_minute(600, 5),
                                    keel::rate_limit{7, 2, std::chrono::seconds(3)}};
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    INFO("seed " << seed);
    std::mt19937_64 rng(seed);
    auto pick = [&](std::int64_t lo, std::int64_t hi) {
      return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
    };

    keel::manual_clock clock;
    int plan_shift = 0;  // changing it changes every key's tier, for keys created from then on
    int quota_calls = 0;
    auto quota = [&](const int& key) {
      ++quota_calls;
      return plans[static_cast<std::size_t>(key + plan_shift) % 4];
    };
    // Room for every key, so the table never refuses (refusal is tested in keyed_test.cpp);
    // two shards, so each has its own tier table.
    keel::keyed_limiter<int, keel::manual_clock> limiter{quota, keel::keyed_config{128, 2}, clock};
    using reservation = keel::keyed_limiter<int, keel::manual_clock>::reservation;

    std::unordered_map<int, reference_key> model;
    struct held {
      reservation permit;
      int key;
    };
    std::vector<held> open;
    std::uint64_t dropped = 0;
    int expected_quota_calls = 0;
    auto now = [&] { return keel::detail::now_ns(clock); };
    // The reference's state for `key`, or the fresh state a new key would start from.
    auto state_of = [&](int key) {
      if (auto it = model.find(key); it != model.end()) return it->second;
      ++expected_quota_calls;
      return reference_key{keel::detail::rested_tat,
                           keel::detail::to_gcra(plans[static_cast<std::size_t>(key + plan_shift) % 4]), 0};
    };

    for (int step = 0; step < 3000; ++step) {
      const int key = static_cast<int>(pick(0, 40));
      const auto op = pick(0, 99);
      if (op < 35) {  // try_acquire
        const std::int64_t cost = pick(-1, 6);
        const reference_key st = cost < 0 ? reference_key{} : state_of(key);  // a negative cost asks no quota
        const expected want = judge(st.tat, now(), cost, st.params);
        check_same(limiter.try_acquire(key, cost), want);
        if (want.admitted) model[key] = reference_key{want.new_tat, st.params, st.pins};
      } else if (op < 55) {  // reserve
        const std::int64_t estimate = pick(0, 8);
        reference_key st = state_of(key);
        const expected want = judge(st.tat, now(), estimate, st.params);
        auto got = limiter.reserve(key, estimate);
        check_same(got, want);
        if (want.admitted) {
          model[key] = reference_key{want.new_tat, st.params, st.pins + 1};
          open.push_back(held{std::move(*got), key});
        }
      } else if (op < 70 && !open.empty()) {  // settle or drop an open reservation
        const auto i = static_cast<std::size_t>(pick(0, static_cast<std::int64_t>(open.size()) - 1));
        held h = std::move(open[i]);
        open.erase(open.begin() + static_cast<std::ptrdiff_t>(i));
        reference_key& st = model.at(h.key);
        if (pick(0, 1) == 0) {
          const std::int64_t actual = pick(-2, 12);
          const std::int64_t delta = std::max<std::int64_t>(actual, 0) - h.permit.estimate();
          st.tat = keel::detail::gcra_adjust(st.tat, now(), delta, st.params);
          h.permit.settle(actual);
        } else {
          h.permit = reservation(std::move(h.permit));  // a move keeps it open ...
        }                                               // ... and leaving scope drops it (estimate kept) if not settled
        --st.pins;
      } else if (op < 80) {  // peek: charges nothing, adds no key
        const std::int64_t cost = pick(0, 6);
        const reference_key st = state_of(key);
        check_same(limiter.peek(key, cost), judge(st.tat, now(), cost, st.params));
      } else if (op < 94) {  // time passes, sometimes far
        clock.advance(std::chrono::milliseconds(op == 93 ? 10'000 : pick(0, 400)));
      } else if (op < 98) {  // sweep: drops exactly the unpinned keys at rest
        const auto want =
            std::erase_if(model, [&](const auto& e) { return e.second.pins == 0 && e.second.tat <= now(); });
        dropped += want;
        CHECK(limiter.sweep() == want);
      } else {  // the plans change: only keys created from now on see it
        ++plan_shift;
      }
      REQUIRE(limiter.size() == model.size());
      REQUIRE(quota_calls == expected_quota_calls);
    }
    open.clear();
    const auto st = limiter.stats();
    CHECK(st.keys == model.size());
    CHECK(st.dropped == dropped);
    CHECK(st.refused == 0);
  }
}
