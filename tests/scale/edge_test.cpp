// keel::autoscaler at the edges: invalid configuration, zero replicas, odd
// readings (NaN, infinite, negative, huge), replica counts at the int32
// limit, a clock that stands still, jumps or goes backwards; and a seeded
// property test of the invariants every decision must keep.
#include <keel/core/clock.hpp>
#include <keel/scale/autoscaler.hpp>

#include "ask.hpp"

#include <catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

using namespace std::chrono_literals;
using scaler = keel::autoscaler<keel::manual_clock>;
using keel::scale_reason;

namespace {

using keel_test::ask;
using keel_test::at;

keel::autoscaler_config valid() {
  keel::autoscaler_config c;
  c.max_replicas = 10;
  c.metrics = {{.name = "m", .target = 1}};
  return c;
}

template <class Edit>
keel::autoscaler_config with(Edit edit) {
  auto c = valid();
  edit(c);
  return c;
}

constexpr std::int32_t int_max = std::numeric_limits<std::int32_t>::max();

}  // namespace

TEST_CASE("invalid configuration is rejected with the field's name", "[scale][config]") {
  using C = keel::autoscaler_config;
  CHECK_NOTHROW(scaler(valid()));
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.max_replicas = 0; })),
                    "keel::autoscaler: max_replicas must be at least 1");
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.min_replicas = -1; })),
                    "keel::autoscaler: min_replicas must not be negative");
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.min_replicas = 11; })),
                    "keel::autoscaler: min_replicas must not exceed max_replicas");
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.metrics.clear(); })),
                    "keel::autoscaler: metrics must name at least one metric");
  const char* target = "keel::autoscaler: metrics[].target must be positive and finite";
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.metrics[0].target = 0; })), target);
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.metrics[0].target = -3; })), target);
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.metrics[0].target = std::nan(""); })), target);
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.metrics[0].target = HUGE_VAL; })), target);
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.metrics[0].activation = -1; })),
                    "keel::autoscaler: metrics[].activation must be finite and not negative");
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.scale_down.stabilization_window = -1s; })),
                    "keel::autoscaler: scale_down.stabilization_window must be in [0, 1 h]");
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.scale_up.stabilization_window = 2h; })),
                    "keel::autoscaler: scale_up.stabilization_window must be in [0, 1 h]");
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.scale_up.policies.clear(); })),
                    "keel::autoscaler: scale_up.policies must not be empty unless select is disabled");
  CHECK_NOTHROW(scaler(with([](C& c) {
    c.scale_up.policies.clear();
    c.scale_up.select = keel::select_policy::disabled;
  })));
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.scale_down.policies = {keel::scaling_policy::pods(0, 15s)}; })),
                    "keel::autoscaler: scale_down.policies[].value must be positive");
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.scale_up.policies = {keel::scaling_policy::percent(10, 0s)}; })),
                    "keel::autoscaler: scale_up.policies[].period must be in (0, 30 min]");
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.scale_up.policies = {keel::scaling_policy::percent(10, 31min)}; })),
                    "keel::autoscaler: scale_up.policies[].period must be in (0, 30 min]");
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.scale_up.tolerance = 1; })),
                    "keel::autoscaler: scale_up.tolerance must be finite and in [0, 1)");
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.scale_down.tolerance = std::nan(""); })),
                    "keel::autoscaler: scale_down.tolerance must be finite and in [0, 1)");
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.panic.stable_window = 0s; })),
                    "keel::autoscaler: panic.stable_window must be positive");
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.panic.window_fraction = 0; })),
                    "keel::autoscaler: panic.window_fraction must be in (0, 1]");
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.panic.threshold = 1; })),
                    "keel::autoscaler: panic.threshold must be finite and above 1");
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.scale_to_zero.cooldown = -1s; })),
                    "keel::autoscaler: scale_to_zero.cooldown must not be negative");
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.cold_start.startup_delay = -1s; })),
                    "keel::autoscaler: cold_start.startup_delay must not be negative");
}

