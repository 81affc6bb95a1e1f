// What keel::autoscaler adds to HPA, to exact numbers: Knative's panic mode,
// KEDA's scale to zero (activation threshold, cooldown) and the cold-start
// model.
#include <keel/core/clock.hpp>
#include <keel/scale/autoscaler.hpp>

#include "ask.hpp"

#include <catch.hpp>

#include <chrono>
#include <cmath>
#include <vector>

using namespace std::chrono_literals;
using scaler = keel::autoscaler<keel::manual_clock>;
using keel::scale_reason;

namespace {

using keel_test::ask;
using keel_test::at;

keel::autoscaler_config total_metric(double target, bool backlog = false) {
  keel::autoscaler_config c;
  c.max_replicas = 100;
  c.scale_down.stabilization_window = 0s;
  c.metrics = {{.name = "in_flight", .target = target, .kind = keel::metric_kind::total, .backlog = backlog}};
  return c;
}

}  // namespace

TEST_CASE("panic: demand at 2× the ready replicas scales up at once, past the policies", "[scale][panic]") {
  auto c = total_metric(10);
  c.scale_up.policies = {keel::scaling_policy::pods(1, 15s)};  // HPA alone would crawl
  c.panic.enabled = true;
  scaler a{c};
  auto d = ask(a, 0s, 4, {60});  // demand 6 replicas: 1.5× the ready ones — calm
  CHECK_FALSE(d.panicking);
  CHECK(d.replicas == 5);
  CHECK(d.reason == scale_reason::scale_up_limit);

  d = ask(a, 15s, 5, {100});  // demand 10 = 2 × 5 ready: panic
  CHECK(d.panicking);
  CHECK(d.replicas == 10);
  CHECK(d.reason == scale_reason::panic);
}

TEST_CASE("panic: no scale-down while panicking; out after a stable window without the condition", "[scale][panic]") {
  auto c = total_metric(10);
  c.panic.enabled = true;
  scaler a{c};
  CHECK(ask(a, 0s, 5, {100}).panicking);  // enters at t = 0
  auto d = ask(a, 15s, 10, {20}, 5);      // demand 2, the new replicas still starting
  CHECK(d.panicking);
  CHECK(d.replicas == 10);  // HPA alone: ceil(2) = 2
  CHECK(d.reason == scale_reason::panic);
  d = ask(a, 59s, 10, {20});
  CHECK(d.panicking);
  CHECK(d.replicas == 10);
  d = ask(a, 60s, 10, {20});  // 60 s since the condition last held
  CHECK_FALSE(d.panicking);
  CHECK(d.replicas == 2);
  CHECK(d.reason == scale_reason::metrics);
}

TEST_CASE("panic: the condition renews the panic, and the peak is kept", "[scale][panic]") {
  auto c = total_metric(10);
  c.panic.enabled = true;
  scaler a{c};
  CHECK(ask(a, 0s, 5, {100}).replicas == 10);
  CHECK(ask(a, 30s, 10, {300}, 5).replicas == 30);  // 30 ≥ 2 × 5 ready: renewed at 30 s
  auto d = ask(a, 80s, 30, {50});                   // would be 5; 50 s since 30 s
  CHECK(d.panicking);
  CHECK(d.replicas == 30);
  d = ask(a, 90s, 30, {50});
  CHECK_FALSE(d.panicking);
  CHECK(d.replicas == 5);
}

TEST_CASE("panic: demand is averaged over the panic window (10% of the stable window)", "[scale][panic]") {
  auto c = total_metric(1);
  c.panic.enabled = true;  // 60 s stable → 6 s panic window; threshold 2 × 10 ready = 20
  scaler a{c};
  auto tick = [&](int second, double demand) { return ask(a, std::chrono::seconds(second), 10, {demand}).panicking; };
  for (int s = 0; s < 10; ++s) CHECK_FALSE(tick(s, 10));
  CHECK_FALSE(tick(10, 60));  // a one-second blip: (60 + 5 × 10) / 6 = 18.3
  CHECK_FALSE(tick(11, 10));
  for (int s = 20; s < 26; ++s) CHECK_FALSE(tick(s, 10));
  CHECK_FALSE(tick(26, 30));  // (30 + 50) / 6
  CHECK_FALSE(tick(27, 30));  // (60 + 40) / 6
  CHECK(tick(28, 30));        // (90 + 30) / 6 = 20: panic
}

