// The balancer itself: node-set changes, leases, health (ejection, panic,
// slow start), no_backend, bad configuration, the clock's edge cases, the
// pipeline terminal, and a model-based test against a reference on random
// operation sequences.
#include <keel/balance/balanced.hpp>
#include <keel/balance/balancer.hpp>
#include <keel/balance/least_request.hpp>
#include <keel/balance/peak_ewma.hpp>
#include <keel/balance/round_robin.hpp>
#include <keel/core/pipeline.hpp>

#include <catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct node {
  std::string name;
};

template <class Strategy, class Health = keel::outlier_detector>
using manual_balancer = keel::balancer<node, Strategy, Health, keel::manual_clock>;

template <class Balancer>
keel::node_info info_of(const Balancer& lb, keel::node_id id) {
  keel::node_info found;
  lb.for_each_node([&](const node&, const keel::node_info& i) {
    if (i.id == id) found = i;
  });
  return found;
}

}  // namespace

TEST_CASE("an empty balancer has no backend", "[balance][balancer]") {
  keel::balancer<node, keel::p2c_least_request> lb;
  auto l = lb.pick();
  REQUIRE_FALSE(l);
  CHECK(l.error().code == keel::errc::no_backend);
  CHECK(std::string(l.error().reason) == "no nodes");
}

TEST_CASE("a lease counts one outstanding call until recorded or dropped", "[balance][lease]") {
  keel::balancer<node, keel::round_robin> lb;
  const auto a = lb.add({"a"});
  {
    auto l = lb.pick();
    REQUIRE(l);
    CHECK(l->active());
    CHECK(l->id() == a);
    CHECK(lb.outstanding(a) == 1);
    auto moved = std::move(*l);
    CHECK_FALSE(l->active());  // NOLINT(bugprone-use-after-move): moved-from is specified
    CHECK(lb.outstanding(a) == 1);
    moved.success();
    moved.failure();  // a second record is ignored
    CHECK_FALSE(moved.active());
    CHECK(lb.outstanding(a) == 0);
  }
  { auto dropped = lb.pick(); }
  CHECK(lb.outstanding(a) == 0);
  auto x = lb.pick();
  auto y = lb.pick();
  CHECK(lb.outstanding(a) == 2);
  *x = std::move(*y);  // x's own call is released, y's moves in
  CHECK(lb.outstanding(a) == 1);
}

TEST_CASE("a dropped lease records no latency sample and no outcome", "[balance][lease]") {
  keel::manual_clock clock;
  manual_balancer<keel::peak_ewma> lb({}, {}, {}, clock);
  lb.add({"a"});
  lb.add({"b"});
  keel::node_id dropped_on{}, recorded_on{};
  {
    auto first = lb.pick();
    auto second = lb.pick();  // the other node: the first now has a call in flight
    REQUIRE(first->id() != second->id());
    dropped_on = first->id();
    recorded_on = second->id();
    clock.advance(500ms);
    second->success();  // a 500 ms sample on one node; the other lease is dropped
  }
  // Had the drop recorded 500 ms too, the two nodes would tie. It did not:
  // the dropped node has no sample and costs 0 while idle, so it wins.
  for (int i = 0; i < 5; ++i) CHECK(lb.pick()->id() == dropped_on);
  CHECK(lb.outstanding(recorded_on) == 0);
  CHECK(lb.outstanding(dropped_on) == 0);

  // Nor does a drop count for health: failure, drop, failure is two in a row.
  keel::outlier_detector::config h;
  h.consecutive_failures = 2;
  manual_balancer<keel::round_robin> one({}, {}, h, clock);
  one.add({"x"});
  one.pick()->failure();
  { auto dropped = one.pick(); }
  one.pick()->failure();
  CHECK(one.stats().ejected == 1);
}