TEST_CASE("HPA's defaults are the defaults", "[scale][config]") {
  const keel::autoscaler_config c;
  CHECK(c.min_replicas == 1);
  CHECK(c.scale_up.stabilization_window == 0s);
  CHECK(c.scale_up.select == keel::select_policy::max);
  REQUIRE(c.scale_up.policies.size() == 2);
  CHECK(c.scale_up.policies[0].kind == keel::scaling_policy::type::percent);
  CHECK(c.scale_up.policies[0].value == 100);
  CHECK(c.scale_up.policies[0].period == 15s);
  CHECK(c.scale_up.policies[1].kind == keel::scaling_policy::type::pods);
  CHECK(c.scale_up.policies[1].value == 4);
  CHECK(c.scale_up.policies[1].period == 15s);
  CHECK(c.scale_down.stabilization_window == 300s);
  REQUIRE(c.scale_down.policies.size() == 1);
  CHECK(c.scale_down.policies[0].kind == keel::scaling_policy::type::percent);
  CHECK(c.scale_down.policies[0].value == 100);
  CHECK(c.scale_down.policies[0].period == 15s);
  CHECK(c.scale_up.tolerance == 0.1);
  CHECK(c.scale_down.tolerance == 0.1);
  CHECK_FALSE(c.panic.enabled);
  CHECK(c.panic.stable_window == 60s);
  CHECK(c.panic.window_fraction == 0.1);
  CHECK(c.panic.threshold == 2.0);
  CHECK(c.scale_to_zero.cooldown == 300s);
  CHECK(c.cold_start.startup_delay == 0s);
}

TEST_CASE("unusable readings are missing data: NaN, infinite, negative", "[scale][edge]") {
  auto c = valid();
  c.scale_down.stabilization_window = 0s;
  for (double bad : {std::nan(""), HUGE_VAL, -HUGE_VAL, -0.5}) {
    scaler a{c};
    auto d = ask(a, 0s, 4, {bad});
    CHECK(d.replicas == 4);
    CHECK(d.reason == scale_reason::missing_metrics);
    CHECK(d.metric == -1);
  }
}

TEST_CASE("huge readings and targets saturate at max_replicas without overflow", "[scale][edge]") {
  auto c = valid();
  c.max_replicas = int_max;
  c.scale_up.policies = {keel::scaling_policy::percent(1000, 15s)};
  scaler a{c};
  auto d = ask(a, 0s, 3, {std::numeric_limits<double>::max()});
  CHECK(d.recommended == int_max);
  CHECK(d.replicas == 33);  // 3 × 1100%
  d = ask(a, 0s, int_max - 1, {1e300});
  CHECK(d.replicas == int_max);
  d = ask(a, 0s, int_max, {1e300});
  CHECK(d.replicas == int_max);
  CHECK(d.reason == scale_reason::steady);

  auto tiny = valid();
  tiny.metrics[0].target = std::numeric_limits<double>::denorm_min();
  tiny.metrics[0].kind = keel::metric_kind::total;
  scaler b{tiny};
  d = ask(b, 0s, 2, {1});  // 1 / denorm_min overflows to infinity
  CHECK(d.recommended == int_max);
  CHECK(d.replicas == 6);  // max(+100%, +4)
}

TEST_CASE("replica counts out of range in the observation are clamped", "[scale][edge]") {
  scaler a{valid()};
  auto d = ask(a, 0s, -3, {1});
  CHECK(d.current == 0);
  CHECK(d.replicas == 1);      // min_replicas
  d = ask(a, 15s, 4, {2}, 9);  // ready above current: all ready
  CHECK(d.replicas == 8);
}

TEST_CASE("a clock standing still does not let policies be replayed", "[scale][clock]") {
  auto c = valid();
  c.max_replicas = 1000;
  scaler a{c};
  CHECK(ask(a, 0s, 1, {100}).replicas == 5);
  CHECK(ask(a, 0s, 5, {100}).replicas == 5);  // the period started at 1 and it is still that period
  CHECK(ask(a, 0s, 5, {100}).replicas == 5);
}

TEST_CASE("time going backwards is time standing still", "[scale][clock]") {
  auto c = valid();
  scaler a{c};
  CHECK(ask(a, 0s, 8, {0.25}).replicas == 8);     // wants 2; stabilised: the window holds 8
  CHECK(ask(a, 200s, 8, {0.25}).replicas == 8);   // still within 300 s
  CHECK(ask(a, -900s, 8, {0.25}).replicas == 8);  // read as 200 s, not as "long after"
  CHECK(ask(a, 299s, 8, {0.25}).replicas == 8);
  CHECK(ask(a, 300s, 8, {0.25}).replicas == 2);  // the seed at 0 has left
}

