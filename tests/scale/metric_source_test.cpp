// Feeding the autoscaler from the objects a service already has: anything
// queue-like, balancer-like or callable becomes a metric_sample.
#include <keel/core/clock.hpp>
#include <keel/scale/metric_source.hpp>

#include <catch.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>

using namespace std::chrono_literals;

namespace {
struct approx_queue {  // both: approx_size() is preferred
  std::size_t approx_size() const { return 7; }
  std::size_t size() const { return 1000; }
};
struct counting_balancer {
  std::int64_t outstanding() const { return 12; }
};
struct stats_balancer {  // keel::balancer's shape: stats().outstanding
  struct snapshot {
    std::int64_t outstanding = 0;
  };
  snapshot stats() const { return {5}; }
};
struct not_a_queue {};
}  // namespace

static_assert(keel::depth_source<std::deque<int>>);
static_assert(keel::depth_source<approx_queue>);
static_assert(!keel::depth_source<not_a_queue>);
static_assert(keel::outstanding_source<counting_balancer>);
static_assert(keel::outstanding_source<stats_balancer>);
static_assert(!keel::outstanding_source<approx_queue>);
static_assert(keel::gauge_source<double (*)()>);

TEST_CASE("queue_depth reads approx_size() or size()", "[scale][feed]") {
  const std::deque<int> q{1, 2, 3};
  CHECK(keel::queue_depth(q).value == 3);
  CHECK(keel::queue_depth(q).reporting == -1);
  CHECK(keel::queue_depth(approx_queue{}).value == 7);
}

TEST_CASE("in_flight reads outstanding() or stats().outstanding", "[scale][feed]") {
  CHECK(keel::in_flight(counting_balancer{}).value == 12);
  CHECK(keel::in_flight(stats_balancer{}).value == 5);
}

TEST_CASE("gauge reads any callable returning a number", "[scale][feed]") {
  int calls = 0;
  CHECK(keel::gauge([&] { return ++calls * 0.5; }).value == 0.5);
  CHECK(calls == 1);
  CHECK(std::isnan(keel::gauge([] { return std::nan(""); }).value));
}

TEST_CASE("rate_meter: events per second between samples", "[scale][feed]") {
  using tp = keel::manual_clock::time_point;
  keel::rate_meter<keel::manual_clock> m;
  CHECK(std::isnan(m.sample(tp(0s), 100).value));  // no interval yet
  CHECK(m.sample(tp(15s), 400).value == 20);
  CHECK(m.sample(tp(30s), 400).value == 0);
  CHECK(std::isnan(m.sample(tp(30s), 500).value));  // no time passed: keep the baseline
  CHECK(std::isnan(m.sample(tp(20s), 500).value));  // time went back: same
  CHECK(m.sample(tp(40s), 600).value == 20);        // 200 since 30 s
  CHECK(std::isnan(m.sample(tp(50s), 10).value));   // counter restarted
  CHECK(m.sample(tp(60s), 110).value == 10);
}

TEST_CASE("feeders drive an autoscaler end to end", "[scale][feed]") {
  keel::autoscaler_config c;
  c.max_replicas = 20;
  c.metrics = {{.name = "queue_depth", .target = 2, .kind = keel::metric_kind::total},
               {.name = "in_flight", .target = 4, .kind = keel::metric_kind::total}};
  keel::autoscaler<keel::manual_clock> a{c};
  std::deque<int> q(10, 0);
  const std::array<keel::metric_sample, 2> readings{keel::queue_depth(q), keel::in_flight(counting_balancer{})};
  const auto d = a.recommend(keel::manual_clock::time_point(0s), {.current = 2, .ready = 2, .metrics = readings});
  CHECK(d.recommended == 5);  // max(10 / 2, 12 / 4)
  CHECK(d.metric == 0);
  CHECK(d.replicas == 5);  // within the default scale-up limit, max(2 × 2, 2 + 4)
}