TEST_CASE("remove and drain stop new picks; leases on the node still record", "[balance][balancer]") {
  keel::balancer<node, keel::round_robin> lb;
  const auto a = lb.add({"a"});
  const auto b = lb.add({"b"});
  auto on_a = lb.pick();
  REQUIRE(on_a->id() == a);
  CHECK(lb.drain(a));
  for (int i = 0; i < 5; ++i) CHECK(lb.pick()->id() == b);
  auto st = lb.stats();
  CHECK(st.nodes == 1);
  CHECK(st.draining == 1);
  CHECK(lb.outstanding(a) == 1);
  CHECK(lb.remove(a));
  CHECK(lb.outstanding(a) == 0);    // unknown now
  CHECK(on_a->node().name == "a");  // still valid after remove
  on_a->success();
  CHECK_FALSE(lb.remove(a));
  CHECK_FALSE(lb.drain(a));
  CHECK_FALSE(lb.set_weight(a, 2));
  CHECK(lb.remove(b));
  auto none = lb.pick();
  REQUIRE_FALSE(none);
  CHECK(none.error().code == keel::errc::no_backend);

  keel::balancer<node, keel::round_robin> drained;
  const auto only = drained.add({"only"});
  drained.drain(only);
  auto r = drained.pick();
  REQUIRE_FALSE(r);
  CHECK(std::string(r.error().reason) == "every node is draining");
}

TEST_CASE("bad weights and settings are rejected with the field's name", "[balance][config]") {
  keel::balancer<node, keel::round_robin> lb;
  const auto a = lb.add({"a"});
  const char* msg = "keel::balancer: weight must be positive and finite";
  CHECK_THROWS_WITH(lb.add({"zero"}, 0.0), msg);
  CHECK_THROWS_WITH(lb.add({"negative"}, -1.0), msg);
  CHECK_THROWS_WITH(lb.add({"nan"}, std::nan("")), msg);
  CHECK_THROWS_WITH(lb.add({"inf"}, std::numeric_limits<double>::infinity()), msg);
  CHECK_THROWS_WITH(lb.set_weight(a, 0.0), msg);
  CHECK(lb.stats().nodes == 1);  // nothing half-added

  keel::balancer_config c;
  c.slow_start_window = -1s;
  CHECK_THROWS_WITH((keel::balancer<node, keel::round_robin>(c)),
                    "keel::balancer: slow_start_window must not be negative");
  c = {};
  c.slow_start_aggression = 0;
  CHECK_THROWS_WITH((keel::balancer<node, keel::round_robin>(c)),
                    "keel::balancer: slow_start_aggression must be positive and finite");
  c = {};
  c.slow_start_min_weight_percent = 0;
  CHECK_THROWS_WITH((keel::balancer<node, keel::round_robin>(c)),
                    "keel::balancer: slow_start_min_weight_percent must be in (0, 100]");
  c = {};
  c.panic_threshold_percent = 101;
  CHECK_THROWS_WITH((keel::balancer<node, keel::round_robin>(c)),
                    "keel::balancer: panic_threshold_percent must be in [0, 100]");
  c = {};
  c.max_ejection_percent = std::nan("");
  CHECK_THROWS_WITH((keel::balancer<node, keel::round_robin>(c)),
                    "keel::balancer: max_ejection_percent must be in [0, 100]");

  keel::outlier_detector::config h;
  h.consecutive_failures = 0;
  CHECK_THROWS_WITH((keel::balancer<node, keel::round_robin>({}, {}, h)),
                    "keel::outlier_detector: consecutive_failures must be at least 1");
  h = {};
  h.base_ejection_time = 0s;
  CHECK_THROWS_WITH((keel::balancer<node, keel::round_robin>({}, {}, h)),
                    "keel::outlier_detector: base_ejection_time must be positive");
  h = {};
  h.max_ejection_time = 1s;
  CHECK_THROWS_WITH((keel::balancer<node, keel::round_robin>({}, {}, h)),
                    "keel::outlier_detector: max_ejection_time must be at least base_ejection_time");
}