TEST_CASE("scale to zero after the cooldown, wake on the activation threshold", "[scale][zero]") {
  auto c = total_metric(2);
  c.min_replicas = 0;
  c.max_replicas = 10;
  c.metrics[0].activation = 5;
  scaler a{c};
  auto d = ask(a, 0s, 1, {0});
  CHECK(d.replicas == 1);  // the HPA part never goes below one
  CHECK(d.reason == scale_reason::min_replicas);
  CHECK(ask(a, 299s, 1, {2}).replicas == 1);  // 2 ≤ activation: at target, not active; the cooldown runs
  d = ask(a, 300s, 1, {0});
  CHECK(d.replicas == 0);
  CHECK(d.reason == scale_reason::scale_to_zero);

  d = ask(a, 315s, 0, {5});  // at the threshold is not above it
  CHECK(d.replicas == 0);
  CHECK(d.reason == scale_reason::idle);
  d = ask(a, 330s, 0, {6});  // wakes straight to ceil(6 / 2) = 3
  CHECK(d.replicas == 3);
  CHECK(d.reason == scale_reason::activation);
  CHECK(d.metric == 0);

  // Activity restarts the cooldown: the last active reading was at 330 s.
  CHECK(ask(a, 629s, 3, {0}).replicas == 1);
  d = ask(a, 630s, 1, {0});
  CHECK(d.replicas == 0);
  CHECK(d.reason == scale_reason::scale_to_zero);
}

TEST_CASE("waking from zero goes at once to what the totals ask for, and always to one", "[scale][zero]") {
  auto c = total_metric(1);
  c.min_replicas = 0;
  c.scale_up.policies = {keel::scaling_policy::pods(1, 15s)};  // not for a wake-up
  scaler a{c};
  auto d = ask(a, 0s, 0, {40});
  CHECK(d.replicas == 40);
  CHECK(d.reason == scale_reason::activation);

  c.metrics = {{.name = "avg", .target = 1, .activation = 0.5}};  // an average: no replica, no data
  scaler average{c};
  d = ask(average, 0s, 0, {3});
  CHECK(d.replicas == 1);
  CHECK(d.reason == scale_reason::activation);
}

TEST_CASE("a missing reading never lets the fleet scale to zero", "[scale][zero][missing]") {
  auto c = total_metric(2);
  c.min_replicas = 0;
  scaler a{c};
  CHECK(ask(a, 0s, 1, {0}).replicas == 1);
  auto d = ask(a, 200s, 1, {std::nan("")});
  CHECK(d.replicas == 1);
  CHECK(d.reason == scale_reason::missing_metrics);
  CHECK(ask(a, 300s, 1, {0}).replicas == 1);  // unknown at 200 s counts as active
  CHECK(ask(a, 500s, 1, {0}).replicas == 0);
  CHECK(ask(a, 515s, 0, {std::nan("")}).replicas == 0);  // and does not wake it either
}

TEST_CASE("cold start: backlog growing while replicas start does not add more", "[scale][cold_start]") {
  auto c = total_metric(10, /*backlog=*/true);
  c.scale_up.policies = {keel::scaling_policy::pods(100, 15s)};
  c.cold_start.startup_delay = 120s;
  scaler a{c};
  CHECK(ask(a, 0s, 2, {20}).replicas == 2);
  auto d = ask(a, 15s, 2, {100});
  CHECK(d.replicas == 10);  // asks for 8 more, which take 120 s to load
  CHECK(d.reason == scale_reason::metrics);

  d = ask(a, 30s, 10, {160}, 2);  // the queue grows while they load
  CHECK(d.replicas == 10);
  CHECK(d.reason == scale_reason::cold_start);
  CHECK(ask(a, 134s, 10, {400}, 2).replicas == 10);
  CHECK(ask(a, 135s, 10, {420}).replicas == 10);  // ready now; the previous look was still in the startup

  // Past the startup what is left of the backlog counts in full again.
  d = ask(a, 150s, 10, {380});
  CHECK(d.replicas == 38);
  CHECK(d.reason == scale_reason::metrics);
}

TEST_CASE("cold start off (HPA): the same trace keeps adding replicas", "[scale][cold_start]") {
  auto c = total_metric(10, /*backlog=*/true);
  c.scale_up.policies = {keel::scaling_policy::pods(100, 15s)};
  scaler a{c};
  CHECK(ask(a, 0s, 2, {20}).replicas == 2);
  CHECK(ask(a, 15s, 2, {100}).replicas == 10);
  CHECK(ask(a, 30s, 10, {160}, 2).replicas == 16);
  CHECK(ask(a, 134s, 16, {400}, 2).replicas == 40);
}

TEST_CASE("cold start applies only to backlog metrics", "[scale][cold_start]") {
  auto c = total_metric(10, /*backlog=*/false);
  c.scale_up.policies = {keel::scaling_policy::pods(100, 15s)};
  c.cold_start.startup_delay = 120s;
  scaler a{c};
  CHECK(ask(a, 0s, 2, {100}).replicas == 10);
  CHECK(ask(a, 15s, 10, {160}, 2).replicas == 16);  // a rate or concurrency: real demand
}

