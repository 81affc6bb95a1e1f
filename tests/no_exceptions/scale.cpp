// The autoscaler without exceptions: decisions are values, bad readings are
// missing data, and a valid configuration constructs (an invalid one would
// print its message and abort).
#include "check.hpp"

#include <keel/core/clock.hpp>
#include <keel/scale/autoscaler.hpp>
#include <keel/scale/metric_source.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <deque>

using keel_noexcept::check;
using namespace std::chrono_literals;

KEEL_NOEXCEPT_TEST("scale: autoscaler decisions and feeders") {
  keel::autoscaler_config cfg;
  cfg.max_replicas = 10;
  cfg.metrics = {{.name = "queue_depth", .target = 2, .kind = keel::metric_kind::total}};
  keel::autoscaler<keel::manual_clock> scaler{cfg};
  const std::deque<int> queue(12, 0);
  std::array<keel::metric_sample, 1> readings{keel::queue_depth(queue)};
  auto d = scaler.recommend(keel::manual_clock::time_point(0s), {.current = 2, .ready = 2, .metrics = readings});
  check(d.replicas == 6 && d.reason == keel::scale_reason::metrics, "12 queued at 2 per replica: 6");
  readings[0] = keel::metric_sample(std::nan(""));
  d = scaler.recommend(keel::manual_clock::time_point(15s), {.current = 6, .ready = 6, .metrics = readings});
  check(d.replicas == 6 && d.reason == keel::scale_reason::missing_metrics, "a NaN reading holds the count");
  cfg.collapse.enabled = true;  // 8 → 2 (a collapse) is released after 60 s, not HPA's 300 s
  keel::autoscaler<keel::manual_clock> collapsing{cfg};
  readings[0] = keel::metric_sample(16);
  (void)collapsing.recommend(keel::manual_clock::time_point(0s), {.current = 8, .metrics = readings});
  readings[0] = keel::metric_sample(4);
  d = collapsing.recommend(keel::manual_clock::time_point(59s), {.current = 8, .metrics = readings});
  check(d.replicas == 8, "collapse: held within the short window");
  d = collapsing.recommend(keel::manual_clock::time_point(60s), {.current = 8, .metrics = readings});
  check(d.replicas == 2, "collapse: released after it");
  keel::autoscaler_config staffed;  // square-root headroom: a load of 4 at β = 1 asks for 4 + 2
  staffed.max_replicas = 10;
  staffed.metrics = {{.name = "arrival_rate", .target = 4, .kind = keel::metric_kind::total, .headroom = 1}};
  keel::autoscaler<keel::manual_clock> headroom{staffed};
  readings[0] = keel::metric_sample(16);
  d = headroom.recommend(keel::manual_clock::time_point(0s), {.current = 2, .metrics = readings});
  check(d.replicas == 6, "headroom: R + sqrt(R) replicas");
  keel::rate_meter<keel::manual_clock> rate;
  (void)rate.sample(keel::manual_clock::time_point(0s), 0);
  check(rate.sample(keel::manual_clock::time_point(2s), 10).value == 5, "rate_meter: 10 events in 2 s");
}