TEST_CASE("outlier detection ejects after consecutive failures, for base × n, capped", "[balance][health]") {
  keel::manual_clock clock;
  keel::balancer_config cfg;
  cfg.max_ejection_percent = 50;
  keel::outlier_detector::config h;
  h.consecutive_failures = 3;
  h.base_ejection_time = 10s;
  h.max_ejection_time = 25s;
  manual_balancer<keel::round_robin> lb(cfg, {}, h, clock);
  const auto bad = lb.add({"bad"});
  lb.add({"good"});
  lb.add({"good2"});
  lb.add({"good3"});

  auto fail_bad_until_ejected = [&] {
    int failures = 0;
    while (!info_of(lb, bad).ejected) {
      auto l = lb.pick();
      REQUIRE(l);
      if (l->id() == bad) {
        l->failure();
        ++failures;
      } else {
        l->success();
      }
    }
    return failures;
  };
  CHECK(fail_bad_until_ejected() == 3);  // exactly on the third consecutive failure
  for (int i = 0; i < 20; ++i) CHECK(lb.pick()->id() != bad);
  clock.advance(10s - 1ns);
  for (int i = 0; i < 8; ++i) CHECK(lb.pick()->id() != bad);
  clock.advance(1ns);  // the ejection ends exactly at base_ejection_time
  bool back = false;
  for (int i = 0; i < 4; ++i) back = back || lb.pick()->id() == bad;
  CHECK(back);

  // Second ejection right away: 2 × base = 20 s.
  CHECK(fail_bad_until_ejected() == 3);
  clock.advance(20s - 1ns);
  CHECK(info_of(lb, bad).ejected);
  clock.advance(1ns);
  CHECK_FALSE(info_of(lb, bad).ejected);
  // Third: 3 × 10 s would be 30 s; capped at max_ejection_time = 25 s.
  for (int i = 0; i < 4; ++i) lb.pick()->success();  // returns it to service
  CHECK(fail_bad_until_ejected() == 3);
  clock.advance(25s - 1ns);
  CHECK(info_of(lb, bad).ejected);
  clock.advance(1ns);
  CHECK_FALSE(info_of(lb, bad).ejected);

  // A success resets the streak: fail, fail, succeed, fail, fail is no ejection.
  keel::outlier_detector d(h);
  CHECK_FALSE(d.record(keel::outcome::failure, 0));
  CHECK_FALSE(d.record(keel::outcome::failure, 0));
  CHECK_FALSE(d.record(keel::outcome::success, 0));
  CHECK_FALSE(d.record(keel::outcome::failure, 0));
  CHECK_FALSE(d.record(keel::outcome::ignored, 0));  // ignored neither counts nor resets
  CHECK_FALSE(d.record(keel::outcome::failure, 0));
  CHECK(d.record(keel::outcome::failure, 0));        // the third in a row
  CHECK_FALSE(d.record(keel::outcome::failure, 0));  // a trip restarts the count
}

TEST_CASE("the ejection multiplier decays while the node stays healthy", "[balance][health]") {
  keel::outlier_detector::config h;
  h.base_ejection_time = 10s;
  h.max_ejection_time = 100s;
  keel::outlier_detector d(h);
  const std::int64_t s = 1'000'000'000;
  CHECK(d.eject(0) == 10 * s);
  CHECK(d.eject(10 * s) == 20 * s);  // straight after the first: multiplier 2
  CHECK(d.ejection_multiplier() == 2);
  // Ended at 30 s; 20 s (two base periods) of good behaviour take it back to 0.
  CHECK(d.eject(50 * s) == 10 * s);
  // A clock far ahead or going back neither overflows nor goes negative.
  CHECK(d.eject(std::numeric_limits<std::int64_t>::max() - 1) == 10 * s);
  CHECK(d.eject(0) > 0);
}

TEST_CASE("max_ejection_percent caps ejections, but one may always be ejected", "[balance][health]") {
  keel::manual_clock clock;
  keel::outlier_detector::config h;
  h.consecutive_failures = 1;
  keel::balancer_config cfg;  // 10 %: of 5 nodes, still one
  manual_balancer<keel::round_robin> lb(cfg, {}, h, clock);
  for (int i = 0; i < 5; ++i) lb.add({std::to_string(i)});
  for (int i = 0; i < 50; ++i) lb.pick()->failure();  // every node fails
  CHECK(lb.stats().ejected == 1);
  // Removing the ejected node frees its place in the budget.
  keel::node_id ejected{};
  lb.for_each_node([&](const node&, const keel::node_info& i) {
    if (i.ejected) ejected = i.id;
  });
  REQUIRE(lb.remove(ejected));
  CHECK(lb.stats().ejected == 0);
  lb.pick()->failure();
  CHECK(lb.stats().ejected == 1);
}