TEST_CASE("a backlog next to other metrics adds the replicas that drain it", "[scale][backlog]") {
  keel::autoscaler_config c;
  c.max_replicas = 100;
  c.scale_up.policies = {keel::scaling_policy::pods(100, 15s)};
  c.metrics = {{.name = "arrival_rate", .target = 4, .kind = keel::metric_kind::total},
               {.name = "queue_depth", .target = 60, .kind = keel::metric_kind::total, .backlog = true}};
  scaler a{c};
  auto d = ask(a, 0s, 10, {40, 59});  // the rate asks for 10; 59 queued is less than one replica's share
  CHECK(d.replicas == 10);
  CHECK(d.reason == scale_reason::steady);
  d = ask(a, 15s, 10, {40, 250});  // 10 + floor(250 / 60) = 14 (HPA's max would say 10)
  CHECK(d.replicas == 14);
  CHECK(d.metric == 0);
  d = ask(a, 30s, 14, {80, 130});  // ceil(80 / 4) = 20, + 2
  CHECK(d.replicas == 22);
}

TEST_CASE("drain replicas are not held by the scale-down window; the rest of the fleet is", "[scale][backlog]") {
  keel::autoscaler_config c;  // HPA's 300 s scale-down window
  c.max_replicas = 100;
  c.scale_up.policies = {keel::scaling_policy::pods(100, 15s)};
  c.metrics = {{.name = "arrival_rate", .target = 4, .kind = keel::metric_kind::total},
               {.name = "queue_depth", .target = 60, .kind = keel::metric_kind::total, .backlog = true}};
  scaler a{c};
  auto d = ask(a, 0s, 10, {40, 600});  // 10 for the rate + 10 to drain 600
  CHECK(d.replicas == 20);
  d = ask(a, 15s, 20, {40, 0});  // drained: the 10 drain replicas go at once
  CHECK(d.replicas == 10);
  CHECK(d.reason == scale_reason::metrics);
  d = ask(a, 30s, 10, {40, 130});  // 10 + 2, on top of the stabilised rate part
  CHECK(d.replicas == 12);
  d = ask(a, 45s, 12, {80, 0});  // the rate doubles
  CHECK(d.replicas == 20);
  d = ask(a, 60s, 20, {40, 0});  // and falls: the window holds its 20, as HPA
  CHECK(d.replicas == 20);
  CHECK(d.reason == scale_reason::stabilized);
  // A backlog while the window holds a surplus: the 20 held replicas serve a
  // rate that needs 10, and that surplus drains the 3 replicas' worth of
  // backlog — nothing is added on top of it.
  d = ask(a, 75s, 20, {40, 190});
  CHECK(d.replicas == 20);
  CHECK(d.reason == scale_reason::stabilized);
  d = ask(a, 90s, 20, {40, 1500});  // a backlog beyond the surplus: 10 for the rate + 25 to drain
  CHECK(d.replicas == 35);
  d = ask(a, 346s, 35, {40, 0});  // 45 s + 300 s has passed and the backlog is gone: the rate's 10
  CHECK(d.replicas == 10);
}

TEST_CASE("cold start: a hold starts with replicas ordered for a backlog, and later scale-ups do not extend it",
          "[scale][cold_start]") {
  keel::autoscaler_config c;
  c.max_replicas = 100;
  c.scale_up.policies = {keel::scaling_policy::pods(100, 15s)};
  c.cold_start.startup_delay = 120s;
  c.metrics = {{.name = "arrival_rate", .target = 4, .kind = keel::metric_kind::total},
               {.name = "queue_depth", .target = 60, .kind = keel::metric_kind::total, .backlog = true}};
  scaler a{c};
  CHECK(ask(a, 0s, 10, {40, 0}).replicas == 10);
  CHECK(ask(a, 15s, 10, {80, 0}).replicas == 20);  // for the rate alone: no hold
  // The 10 loading were sized for the rate and have nothing spare for a
  // backlog, so 600 queued counts in full: 20 + 10. The hold begins here.
  auto d = ask(a, 30s, 20, {80, 600}, 10);
  CHECK(d.replicas == 30);
  CHECK(d.reason == scale_reason::metrics);
  d = ask(a, 45s, 30, {80, 900}, 10);  // the queue grows while they load: held at 600
  CHECK(d.replicas == 30);
  CHECK(d.reason == scale_reason::cold_start);
  CHECK(ask(a, 60s, 30, {120, 900}, 10).replicas == 40);  // the rate still drives scale-ups: 30 + 10
  CHECK(ask(a, 150s, 40, {120, 900}).replicas == 40);     // the previous look (60 s) was in the hold
  d = ask(a, 165s, 40, {120, 900});                       // 150 s = 30 s + 120 s: over, despite the 60 s scale-up
  CHECK(d.replicas == 45);                                // 30 + floor(900 / 60)
  CHECK(d.reason == scale_reason::metrics);
}
