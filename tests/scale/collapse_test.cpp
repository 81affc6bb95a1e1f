// keel's faster scale-down after a collapse of demand (collapse_config), its
// guard against oscillating load, and drain replicas leaving during panic —
// to exact numbers with the manual clock.
#include <keel/core/clock.hpp>
#include <keel/scale/autoscaler.hpp>

#include "ask.hpp"

#include <catch.hpp>

#include <chrono>
#include <cmath>
#include <memory>
#include <vector>

using namespace std::chrono_literals;
using scaler = keel::autoscaler<keel::manual_clock>;
using keel::scale_reason;

namespace {

using keel_test::ask;
using keel_test::at;

// One fleet-total metric at target 1 (the reading is the replicas it asks
// for), HPA's 300 s scale-down window, no scale-up limit, collapse release on.
keel::autoscaler_config collapsing() {
  keel::autoscaler_config c;
  c.max_replicas = 100;
  c.scale_up.policies = {keel::scaling_policy::pods(100, 15s)};
  c.metrics = {{.name = "arrival_rate", .target = 1, .kind = keel::metric_kind::total}};
  c.collapse.enabled = true;  // 60 s, half
  return c;
}

// Rate (target 4 per replica) plus a backlog (60 per replica drains it).
keel::autoscaler_config rate_and_backlog() {
  keel::autoscaler_config c;
  c.max_replicas = 100;
  c.scale_up.policies = {keel::scaling_policy::pods(100, 15s)};
  c.scale_down.stabilization_window = 0s;
  c.metrics = {{.name = "arrival_rate", .target = 4, .kind = keel::metric_kind::total},
               {.name = "queue_depth", .target = 60, .kind = keel::metric_kind::total, .backlog = true}};
  c.panic.enabled = true;
  return c;
}

}  // namespace

TEST_CASE("collapse: demand down to half or less for the short window releases the long window's hold",
          "[scale][collapse]") {
  scaler a{collapsing()};
  CHECK(ask(a, 0s, 40, {40}).replicas == 40);
  for (auto t : {15s, 30s, 45s}) {
    auto d = ask(a, t, 40, {10});
    CHECK(d.replicas == 40);  // the 40 of 0 s is still within the last 60 s
    CHECK(d.reason == scale_reason::stabilized);
  }
  CHECK(ask(a, 59s, 40, {10}).replicas == 40);
  auto d = ask(a, 60s, 40, {10});  // 60 s of 10 ≤ 0.5 × 40: collapsed
  CHECK(d.replicas == 10);
  CHECK(d.reason == scale_reason::metrics);

  auto hpa = collapsing();
  hpa.collapse.enabled = false;
  scaler b{hpa};
  CHECK(ask(b, 0s, 40, {40}).replicas == 40);
  CHECK(ask(b, 60s, 40, {10}).replicas == 40);  // HPA: held for the whole 300 s
  CHECK(ask(b, 300s, 40, {10}).replicas == 10);
}

TEST_CASE("collapse: demand above the fraction is held for the long window, as HPA", "[scale][collapse]") {
  scaler a{collapsing()};
  CHECK(ask(a, 0s, 40, {40}).replicas == 40);
  for (auto t : {15s, 30s, 45s, 60s, 120s, 299s}) CHECK(ask(a, t, 40, {21}).replicas == 40);  // 21 > 20
  CHECK(ask(a, 300s, 40, {21}).replicas == 21);

  scaler b{collapsing()};  // exactly at the fraction is a collapse
  CHECK(ask(b, 0s, 40, {40}).replicas == 40);
  CHECK(ask(b, 30s, 40, {20}).replicas == 40);
  CHECK(ask(b, 60s, 40, {20}).replicas == 20);

  auto c = collapsing();
  c.collapse.fraction = 0.25;
  scaler q{c};
  CHECK(ask(q, 0s, 40, {40}).replicas == 40);
  CHECK(ask(q, 60s, 40, {11}).replicas == 40);   // 11 > 0.25 × 40
  CHECK(ask(q, 119s, 40, {10}).replicas == 40);  // 11 is within the last 60 s
  CHECK(ask(q, 120s, 40, {10}).replicas == 10);  // (60 s, 120 s]: 10 only
}