TEST_CASE("panic: with too few healthy nodes, health is ignored", "[balance][health]") {
  keel::manual_clock clock;
  keel::outlier_detector::config h;
  h.consecutive_failures = 1;
  keel::balancer_config cfg;
  cfg.max_ejection_percent = 100;
  manual_balancer<keel::p2c_least_request> lb(cfg, {}, h, clock);
  const auto a = lb.add({"a"});
  const auto b = lb.add({"b"});
  const auto c = lb.add({"c"});
  const auto d = lb.add({"d"});
  auto eject = [&](keel::node_id id) {
    while (!info_of(lb, id).ejected) {
      auto l = lb.pick();
      if (l->id() == id) l->failure();
    }
  };
  eject(a);
  eject(b);  // 2 of 4 healthy: exactly 50 %, not below: no panic
  CHECK_FALSE(lb.stats().panic);
  for (int i = 0; i < 200; ++i) {
    auto l = lb.pick();
    CHECK((l->id() == c || l->id() == d));
  }
  // A third ejection: only 25 % healthy; panic spreads over every node.
  while (!info_of(lb, c).ejected) {
    auto l = lb.pick();
    if (l->id() == c) l->failure();
  }
  CHECK(lb.stats().panic);
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 200; ++i) seen.insert(lb.pick()->id().value);
  CHECK(seen.size() == 4);

  // With panic disabled, the same state leaves only d, and all four ejected is no_backend.
  keel::balancer_config strict = cfg;
  strict.panic_threshold_percent = 0;
  manual_balancer<keel::p2c_least_request> s(strict, {}, h, clock);
  s.add({"x"});
  s.add({"y"});
  for (int i = 0; i < 10; ++i) {
    auto l = s.pick();
    if (l) l->failure();
  }
  auto none = s.pick();
  REQUIRE_FALSE(none);
  CHECK(none.error().code == keel::errc::no_backend);
  REQUIRE(none.error().retry_after);
  CHECK(*none.error().retry_after == 30s);  // Envoy's default base ejection time
  clock.advance(12s);
  CHECK(*s.pick().error().retry_after == 18s);
  clock.advance(18s);
  CHECK(s.pick());
}

TEST_CASE("slow start ramps a new node's weight over the window", "[balance][slow_start]") {
  keel::manual_clock clock;
  keel::balancer_config cfg;
  cfg.slow_start_window = 10s;
  manual_balancer<keel::p2c_least_request> lb(cfg, {}, {}, clock);
  const auto first = lb.add({"first"}, 2);  // the first nodes have nothing to ramp against
  CHECK(info_of(lb, first).effective_weight == 2);
  const auto late = lb.add({"late"}, 2);
  CHECK(info_of(lb, late).effective_weight == Approx(0.2));  // min_weight_percent 10 %
  clock.advance(1s);
  CHECK(info_of(lb, late).effective_weight == Approx(0.2));
  clock.advance(4s);
  CHECK(info_of(lb, late).effective_weight == Approx(1.0));
  clock.advance(-3s);  // a clock going back: the ramp does not go negative
  CHECK(info_of(lb, late).effective_weight == Approx(0.4));
  clock.advance(8s);
  CHECK(info_of(lb, late).effective_weight == Approx(2.0));
  clock.advance(1s);
  CHECK(info_of(lb, late).effective_weight == 2);  // ramp over: exactly the weight

  keel::balancer_config aggressive = cfg;
  aggressive.slow_start_aggression = 2;  // weight × (t / window)^(1/2)
  manual_balancer<keel::p2c_least_request> lb2(aggressive, {}, {}, clock);
  lb2.add({"first"});
  const auto ramp = lb2.add({"ramp"}, 1);
  clock.advance(2500ms);
  CHECK(info_of(lb2, ramp).effective_weight == Approx(0.5));
}

TEST_CASE("slow start also applies to a node returning from ejection, and shapes WRR", "[balance][slow_start]") {
  keel::manual_clock clock;
  keel::balancer_config cfg;
  cfg.slow_start_window = 10s;
  cfg.max_ejection_percent = 50;
  keel::outlier_detector::config h;
  h.consecutive_failures = 1;
  h.base_ejection_time = 5s;
  keel::weighted_round_robin_config w;
  w.update_period = 1s;
  manual_balancer<keel::edf_round_robin> lb(cfg, keel::edf_round_robin(w), h, clock);
  const auto a = lb.add({"a"}, 1);
  lb.add({"b"}, 1);  // added to a non-empty set: b ramps first
  clock.advance(10s);
  while (!info_of(lb, a).ejected) {
    auto l = lb.pick();
    if (l->id() == a) l->failure();
  }
  auto count_a = [&](int picks) {
    int n = 0;
    for (int i = 0; i < picks; ++i) n += lb.pick()->id() == a;
    return n;
  };
  CHECK(count_a(20) == 0);
  clock.advance(5s);
  // Returned: weight 10 % of b's: 1 : 10 → a gets 1 of every 11 picks.
  CHECK(count_a(22) == 2);
  clock.advance(5s);  // half-way: 0.5 : 1
  CHECK(count_a(30) == 10);
  clock.advance(5s);  // done: 1 : 1
  CHECK(count_a(30) == 15);
}

