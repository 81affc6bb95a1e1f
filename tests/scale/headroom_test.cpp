// Square-root staffing (metric_spec::headroom) to exact numbers: R + β·√R
// replicas for a load of R, the tolerance judged on that, backlog drain
// replicas on top, and the settings it refuses.
#include <keel/core/clock.hpp>
#include <keel/scale/autoscaler.hpp>

#include "ask.hpp"

#include <catch.hpp>

#include <chrono>
#include <cmath>
#include <limits>
#include <vector>

using namespace std::chrono_literals;
using scaler = keel::autoscaler<keel::manual_clock>;
using keel::scale_reason;

namespace {

using keel_test::ask;

// A rate at full throughput (4 per replica) with headroom β.
keel::autoscaler_config staffed(double beta) {
  keel::autoscaler_config c;
  c.max_replicas = 200;
  c.scale_down.stabilization_window = 0s;
  c.metrics = {{.name = "arrival_rate", .target = 4, .kind = keel::metric_kind::total, .headroom = beta}};
  return c;
}

}  // namespace

TEST_CASE("headroom: R + β√R replicas, a larger share spare in a small fleet than in a large one",
          "[scale][headroom]") {
  scaler a{staffed(1)};
  auto d = ask(a, 0s, 10, {16});  // R = 4: 4 + 2 = 6 (50% spare)
  CHECK(d.replicas == 6);
  CHECK(d.recommended == 6);
  CHECK(d.usage_ratio == 0.6);  // 6 of the 10 there
  CHECK(d.reason == scale_reason::metrics);

  d = ask(a, 15s, 60, {400});  // R = 100: 100 + 10 = 110 (10% spare)
  CHECK(d.replicas == 110);
  CHECK(d.usage_ratio == 110.0 / 60);

  scaler b{staffed(0.85)};
  CHECK(ask(b, 0s, 10, {9}).replicas == 4);  // R = 2.25: 2.25 + 0.85 × 1.5 = 3.525 → 4
}

TEST_CASE("headroom: the tolerance band is judged on the staffed count", "[scale][headroom]") {
  scaler a{staffed(1)};
  auto d = ask(a, 0s, 100, {400});  // 110 for 100 there: 1.1, inside HPA's ±10%
  CHECK(d.replicas == 100);
  CHECK(d.reason == scale_reason::steady);
  d = ask(a, 15s, 6, {16});  // exactly the 6 asked for
  CHECK(d.replicas == 6);
  CHECK(d.reason == scale_reason::steady);
  d = ask(a, 30s, 6, {12});  // R = 3: 3 + √3 = 4.73, 0.79 of 6: scale down to 5
  CHECK(d.replicas == 5);
}

TEST_CASE("headroom: 0 is plain HPA, and no load asks for nothing", "[scale][headroom]") {
  scaler plain{staffed(0)};
  CHECK(ask(plain, 0s, 10, {16}).replicas == 4);
  scaler a{staffed(1)};
  const auto d = ask(a, 0s, 10, {0});
  CHECK(d.recommended == 0);
  CHECK(d.replicas == 1);  // min_replicas
}

TEST_CASE("headroom: a backlog's drain replicas come on top of the staffed rate", "[scale][headroom][backlog]") {
  auto c = staffed(1);
  c.metrics.push_back({.name = "queue_depth", .target = 20, .kind = keel::metric_kind::total, .backlog = true});
  scaler a{c};
  const auto d = ask(a, 0s, 10, {16, 60});  // 6 for the rate + 3 to drain 60 at 20 each
  CHECK(d.replicas == 9);
  CHECK(d.recommended == 9);
}

TEST_CASE("headroom: invalid settings are rejected", "[scale][headroom][config]") {
  for (double beta : {-0.5, std::nan(""), std::numeric_limits<double>::infinity()}) {
    CHECK_THROWS_WITH(scaler(staffed(beta)), "keel::autoscaler: metrics[].headroom must be finite and not negative");
  }
  auto average = staffed(1);
  average.metrics[0].kind = keel::metric_kind::average;
  CHECK_THROWS_WITH(
      scaler(average),
      "keel::autoscaler: metrics[].headroom must be 0 unless the metric is a total that is not a backlog");
  auto backlog = staffed(1);
  backlog.metrics[0].backlog = true;
  CHECK_THROWS_WITH(
      scaler(backlog),
      "keel::autoscaler: metrics[].headroom must be 0 unless the metric is a total that is not a backlog");
}
