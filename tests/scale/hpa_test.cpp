// The HPA half of keel::autoscaler, to exact numbers: the formula, the
// tolerance band, the max over metrics, missing and not-ready replicas, the
// stabilisation windows, each scaling policy and selectPolicy, min/max. The
// expected values are worked by hand from the Kubernetes documentation
// ("Horizontal Pod Autoscaling": algorithm details, scaling policies) and
// from replica_calculator.go / horizontal.go.
#include <keel/core/clock.hpp>
#include <keel/scale/autoscaler.hpp>

#include "ask.hpp"

#include <catch.hpp>

#include <chrono>
#include <cmath>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using scaler = keel::autoscaler<keel::manual_clock>;
using keel::scale_reason;

namespace {

using keel_test::ask;
using keel_test::at;

// One per-replica-average metric ("Pods" metric in HPA terms).
keel::autoscaler_config average_metric(double target, std::int32_t max_replicas = 100) {
  keel::autoscaler_config c;
  c.max_replicas = max_replicas;
  c.metrics = {{.name = "in_flight", .target = target}};
  return c;
}

keel::autoscaler_config immediate(keel::autoscaler_config c) {
  c.scale_down.stabilization_window = 0s;
  return c;
}

}  // namespace

TEST_CASE("HPA docs: 200m against 100m doubles, 50m against 100m halves", "[scale][hpa]") {
  scaler a{immediate(average_metric(100))};
  auto d = ask(a, 0s, 4, {200});
  CHECK(d.replicas == 8);
  CHECK(d.recommended == 8);
  CHECK(d.reason == scale_reason::metrics);
  CHECK(d.usage_ratio == 2.0);
  CHECK(d.metric == 0);

  d = ask(a, 15s, 8, {50});
  CHECK(d.replicas == 4);
  CHECK(d.reason == scale_reason::metrics);
}

TEST_CASE("the formula rounds up: ceil(current × value / target)", "[scale][hpa]") {
  scaler a{immediate(average_metric(0.5))};
  CHECK(ask(a, 0s, 3, {0.9}).replicas == 6);     // 3 × 1.8 = 5.4
  CHECK(ask(a, 15s, 6, {0.26}).replicas == 4);   // 6 × 0.52 = 3.12
  CHECK(ask(a, 30s, 4, {0.125}).replicas == 1);  // 4 × 0.25 = 1
}

TEST_CASE("HPA walkthrough: 305% CPU against a 50% target from one replica", "[scale][hpa]") {
  // kubectl's php-apache walkthrough: 1 × 305 / 50 = 6.1 → 7 replicas. The
  // default scale-up policy (max of +100% and +4 pods per 15 s) gets there
  // in two steps: 1 → 5, then 5 → 7.
  keel::autoscaler_config c;
  c.max_replicas = 10;
  c.metrics = {{.name = "cpu", .target = 0.5, .utilisation = true}};
  scaler a{c};
  auto d = ask(a, 0s, 1, {3.05});
  CHECK(d.recommended == 7);
  CHECK(d.replicas == 5);
  CHECK(d.reason == scale_reason::scale_up_limit);
  // The new replicas are not ready yet and report nothing: HPA counts them
  // at 0% on a scale-up, so the average of the old one alone is not trusted.
  d = ask(a, 15s, 5, {3.05}, 1);
  CHECK(d.recommended == 7);  // ceil(3.05 / 0.5) over 5 replicas: 6.1 → 7
  CHECK(d.replicas == 7);
  CHECK(d.reason == scale_reason::metrics);
}

TEST_CASE("the tolerance band: no change within ±10%, inclusive", "[scale][hpa][tolerance]") {
  scaler a{immediate(average_metric(100))};
  auto d = ask(a, 0s, 4, {110});
  CHECK(d.replicas == 4);
  CHECK(d.reason == scale_reason::steady);
  CHECK(ask(a, 15s, 4, {90}).replicas == 4);
  CHECK(ask(a, 30s, 4, {111}).replicas == 5);  // 4.44 → 5
  CHECK(ask(a, 45s, 5, {89}).replicas == 5);   // 4.45 → 5: outside the band, same count
  CHECK(ask(a, 60s, 5, {79}).replicas == 4);   // 3.95 → 4
}

TEST_CASE("the tolerance is per direction", "[scale][hpa][tolerance]") {
  auto c = immediate(average_metric(100));
  c.scale_up.tolerance = 0.05;
  c.scale_down.tolerance = 0.2;
  scaler a{c};
  CHECK(ask(a, 0s, 10, {106}).replicas == 11);  // 1.06 > 1.05
  CHECK(ask(a, 15s, 11, {81}).replicas == 11);  // 0.81 ≥ 0.8: within
  CHECK(ask(a, 30s, 11, {79}).replicas == 9);   // 8.69 → 9
}