TEST_CASE("collapse: the short window lasts at least one cold start", "[scale][collapse][cold_start]") {
  auto c = collapsing();
  c.cold_start.startup_delay = 120s;  // a released replica takes 2 minutes to come back
  scaler a{c};
  CHECK(ask(a, 0s, 40, {40}).replicas == 40);
  CHECK(ask(a, 60s, 40, {10}).replicas == 40);
  CHECK(ask(a, 119s, 40, {10}).replicas == 40);
  CHECK(ask(a, 120s, 40, {10}).replicas == 10);
}

TEST_CASE("collapse: a rebound over halfway means oscillation: nothing released early, the hold doubles",
          "[scale][collapse]") {
  scaler a{collapsing()};
  CHECK(ask(a, 0s, 40, {40}).replicas == 40);
  for (auto t : {15s, 30s, 45s}) CHECK(ask(a, t, 40, {10}).replicas == 40);
  CHECK(ask(a, 60s, 40, {10}).replicas == 10);  // the first collapse is released: nothing known yet

  CHECK(ask(a, 75s, 10, {40}).replicas == 40);  // back: 40 ≥ (10 + 40) / 2 — a rebound at 75 s
  for (auto t : {90s, 105s, 120s, 135s}) CHECK(ask(a, t, 40, {10}).replicas == 40);
  // Collapsed for 60 s, but oscillating: held at the peak load of 40 (the
  // hold, ceil(40 × 1.1) = 44, bounds from above; nothing brings it down).
  auto d = ask(a, 150s, 40, {10});
  CHECK(d.replicas == 40);
  CHECK(d.reason == scale_reason::stabilized);
  CHECK(ask(a, 165s, 40, {30}).replicas == 40);  // 30 ≥ (10 + 40) / 2: rebound again at 165 s
  for (int s = 180; s <= 375; s += 15) CHECK(ask(a, std::chrono::seconds(s), 40, {10}).replicas == 40);

  // 376 s: HPA's window (after 76 s) holds only 30 now, but 376 − 165 < 300:
  // still oscillating, and two long windows (after −224 s) still have the
  // load of 40 of 75 s.
  d = ask(a, 376s, 40, {10});
  CHECK(d.replicas == 40);
  CHECK(d.reason == scale_reason::stabilized);
  CHECK(ask(a, 464s, 40, {10}).replicas == 40);
  // 465 s: 300 s since the last rebound. Not oscillating; the long window has 10s only.
  CHECK(ask(a, 465s, 40, {10}).replicas == 10);

  auto hpa = collapsing();
  hpa.collapse.enabled = false;
  scaler b{hpa};
  CHECK(ask(b, 0s, 40, {40}).replicas == 40);
  CHECK(ask(b, 75s, 40, {40}).replicas == 40);
  CHECK(ask(b, 165s, 40, {30}).replicas == 40);
  CHECK(ask(b, 376s, 40, {10}).replicas == 30);  // HPA alone: the window has let the 40 go
}