TEST_CASE("a clock jumping far ahead forgets all history at once", "[scale][clock]") {
  auto c = valid();
  c.max_replicas = 1000;
  scaler a{c};
  CHECK(ask(a, 0s, 1, {100}).replicas == 5);
  const auto far = std::chrono::nanoseconds(std::numeric_limits<std::int64_t>::max() - 1);
  auto d = ask(a, far, 5, {100});
  CHECK(d.replicas == 10);  // a fresh period: max(+100%, +4)
  CHECK(a.stats().stabilization_samples <= 2);
}

TEST_CASE("stats count decisions and scale events", "[scale][stats]") {
  auto c = valid();
  c.scale_down.stabilization_window = 0s;
  scaler a{c};
  CHECK(ask(a, 0s, 2, {2}).replicas == 4);
  CHECK(ask(a, 15s, 4, {1}).replicas == 4);
  CHECK(ask(a, 30s, 4, {0.25}).replicas == 1);
  const auto s = a.stats();
  CHECK(s.decisions == 3);
  CHECK(s.scale_ups == 1);
  CHECK(s.scale_downs == 1);
  CHECK(s.last_replicas == 1);
  CHECK_FALSE(s.panicking);
}

TEST_CASE("every reason has a name", "[scale][stats]") {
  for (int r = 0; r <= static_cast<int>(scale_reason::scale_to_zero); ++r)
    CHECK(std::string(keel::to_string(static_cast<scale_reason>(r))) != "unknown");
}

// Random fleets and readings, decisions applied as a controller would. Every
// decision must stay within bounds, be reproducible, hold the count when the
// data say nothing, and never move against the metrics outside panic and
// the bounds.
TEST_CASE("property: bounds, determinism, no change without data, direction follows the data", "[scale][model]") {
  std::mt19937_64 rng(20261127);
  for (int run = 0; run < 200; ++run) {
    keel::autoscaler_config c;
    c.min_replicas = static_cast<std::int32_t>(rng() % 3);
    c.max_replicas = c.min_replicas + 1 + static_cast<std::int32_t>(rng() % 40);
    c.metrics = {{.name = "avg", .target = 1 + static_cast<double>(rng() % 10)},
                 {.name = "total",
                  .target = 1 + static_cast<double>(rng() % 10),
                  .kind = keel::metric_kind::total,
                  .activation = static_cast<double>(rng() % 3),
                  .backlog = (rng() & 1) != 0}};
    c.scale_down.stabilization_window = std::chrono::seconds(rng() % 400);
    c.scale_up.stabilization_window = std::chrono::seconds(rng() % 60);
    c.panic.enabled = (rng() & 1) != 0;
    c.cold_start.startup_delay = std::chrono::seconds(rng() % 3 == 0 ? 0 : 30 + rng() % 120);
    scaler a{c};
    scaler twin{c};
    std::int32_t current = c.min_replicas == 0 ? 0 : c.min_replicas;
    std::chrono::nanoseconds t{0};
    for (int step = 0; step < 120; ++step) {
      t += std::chrono::seconds(static_cast<std::int64_t>(rng() % 40) - 5);  // sometimes backwards
      const std::int32_t ready =
          current == 0 ? 0 : static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(current + 1));
      const int kind = static_cast<int>(rng() % 10);
      std::vector<keel::metric_sample> m;
      if (kind == 0) {
        m = {std::nan(""), std::nan("")};
      } else {
        // One draw per statement: argument evaluation order is unspecified,
        // and the sequence must not depend on the compiler.
        const double average = static_cast<double>(rng() % 50);
        const auto reporting = static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(ready + 2)) - 1;
        const double total = static_cast<double>(rng() % 200);
        m = {keel::metric_sample(average, reporting), total};
      }
      const auto d = ask(a, t, current, m, ready);
      const auto e = ask(twin, t, current, m, ready);
      REQUIRE(d.replicas == e.replicas);
      REQUIRE(d.reason == e.reason);
      REQUIRE(d.replicas >= 0);
      REQUIRE(d.replicas <= c.max_replicas);
      if (d.replicas < c.min_replicas) REQUIRE(d.replicas == 0);
      if (d.replicas == 0) REQUIRE((c.min_replicas == 0));
      const bool in_range = current >= std::max(c.min_replicas, 1) && current <= c.max_replicas;
      if (kind == 0 && in_range) REQUIRE(d.replicas == current);
      if (in_range && !d.panicking && d.reason != scale_reason::scale_to_zero) {
        // Outside panic, the count moves only towards the recommendation.
        if (d.replicas > current) REQUIRE(d.recommended > current);
        if (d.replicas < current) REQUIRE(d.recommended < current);
      }
      current = d.replicas;
    }
  }
}