TEST_CASE("several metrics: the largest recommendation wins and is named", "[scale][hpa]") {
  keel::autoscaler_config c;
  c.max_replicas = 50;
  c.scale_down.stabilization_window = 0s;
  c.metrics = {{.name = "queue_depth", .target = 10, .kind = keel::metric_kind::total},
               {.name = "in_flight", .target = 4},
               {.name = "kv_cache", .target = 0.8, .utilisation = true}};
  scaler a{c};
  auto d = ask(a, 0s, 4, {30, 6, 0.4});  // 3, ceil(4 × 1.5) = 6, ceil(4 × 0.5) = 2
  CHECK(d.replicas == 6);
  CHECK(d.metric == 1);
  CHECK(d.usage_ratio == 1.5);
  d = ask(a, 15s, 6, {90, 4, 0.9});  // 9, within tolerance → 6, ceil(6 × 1.125) = 7
  CHECK(d.replicas == 9);
  CHECK(d.metric == 0);
  CHECK(d.usage_ratio == Approx(90.0 / 60.0));
}

TEST_CASE("a fleet total: desired = ceil(total / per-replica target), tolerance per current replica", "[scale][hpa]") {
  keel::autoscaler_config c;
  c.max_replicas = 100;
  c.scale_down.stabilization_window = 0s;
  c.metrics = {{.name = "queue_depth", .target = 10, .kind = keel::metric_kind::total}};
  scaler a{c};
  CHECK(ask(a, 0s, 5, {54}).replicas == 5);     // 54 / 50 = 1.08: within
  CHECK(ask(a, 15s, 5, {56}).replicas == 6);    // 1.12 → ceil(5.6) = 6
  CHECK(ask(a, 30s, 6, {110}).replicas == 11);  // 110 / 60 = 1.83 → ceil(11)
  auto d = ask(a, 45s, 11, {0});
  CHECK(d.replicas == 1);  // never below min_replicas (1)
  CHECK(d.reason == scale_reason::min_replicas);
}

TEST_CASE("missing readings: 100% of target on a scale-down", "[scale][hpa][missing]") {
  scaler a{immediate(average_metric(10))};
  // 4 ready, 3 reported an average of 5: the fourth is assumed at target.
  // (15 + 10) / 40 = 0.625 → ceil(2.5) = 3, not the 2 the reports alone give.
  auto d = ask(a, 0s, 4, {keel::metric_sample(5, 3)});
  CHECK(d.replicas == 3);
  CHECK(d.usage_ratio == 0.5);
}

TEST_CASE("missing readings of a utilisation: 100% of capacity on a scale-down", "[scale][hpa][missing]") {
  keel::autoscaler_config c = immediate(average_metric(0.5));
  c.metrics[0].utilisation = true;
  scaler util{c};
  scaler plain{immediate(average_metric(0.5))};
  // 2 of 4 ready replicas report 20%. As a utilisation the missing two count
  // at 100%: (0.4 + 2) / 2 = 1.2 > 1 turns a scale-down into a scale-up, so
  // nothing changes. As a plain metric they count at target: 1.4 / 2 = 0.7 → 3.
  CHECK(ask(util, 0s, 4, {keel::metric_sample(0.2, 2)}).replicas == 4);
  CHECK(ask(plain, 0s, 4, {keel::metric_sample(0.2, 2)}).replicas == 3);
}

TEST_CASE("missing readings: 0 on a scale-up, and a reversal is dropped", "[scale][hpa][missing]") {
  scaler a{immediate(average_metric(10))};
  // 3 of 4 report 30: (90 + 0) / 40 = 2.25 → 9 (and +100% allows 8).
  auto up = ask(a, 0s, 4, {keel::metric_sample(30, 3)});
  CHECK(up.recommended == 9);
  CHECK(up.replicas == 8);
  CHECK(up.reason == scale_reason::scale_up_limit);
  // 1 of 4 reports 11.5 (ratio 1.15, a scale-up); with three zeros the
  // ratio becomes 0.29, a scale-down: HPA never scales against the data.
  auto d = ask(a, 15s, 4, {keel::metric_sample(11.5, 1)});
  CHECK(d.replicas == 4);
  CHECK(d.recommended == 4);
}