TEST_CASE("collapse: an oscillation is held at its peak load plus the scale-up tolerance, not its recommendations",
          "[scale][collapse]") {
  auto c = collapsing();
  c.metrics[0].headroom = 1.0;  // a load of 16 asks for 16 + √16 = 20 replicas
  c.scale_up.tolerance = 0.05;
  scaler a{c};
  CHECK(ask(a, 0s, 16, {16}).replicas == 20);
  for (auto t : {15s, 30s, 45s}) CHECK(ask(a, t, 20, {4}).replicas == 20);  // 4 + 2 = 6 of 20: collapsed
  CHECK(ask(a, 60s, 20, {4}).replicas == 6);                                // the first collapse is released

  auto d = ask(a, 75s, 6, {16});  // a rebound: oscillating
  CHECK(d.recommended == 20);
  CHECK(d.replicas == 17);  // ceil(16 × 1.05): the held fleet needs no headroom for a rise
  CHECK(d.reason == scale_reason::stabilized);
  CHECK(ask(a, 90s, 17, {4}).replicas == 17);
  d = ask(a, 105s, 17, {16.5});  // a noisy peak: ceil(16.5 × 1.05) = 18; it recommends 21
  CHECK(d.recommended == 21);
  CHECK(d.replicas == 18);
  // Peaks of 16 again: held at 18, the highest load of two long windows, up
  // to 690 s. Holding recommendations would hold the 21 of 105 s; and
  // 16 + 4 = 20 is within tolerance of 21, so each peak would hold 21 again,
  // for ever.
  for (int s = 120; s <= 690; s += 30) {
    CHECK(ask(a, std::chrono::seconds(s), 18, {4}).replicas == 18);
    CHECK(ask(a, std::chrono::seconds(s + 15), 18, {16}).replicas == 18);
  }
  // From 705 s the 16.5 of 105 s is two long windows old. The hold is
  // ceil(16 × 1.05) = 17, but 18 → 17 is within the scale-down tolerance (10%):
  // noise in the peak, not taken (705 s in the loop above, then 720 s).
  CHECK(ask(a, 720s, 18, {4}).replicas == 18);
  CHECK(ask(a, 735s, 18, {16}).replicas == 18);
  // Peaks of 12 from then on: once the 16 of 735 s is two long windows old,
  // the hold is ceil(12 × 1.05) = 13, a real step down, taken.
  for (int s = 750; s <= 1290; s += 30) {
    CHECK(ask(a, std::chrono::seconds(s), 18, {4}).replicas == 18);
    CHECK(ask(a, std::chrono::seconds(s + 15), 18, {12}).replicas == 18);
  }
  CHECK(ask(a, 1320s, 18, {4}).replicas == 18);
  CHECK(ask(a, 1334s, 18, {4}).replicas == 18);
  d = ask(a, 1335s, 18, {4});
  CHECK(d.replicas == 13);
  CHECK(d.reason == scale_reason::stabilized);
}

TEST_CASE("collapse: an oscillation hold counts missing readings as HPA does", "[scale][collapse]") {
  // An average metric (target 10 per ready replica). Oscillating from 75 s,
  // with a peak load of 12 replicas: the hold is ceil(12 × 1.1) = 14.
  auto oscillating = [] {
    auto c = collapsing();
    c.metrics = {{.name = "in_flight", .target = 10}};
    auto a = std::make_unique<scaler>(c);
    CHECK(ask(*a, 0s, 12, {10}).replicas == 12);
    for (auto t : {15s, 30s, 45s}) CHECK(ask(*a, t, 12, {2.5}).replicas == 12);
    CHECK(ask(*a, 60s, 12, {2.5}).replicas == 3);  // released
    CHECK(ask(*a, 75s, 3, {40}).replicas == 12);   // a rebound
    return a;
  };
  // 20 replicas, every one reporting 5: a load of 10, so the hold of 14 applies.
  auto a = oscillating();
  auto d = ask(*a, 90s, 20, {5});
  CHECK(d.replicas == 14);
  CHECK(d.reason == scale_reason::stabilized);
  // Only 2 of the 20 report. HPA counts the 18 silent ones at target on a
  // scale-down: (2 × 5 + 18 × 10) / 200 = 0.95, within tolerance, no change.
  // The hold takes the same filled-in load (19), and keeps the 20.
  auto b = oscillating();
  d = ask(*b, 90s, 20, {keel::metric_sample(5, 2)});
  CHECK(d.recommended == 20);
  CHECK(d.replicas == 20);
}

TEST_CASE("collapse: a small dip and back is not an oscillation", "[scale][collapse]") {
  scaler a{collapsing()};
  CHECK(ask(a, 0s, 40, {40}).replicas == 40);
  CHECK(ask(a, 15s, 40, {10}).replicas == 40);  // a collapse reading: 10 of 40
  CHECK(ask(a, 30s, 40, {24}).replicas == 40);  // back to 24 < (10 + 40) / 2: no rebound
  CHECK(ask(a, 89s, 40, {12}).replicas == 40);  // 24 of 30 s is within the last 60 s
  CHECK(ask(a, 90s, 40, {12}).replicas == 12);  // released: not oscillating
}