TEST_CASE("balanced: the pipeline terminal records outcomes, including exceptions", "[balance][layer]") {
  keel::manual_clock clock;
  keel::outlier_detector::config h;
  h.consecutive_failures = 2;
  keel::balancer_config cfg;
  cfg.max_ejection_percent = 100;
  cfg.panic_threshold_percent = 0;
  manual_balancer<keel::round_robin> lb(cfg, {}, h, clock);
  const auto only = lb.add({"gpu0"});
  struct request {
    int behaviour = 0;  // 0 ok, 1 upstream failure, 2 bad request, 3 throw
  };
  auto call = [](request& r, const node& n) -> keel::result<std::string> {
    if (r.behaviour == 1) return keel::reject(keel::errc::upstream_failure);
    if (r.behaviour == 2) return keel::reject(keel::errc::invalid_argument);
    if (r.behaviour == 3) throw std::runtime_error("boom");
    return n.name;
  };
  auto service = keel::pipeline().bind(keel::balanced(lb, call));
  request ok{0}, failing{1}, bad{2}, throwing{3};
  CHECK(*service(ok) == "gpu0");
  CHECK(service(failing).error().code == keel::errc::upstream_failure);
  CHECK(service(bad).error().code == keel::errc::invalid_argument);  // ignored: streak stays at 1
  CHECK_FALSE(info_of(lb, only).ejected);
  CHECK_THROWS_AS(service(throwing), std::runtime_error);  // recorded as the second failure
  CHECK(info_of(lb, only).ejected);
  CHECK(lb.outstanding(only) == 0);
  auto refused = service(ok);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == keel::errc::no_backend);
}

TEST_CASE("a clock jumping far ahead saturates ejection times", "[balance][clock]") {
  keel::manual_clock clock;
  keel::outlier_detector::config h;
  h.consecutive_failures = 1;
  h.max_ejection_time = std::chrono::nanoseconds::max();
  keel::balancer_config cfg;
  cfg.panic_threshold_percent = 0;
  manual_balancer<keel::round_robin> lb(cfg, {}, h, clock);
  const auto a = lb.add({"a"});
  clock.set(keel::manual_clock::time_point(std::chrono::nanoseconds::max() - 1s));
  lb.pick()->failure();
  CHECK(info_of(lb, a).ejected);
  auto r = lb.pick();
  REQUIRE_FALSE(r);
  CHECK(*r.error().retry_after > 0s);
  CHECK(*r.error().retry_after <= 1s);
}