TEST_CASE("not-ready replicas count as 0 on a scale-up and are ignored on a scale-down", "[scale][hpa][ready]") {
  scaler a{immediate(average_metric(10))};
  // 5 replicas, 4 ready at 13 (ratio 1.3): with the starting one at 0 the
  // ratio is 52 / 50 = 1.04, within tolerance → no change (not ceil(5.2)).
  auto d = ask(a, 0s, 5, {13}, 4);
  CHECK(d.replicas == 5);
  CHECK(d.reason == scale_reason::steady);
  // 4 ready at 20: 80 / 50 = 1.6 → 8.
  CHECK(ask(a, 15s, 5, {20}, 4).replicas == 8);
  // Scale-down: the 3 ready at 5 decide alone: ceil(3 × 0.5) = 2.
  CHECK(ask(a, 30s, 8, {5}, 3).replicas == 2);
}

TEST_CASE("no ready replica with a reading: the metric is missing", "[scale][hpa][missing]") {
  scaler a{immediate(average_metric(10))};
  auto d = ask(a, 0s, 3, {50}, 0);
  CHECK(d.replicas == 3);
  CHECK(d.reason == scale_reason::missing_metrics);
}

TEST_CASE("a missing metric blocks scale-down but not scale-up", "[scale][hpa][missing]") {
  keel::autoscaler_config c;
  c.max_replicas = 50;
  c.scale_down.stabilization_window = 0s;
  c.metrics = {{.name = "a", .target = 10}, {.name = "b", .target = 10}};
  scaler a{c};
  const double nan = std::nan("");
  auto d = ask(a, 0s, 8, {5, nan});  // a says 4, b unknown
  CHECK(d.replicas == 8);
  CHECK(d.reason == scale_reason::missing_metrics);
  d = ask(a, 15s, 8, {20, nan});  // a says 16
  CHECK(d.replicas == 16);
  d = ask(a, 30s, 16, {nan, -1});  // nothing usable
  CHECK(d.replicas == 16);
  CHECK(d.reason == scale_reason::missing_metrics);
  d = ask(a, 45s, 16, {5});  // fewer readings than metrics: the rest are missing
  CHECK(d.replicas == 16);
  CHECK(d.reason == scale_reason::missing_metrics);
}

TEST_CASE("scale-down stabilisation: the highest recommendation of the last 300 s", "[scale][hpa][stabilisation]") {
  scaler a{average_metric(10)};  // HPA defaults
  // A fresh autoscaler remembers the current count as its first
  // recommendation, so it cannot scale down before a window has passed.
  auto d = ask(a, 0s, 10, {5});
  CHECK(d.recommended == 5);
  CHECK(d.replicas == 10);
  CHECK(d.reason == scale_reason::stabilized);
  CHECK(ask(a, 60s, 10, {8}).replicas == 10);   // recommends 8
  CHECK(ask(a, 120s, 10, {4}).replicas == 10);  // recommends 4
  CHECK(ask(a, 299s, 10, {4}).replicas == 10);
  // At 300 s the seed (t = 0) leaves the window (HPA keeps only samples
  // strictly after now − window); the highest left is 8 (t = 60).
  d = ask(a, 300s, 10, {4});
  CHECK(d.replicas == 8);
  CHECK(d.reason == scale_reason::stabilized);
  CHECK(ask(a, 359s, 8, {3}).replicas == 8);  // ceil(8 × 0.3) = 3, but 8 (t = 60) is still in the window
  d = ask(a, 360s, 8, {3});                   // t = 60 has left: the highest is 4 (t = 120 ... 300)
  CHECK(d.replicas == 4);
}

TEST_CASE("scale-up stabilisation: the lowest recommendation of the window", "[scale][hpa][stabilisation]") {
  auto c = immediate(average_metric(10));
  c.scale_up.stabilization_window = 60s;
  scaler a{c};
  CHECK(ask(a, 0s, 4, {10}).replicas == 4);   // seeds 4, recommends 4
  CHECK(ask(a, 15s, 4, {20}).replicas == 4);  // recommends 8; lowest in window 4
  CHECK(ask(a, 30s, 4, {30}).replicas == 4);  // recommends 12
  // At 60 s the two t = 0 samples leave the window: the lowest left is 8.
  CHECK(ask(a, 60s, 4, {30}).replicas == 8);
}