TEST_CASE("collapse: a clock standing still or jumping far ahead", "[scale][collapse][edge]") {
  scaler a{collapsing()};
  CHECK(ask(a, 0s, 40, {40}).replicas == 40);
  for (int i = 0; i < 5; ++i) CHECK(ask(a, 0s, 40, {10}).replicas == 40);  // no time passes: no release
  CHECK(ask(a, 10'000h, 40, {10}).replicas == 10);                         // every window long gone
  CHECK(ask(a, 10'000h, 10, {40}).replicas == 40);
  CHECK(ask(a, 9'000h, 40, {10}).replicas == 40);  // backwards is standing still
  CHECK(a.stats().stabilization_samples > 0);
}

TEST_CASE("collapse: invalid settings are rejected", "[scale][collapse][config]") {
  auto with = [](auto change) {
    auto c = collapsing();
    change(c);
    return c;
  };
  using C = keel::autoscaler_config;
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.collapse.window = -1s; })),
                    "keel::autoscaler: collapse.window must be in [0, 1 h]");
  CHECK_THROWS_WITH(scaler(with([](C& c) { c.collapse.window = 61min; })),
                    "keel::autoscaler: collapse.window must be in [0, 1 h]");
  for (double f : {0.0, 1.0, -0.5, std::nan("")}) {
    CHECK_THROWS_WITH(scaler(with([f](C& c) { c.collapse.fraction = f; })),
                      "keel::autoscaler: collapse.fraction must be in (0, 1)");
  }
}

TEST_CASE("panic holds the fleet it reached, but drain replicas go once their backlog is drained",
          "[scale][panic][backlog]") {
  scaler a{rate_and_backlog()};
  CHECK(ask(a, 0s, 10, {40, 0}).replicas == 10);
  auto d = ask(a, 15s, 10, {80, 1200});  // 20 for the rate + 20 to drain: 40 ≥ 2 × 10 ready
  CHECK(d.panicking);
  CHECK(d.replicas == 40);
  d = ask(a, 30s, 40, {80, 0}, 10);  // drained: the 20 drain replicas go, panic holds the 20 (20 ≥ 2 × 10)
  CHECK(d.panicking);
  CHECK(d.replicas == 20);
  CHECK(d.reason == scale_reason::panic);
  d = ask(a, 45s, 20, {40, 0});  // the rate halves: panic does not scale down
  CHECK(d.panicking);
  CHECK(d.replicas == 20);
  d = ask(a, 60s, 20, {40, 300});  // new backlog: 5 drain replicas on top of the held 20
  CHECK(d.replicas == 25);
  d = ask(a, 75s, 25, {40, 0});
  CHECK(d.panicking);
  CHECK(d.replicas == 20);
  d = ask(a, 90s, 20, {40, 0});  // 60 s after the condition last held (30 s): out of panic
  CHECK_FALSE(d.panicking);
  CHECK(d.replicas == 10);
}

TEST_CASE("panic after a wake-up from zero does not hold the wake-up's drain replicas",
          "[scale][panic][zero][backlog]") {
  auto c = rate_and_backlog();
  c.min_replicas = 0;
  scaler a{c};
  auto d = ask(a, 0s, 0, {40, 600});  // 10 for the rate + 10 to drain
  CHECK(d.replicas == 20);
  CHECK(d.reason == scale_reason::activation);
  d = ask(a, 15s, 20, {40, 1200}, 0);  // panic (30 ≥ 2 × max(0 ready, 1)): 10 held + 20 to drain
  CHECK(d.panicking);
  CHECK(d.replicas == 30);
  d = ask(a, 30s, 30, {40, 0});
  CHECK(d.panicking);
  CHECK(d.replicas == 10);
}