TEST_CASE("model: random operations agree with a reference", "[balance][model]") {
  // Reference: the set of ids with their draining flag and live leases.
  struct model_node {
    bool draining = false;
    int outstanding = 0;
  };
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    keel::balancer_config cfg;
    cfg.seed = seed;
    keel::balancer<node, keel::p2c_least_request, keel::always_healthy> lb(cfg);
    std::map<std::uint64_t, model_node> model;
    std::vector<std::pair<std::uint64_t, decltype(lb)::lease>> leases;
    for (int step = 0; step < 400; ++step) {
      const auto op = rng() % 8;
      auto random_id = [&] {
        if (model.empty() || rng() % 10 == 0) return keel::node_id{rng() % 50};  // sometimes unknown
        auto it = model.begin();
        std::advance(it, static_cast<long>(rng() % model.size()));
        return keel::node_id{it->first};
      };
      if (op == 0) {
        const auto id = lb.add({"n"}, 1.0 + double(rng() % 4));
        model[id.value] = {};
      } else if (op == 1) {
        const auto id = random_id();
        CHECK(lb.remove(id) == (model.erase(id.value) == 1));
      } else if (op == 2) {
        const auto id = random_id();
        const bool known = model.count(id.value) == 1;
        CHECK(lb.drain(id) == known);
        if (known) model[id.value].draining = true;
      } else if (op == 3) {
        const auto id = random_id();
        CHECK(lb.set_weight(id, 0.5 + double(rng() % 3)) == (model.count(id.value) == 1));
      } else if (op <= 5) {
        auto l = lb.pick();
        bool any_pickable = false;
        for (const auto& [id, m] : model) any_pickable = any_pickable || !m.draining;
        REQUIRE(bool(l) == any_pickable);
        if (l) {
          auto it = model.find(l->id().value);
          REQUIRE(it != model.end());
          REQUIRE_FALSE(it->second.draining);
          ++it->second.outstanding;
          leases.emplace_back(l->id().value, std::move(*l));
        }
      } else if (!leases.empty()) {
        const auto k = rng() % leases.size();
        auto [id, lease] = std::move(leases[k]);
        leases.erase(leases.begin() + static_cast<long>(k));
        if (rng() % 2) lease.success();  // else dropped
        if (auto it = model.find(id); it != model.end()) --it->second.outstanding;
      }
      // Invariants: same nodes, same draining flags, same outstanding counts.
      std::size_t pickable = 0, draining = 0;
      std::int64_t outstanding = 0;
      for (const auto& [id, m] : model) {
        (m.draining ? draining : pickable) += 1;
        outstanding += m.outstanding;
        REQUIRE(lb.outstanding(keel::node_id{id}) == m.outstanding);
      }
      const auto st = lb.stats();
      REQUIRE(st.nodes == pickable);
      REQUIRE(st.draining == draining);
      REQUIRE(st.outstanding == outstanding);
    }
    leases.clear();
    for (const auto& [id, m] : model) CHECK(lb.outstanding(keel::node_id{id}) == 0);
  }
}

#include <keel/balance/breaker_health.hpp>

TEST_CASE("breaker_health: a circuit breaker per node ejects while open", "[balance][health][breaker]") {
  keel::manual_clock clock;
  keel::breaker_health<keel::count_window, keel::manual_clock>::config h;
  h.breaker.minimum_calls = 4;
  h.breaker.failure_rate_threshold = 50;
  h.breaker.open_duration = 10s;
  h.breaker.half_open_probes = 2;
  h.breaker.jitter = 0;
  h.window = keel::count_window{8};
  h.clock = clock;
  keel::balancer_config cfg;
  cfg.max_ejection_percent = 50;
  keel::balancer<node, keel::round_robin, keel::breaker_health<keel::count_window, keel::manual_clock>,
                 keel::manual_clock>
      lb(cfg, {}, h, clock);
  const auto bad = lb.add({"bad"});
  lb.add({"good"});
  int bad_calls = 0;
  while (!info_of(lb, bad).ejected && bad_calls < 100) {
    auto l = lb.pick();
    if (l->id() == bad) {
      ++bad_calls;
      l->failure(1ms);
    } else {
      l->success(1ms);
    }
  }
  CHECK(bad_calls == 4);  // the window's minimum: 4 calls, all failed ≥ 50 %
  for (int i = 0; i < 10; ++i) CHECK(lb.pick()->id() != bad);
  clock.advance(10s);  // the breaker's open duration is the ejection
  int probes = 0;
  for (int i = 0; i < 6; ++i) {
    auto l = lb.pick();
    if (l->id() == bad) ++probes;
    l->success(1ms);
  }
  CHECK(probes == 3);  // back in rotation; its successful probes close the breaker
  CHECK_FALSE(info_of(lb, bad).ejected);
  // a throwing state-change callback: the lease still releases its count
  keel::breaker_health<keel::count_window, keel::manual_clock>::config loud = h;
  loud.breaker.on_state_change = [](keel::breaker_state, keel::breaker_state to) {
    if (to == keel::breaker_state::open) throw std::runtime_error("page someone");
  };
  keel::balancer<node, keel::round_robin, keel::breaker_health<keel::count_window, keel::manual_clock>,
                 keel::manual_clock>
      lb2(cfg, {}, loud, clock);
  const auto only = lb2.add({"only"});
  for (int i = 0; i < 3; ++i) lb2.pick()->failure(1ms);
  auto fourth = lb2.pick();
  CHECK_THROWS_AS(fourth->failure(1ms), std::runtime_error);
  CHECK(lb2.outstanding(only) == 0);
  CHECK_FALSE(fourth->active());
}