TEST_CASE("default scale-up policy: the larger of +100% and +4 pods per 15 s", "[scale][hpa][policy]") {
  scaler a{average_metric(1, 1000)};
  auto d = ask(a, 0s, 1, {100});
  CHECK(d.replicas == 5);  // max(2, 5)
  CHECK(d.reason == scale_reason::scale_up_limit);
  d = ask(a, 15s, 5, {100});
  CHECK(d.replicas == 10);  // max(10, 9)
  d = ask(a, 30s, 10, {100});
  CHECK(d.replicas == 20);
  // Within a period the events already spent count: 14 s later the period
  // started at 10, so the limit is still 20.
  d = ask(a, 44s, 20, {100});
  CHECK(d.replicas == 20);
  CHECK(d.reason == scale_reason::scale_up_limit);
  d = ask(a, 45s, 20, {100});
  CHECK(d.replicas == 40);
}

TEST_CASE("selectPolicy Min picks the smallest change", "[scale][hpa][policy]") {
  auto c = average_metric(1, 1000);
  c.scale_up.select = keel::select_policy::min;
  scaler a{c};
  CHECK(ask(a, 0s, 10, {100}).replicas == 14);   // min(20, 14)
  CHECK(ask(a, 15s, 14, {100}).replicas == 18);  // min(28, 18)
}

TEST_CASE("a Pods policy counts every scale event of its period", "[scale][hpa][policy]") {
  auto c = average_metric(1);
  c.scale_up.policies = {keel::scaling_policy::pods(1, 60s)};
  scaler a{c};
  CHECK(ask(a, 0s, 4, {100}).replicas == 5);
  CHECK(ask(a, 15s, 5, {100}).replicas == 5);  // the period started at 4
  CHECK(ask(a, 59s, 5, {100}).replicas == 5);
  CHECK(ask(a, 60s, 5, {100}).replicas == 6);
}

TEST_CASE("HPA docs: Pods 4 and Percent 10 per minute scale 80 down by 8, then 8 again", "[scale][hpa][policy]") {
  auto c = average_metric(10);
  c.scale_down.stabilization_window = 0s;
  c.scale_down.policies = {keel::scaling_policy::pods(4, 60s), keel::scaling_policy::percent(10, 60s)};
  scaler a{c};
  auto d = ask(a, 0s, 80, {1.25});  // wants 10
  CHECK(d.replicas == 72);
  CHECK(d.reason == scale_reason::scale_down_limit);
  CHECK(ask(a, 30s, 72, {1.25}).replicas == 72);  // the period started at 80
  CHECK(ask(a, 60s, 72, {1.25}).replicas == 64);  // int(72 × 0.9) = 64
  // At 40 and below the Pods policy allows more: 30 − 4 = 26 vs int(27).
  scaler small{c};
  CHECK(ask(small, 0s, 30, {1}).replicas == 26);
}

TEST_CASE("selectPolicy Min on scale-down, and Disabled", "[scale][hpa][policy]") {
  auto c = average_metric(10);
  c.scale_down.stabilization_window = 0s;
  c.scale_down.policies = {keel::scaling_policy::pods(4, 60s), keel::scaling_policy::percent(10, 60s)};
  c.scale_down.select = keel::select_policy::min;
  scaler a{c};
  CHECK(ask(a, 0s, 80, {1.25}).replicas == 76);  // the smaller change: −4

  c.scale_down.select = keel::select_policy::disabled;
  scaler off{c};
  auto d = ask(off, 0s, 80, {1.25});
  CHECK(d.replicas == 80);
  CHECK(d.reason == scale_reason::scaling_disabled);
  d = ask(off, 15s, 80, {100});  // scaling up still works: +100% → 160, capped at max_replicas
  CHECK(d.replicas == 100);
  CHECK(d.reason == scale_reason::max_replicas);
}

TEST_CASE("min and max replicas bound the result and correct an out-of-range count", "[scale][hpa][bounds]") {
  auto c = immediate(average_metric(10, 12));
  c.min_replicas = 3;
  scaler a{c};
  auto d = ask(a, 0s, 10, {100});
  CHECK(d.replicas == 12);
  CHECK(d.reason == scale_reason::max_replicas);
  d = ask(a, 15s, 12, {0.5});
  CHECK(d.replicas == 3);
  CHECK(d.reason == scale_reason::min_replicas);
  d = ask(a, 30s, 20, {10});  // above max, whatever the metrics say
  CHECK(d.replicas == 12);
  CHECK(d.reason == scale_reason::max_replicas);
  d = ask(a, 45s, 2, {10});
  CHECK(d.replicas == 3);
  CHECK(d.reason == scale_reason::min_replicas);
  // Zero replicas with min_replicas ≥ 1 (HPA would treat 0 as "disabled";
  // keel restores the minimum).
  d = ask(a, 60s, 0, {10});
  CHECK(d.replicas == 3);
  CHECK(d.reason == scale_reason::min_replicas);
}
