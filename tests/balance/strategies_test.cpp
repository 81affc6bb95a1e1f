// Each strategy against what it promises: exact weighted cycles, P2C's
// choice rule, peak EWMA's failure penalty, load-report blackout and expiry,
// bounded-load affinity.
#include <keel/balance/affinity.hpp>
#include <keel/balance/balancer.hpp>
#include <keel/balance/least_request.hpp>
#include <keel/balance/load_report.hpp>
#include <keel/balance/peak_ewma.hpp>
#include <keel/balance/recommended.hpp>
#include <keel/balance/round_robin.hpp>

#include <catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct node {
  std::string name;
};

template <class Balancer>
std::string sequence(Balancer& lb, int picks) {
  std::string out;
  for (int i = 0; i < picks; ++i) {
    auto l = lb.pick();
    REQUIRE(l);
    out += l->node().name;
    l->success();
  }
  return out;
}

template <class Balancer>
std::map<std::string, int> counts(Balancer& lb, int picks) {
  std::map<std::string, int> c;
  for (int i = 0; i < picks; ++i) {
    auto l = lb.pick();
    REQUIRE(l);
    ++c[l->node().name];
    l->success();
  }
  return c;
}

}  // namespace

TEST_CASE("smooth WRR follows nginx's interleaving exactly, every cycle", "[balance][wrr]") {
  keel::balancer<node, keel::smooth_weighted_round_robin> lb;
  lb.add({"a"}, 5);
  lb.add({"b"}, 1);
  lb.add({"c"}, 1);
  // nginx's documented sequence for weights 5, 1, 1.
  CHECK(sequence(lb, 7) == "aabacaa");
  CHECK(sequence(lb, 14) == "aabacaaaabacaa");
}

TEST_CASE("EDF gives each node exactly its weight per cycle", "[balance][wrr]") {
  keel::balancer<node, keel::edf_round_robin> lb;
  lb.add({"a"}, 2);
  lb.add({"b"}, 4);
  // gRPC A31's example: weights a = 2, b = 4 → "babbab" (ties to the earlier node).
  CHECK(sequence(lb, 12) == "babbabbabbab");

  keel::balancer<node, keel::edf_round_robin> lb3;
  lb3.add({"x"}, 3);
  lb3.add({"y"}, 5);
  lb3.add({"z"}, 7);
  for (int cycle = 0; cycle < 4; ++cycle) {
    auto c = counts(lb3, 15);
    CHECK(c["x"] == 3);
    CHECK(c["y"] == 5);
    CHECK(c["z"] == 7);
  }
}

TEST_CASE("weighted shares converge for non-integer weights", "[balance][wrr]") {
  keel::balancer<node, keel::smooth_weighted_round_robin> swrr;
  keel::balancer<node, keel::edf_round_robin> edf;
  swrr.add({"a"}, 2.5);
  swrr.add({"b"}, 1.0);
  swrr.add({"c"}, 0.25);
  edf.add({"a"}, 2.5);
  edf.add({"b"}, 1.0);
  edf.add({"c"}, 0.25);
  const int picks = 37500;
  for (const auto& c : {counts(swrr, picks), counts(edf, picks)}) {
    CHECK(std::abs(c.at("a") / double(picks) - 2.5 / 3.75) < 0.002);
    CHECK(std::abs(c.at("b") / double(picks) - 1.0 / 3.75) < 0.002);
    CHECK(std::abs(c.at("c") / double(picks) - 0.25 / 3.75) < 0.002);
  }
}

TEST_CASE("a weight change rebuilds the cycle", "[balance][wrr]") {
  keel::balancer<node, keel::edf_round_robin> lb;
  const auto a = lb.add({"a"}, 1);
  lb.add({"b"}, 1);
  CHECK(sequence(lb, 4) == "abab");
  lb.set_weight(a, 3);
  auto c = counts(lb, 8);
  CHECK(c["a"] == 6);
  CHECK(c["b"] == 2);
}

TEST_CASE("round robin ignores weights", "[balance][rr]") {
  keel::balancer<node, keel::round_robin> lb;
  lb.add({"a"}, 10);
  lb.add({"b"}, 1);
  CHECK(sequence(lb, 6) == "ababab");
}

TEST_CASE("P2C least request takes weight / (outstanding + 1)", "[balance][p2c]") {
  keel::balancer<node, keel::p2c_least_request> lb;
  const auto big = lb.add({"big"}, 3);
  const auto small = lb.add({"small"}, 1);
  // With two nodes both are always the candidates. big with 1 outstanding
  // scores 3 / 2 = 1.5 > small's 1 / 1: big wins while it stays below 2.
  auto held = lb.pick();
  REQUIRE(held);
  CHECK(held->node().name == "big");
  auto second = lb.pick();
  CHECK(second->node().name == "big");  // 3/2 beats 1/1
  auto third = lb.pick();               // big 3/3 = 1 ties small 1/1: either
  auto fourth = lb.pick();
  // After four calls big holds 3 and small 1, or both 2 — never small ahead.
  CHECK(lb.stats().outstanding == 4);
  CHECK(lb.outstanding(big) >= 2);
  CHECK(lb.outstanding(big) >= lb.outstanding(small));

  keel::balancer<node, keel::p2c_least_request> equal;
  equal.add({"x"});
  equal.add({"y"});
  auto x = equal.pick();
  auto y = equal.pick();
  CHECK(x->node().name != y->node().name);  // equal weights: the idle one
}

TEST_CASE("P2C never picks an ejected node outside panic mode", "[balance][p2c][health]") {
  keel::balancer_config cfg;
  cfg.max_ejection_percent = 30;
  keel::outlier_detector::config h;
  h.consecutive_failures = 1;
  keel::balancer<node, keel::p2c_least_request, keel::outlier_detector, keel::manual_clock> lb(cfg, {}, h,
                                                                                               keel::manual_clock());
  for (int i = 0; i < 10; ++i) lb.add({std::to_string(i)});
  // Fail every call on nodes "3", "4" and "7": three of ten may be ejected.
  int failures = 0;
  while (lb.stats().ejected < 3 && failures < 1000) {
    auto l = lb.pick();
    REQUIRE(l);
    const auto& n = l->node().name;
    if (n == "3" || n == "4" || n == "7") {
      l->failure();
      ++failures;
    } else {
      l->success();
    }
  }
  REQUIRE(lb.stats().ejected == 3);
  CHECK_FALSE(lb.stats().panic);
  for (int i = 0; i < 20000; ++i) {
    auto l = lb.pick();
    REQUIRE(l);
    const auto& n = l->node().name;
    REQUIRE(n != "3");
    REQUIRE(n != "4");
    REQUIRE(n != "7");
  }
}

TEST_CASE("peak EWMA: a fast-failing node is penalised, not preferred", "[balance][ewma]") {
  auto share_of_failing = [](std::chrono::nanoseconds penalty) {
    keel::peak_ewma::config c;
    c.failure_penalty = penalty;
    keel::manual_clock clock;
    keel::balancer<node, keel::peak_ewma, keel::always_healthy, keel::manual_clock> lb({}, keel::peak_ewma(c), {},
                                                                                       clock);
    lb.add({"ok"});
    lb.add({"ok2"});
    lb.add({"failing"});
    int to_failing = 0;
    const int picks = 3000;
    for (int i = 0; i < picks; ++i) {
      clock.advance(1ms);
      auto l = lb.pick();
      REQUIRE(l);
      if (l->node().name == "failing") {
        ++to_failing;
        l->failure(1ms);  // fails fast
      } else {
        l->success(50ms);
      }
    }
    return to_failing / double(picks);
  };
  const double plain = share_of_failing(0ns);
  const double penalised = share_of_failing(1s);
  INFO("plain " << plain << " penalised " << penalised);
  CHECK(plain > 0.5);       // plain peak EWMA prefers the node that fails in 1 ms
  CHECK(penalised < 0.05);  // with the penalty it is visited only as the decay lets it be retried
}

TEST_CASE("peak EWMA jumps to peaks and decays towards quiet", "[balance][ewma]") {
  keel::peak_ewma s;
  keel::peak_ewma::node_state st;
  const std::int64_t ms = 1'000'000;
  s.record(st, keel::outcome::success, 10 * ms, 0);
  CHECK(s.estimate(st, 0) == Approx(10.0 * ms));
  s.record(st, keel::outcome::success, 100 * ms, 0);  // a peak replaces the average at once
  CHECK(s.estimate(st, 0) == Approx(100.0 * ms));
  // 10 s (one decay time) later a 10 ms sample blends in with weight 1 - e^-1.
  s.record(st, keel::outcome::success, 10 * ms, 10'000 * ms);
  CHECK(s.estimate(st, 10'000 * ms) == Approx(100.0 * ms * std::exp(-1.0) + 10.0 * ms * (1 - std::exp(-1.0))));
  s.record(st, keel::outcome::ignored, 5000 * ms, 10'000 * ms);  // ignored calls say nothing
  CHECK(s.estimate(st, 10'000 * ms) == Approx(100.0 * ms * std::exp(-1.0) + 10.0 * ms * (1 - std::exp(-1.0))));
  // A clock that went back does not inflate or break the estimate.
  CHECK(s.estimate(st, 0) == s.estimate(st, 10'000 * ms));
}

TEST_CASE("peak EWMA's decay factor matches std::exp", "[balance][ewma]") {
  for (double x = 0; x < 50; x += 0.01) {
    const double want = std::exp(-x);
    REQUIRE(std::abs(keel::detail::exp_negative(x) - want) <= 1e-9 * want);
  }
  // Fine steps across the switch from the cubic (x < 1/64) to the table.
  for (double x = 1e-9; x < 0.05; x *= 1.01) {
    const double want = std::exp(-x);
    REQUIRE(std::abs(keel::detail::exp_negative(x) - want) <= 1e-9 * want);
  }
  for (double x = 50; x <= 700; x += 0.37) {
    const double want = std::exp(-x);
    REQUIRE(std::abs(keel::detail::exp_negative(x) - want) <= 1e-9 * want);
  }
  CHECK(keel::detail::exp_negative(-1) == 1.0);  // a clock going back: no decay
  CHECK(keel::detail::exp_negative(std::nan("")) == 1.0);
  CHECK(keel::detail::exp_negative(1e300) == 0.0);
}

namespace {
/// manual_clock that counts its reads: a read costs 20-50 ns, a pick must not make extra ones.
class counting_clock {
 public:
  using rep = keel::manual_clock::rep;
  using period = keel::manual_clock::period;
  using duration = keel::manual_clock::duration;
  using time_point = std::chrono::time_point<counting_clock, duration>;

  time_point now() const noexcept {
    ++*reads;
    return time_point(clock.now().time_since_epoch());
  }

  keel::manual_clock clock;
  std::shared_ptr<int> reads = std::make_shared<int>(0);
};
}  // namespace

TEST_CASE("peak EWMA reads the clock once per call, twice when the lease measures", "[balance][ewma][clock]") {
  counting_clock clock;
  clock.clock.set(keel::manual_clock::time_point(1h));
  keel::balancer<node, keel::recommended, keel::outlier_detector, counting_clock> lb({}, {}, {}, clock);
  for (int i = 0; i < 8; ++i) lb.add({std::to_string(i)}, 1.0 + i % 3);
  for (int i = 0; i < 100; ++i) {
    *clock.reads = 0;
    auto l = lb.pick();
    REQUIRE(l);
    l->success(3ms);  // a latency the caller measured: the sample is stamped at pick + 3 ms
    REQUIRE(*clock.reads == 1);
    *clock.reads = 0;
    auto m = lb.pick();
    REQUIRE(m);
    clock.clock.advance(2ms);
    m->success();  // the lease measures: one read at the pick, one at the record
    REQUIRE(*clock.reads == 2);
  }
}

namespace {
/// A latency strategy that logs what the balancer's records pass it.
struct logging_strategy {
  struct node_state {};
  struct table {
    template <class View>
    table(const logging_strategy&, const View&) noexcept {}
  };
  static constexpr bool uses_latency = true;
  template <class View>
  std::size_t pick(table&, const View&) const {
    return 0;
  }
  void record(node_state&, keel::outcome, std::int64_t latency_ns, std::int64_t now_ns) const {
    log->push_back({latency_ns, now_ns});
  }
  std::shared_ptr<std::vector<std::pair<std::int64_t, std::int64_t>>> log =
      std::make_shared<std::vector<std::pair<std::int64_t, std::int64_t>>>();
};
}  // namespace

TEST_CASE("a caller's latency stamps the sample at pick time + latency", "[balance][lease][clock]") {
  keel::manual_clock clock{keel::manual_clock::time_point{1h}};
  logging_strategy s;
  keel::balancer<node, logging_strategy, keel::always_healthy, keel::manual_clock> lb({}, s, {}, clock);
  lb.add({"a"});
  const std::int64_t t0 = keel::detail::now_ns(clock);
  const std::int64_t ms = 1'000'000;

  auto given = lb.pick();
  auto measured = lb.pick();
  REQUIRE(given);
  REQUIRE(measured);
  clock.advance(5s);
  given->success(3ms);  // the caller's own latency: no clock read, the sample is stamped t0 + 3 ms
  measured->success();  // measured by the lease: 5 s, stamped now
  auto negative = lb.pick();
  REQUIRE(negative);
  negative->success(-4ms);  // a negative latency counts as zero
  REQUIRE(s.log->size() == 3);
  CHECK((*s.log)[0] == std::pair<std::int64_t, std::int64_t>{3 * ms, t0 + 3 * ms});
  CHECK((*s.log)[1] == std::pair<std::int64_t, std::int64_t>{5000 * ms, t0 + 5000 * ms});
  CHECK((*s.log)[2] == std::pair<std::int64_t, std::int64_t>{-4 * ms, t0 + 5000 * ms});
}

TEST_CASE("load-report weights: blackout, then weights, then expiry", "[balance][load_report]") {
  using strategy = keel::load_report_weights<>;
  strategy::config c;  // blackout 10 s, expiry 3 min, update every 1 s
  keel::manual_clock clock{keel::manual_clock::time_point{1h}};
  keel::balancer<node, strategy, keel::outlier_detector, keel::manual_clock> lb({}, strategy(c), {}, clock);
  const auto fast = lb.add({"f"});
  const auto slow = lb.add({"s"});
  const keel::load_report fast_report{300, 0, 0.5};  // weight 600
  const keel::load_report slow_report{100, 0, 0.5};  // weight 200

  auto report_both = [&] {
    lb.report_load(fast, fast_report);
    lb.report_load(slow, slow_report);
  };
  report_both();
  CHECK(sequence(lb, 4) == "fsfs");  // blackout: equal weights
  clock.advance(9s);
  report_both();
  CHECK(counts(lb, 4)["f"] == 2);  // still blacked out at 9 s
  clock.advance(1s);
  report_both();
  // 10 s of reports: weights 600 : 200 = 3 : 1 from the next rebuild on.
  auto c1 = counts(lb, 8);
  CHECK(c1["f"] == 6);
  CHECK(c1["s"] == 2);

  // slow stops reporting: after 3 min its weight expires; with fewer than
  // two usable weights, every node is equal again.
  for (int s = 0; s < 180; s += 5) {
    clock.advance(5s);
    lb.report_load(fast, fast_report);
  }
  auto c2 = counts(lb, 8);
  CHECK(c2["f"] == 4);
  CHECK(c2["s"] == 4);

  // slow resumes: it sits out a new blackout before its weight counts.
  lb.report_load(slow, slow_report);
  clock.advance(2s);
  report_both();
  CHECK(counts(lb, 8)["f"] == 4);
  clock.advance(9s);
  report_both();
  CHECK(counts(lb, 8)["f"] == 6);
}

TEST_CASE("load-report weights: a node without a weight gets the mean", "[balance][load_report]") {
  using strategy = keel::load_report_weights<>;
  strategy::config c;
  c.blackout_period = 0s;
  keel::manual_clock clock{keel::manual_clock::time_point{1h}};
  keel::balancer<node, strategy, keel::outlier_detector, keel::manual_clock> lb({}, strategy(c), {}, clock);
  const auto a = lb.add({"a"});
  const auto b = lb.add({"b"});
  lb.add({"c"});                                      // never reports
  lb.report_load(a, keel::load_report{100, 0, 1.0});  // 100
  lb.report_load(b, keel::load_report{300, 0, 1.0});  // 300; mean 200 for c
  clock.advance(1s);
  auto got = counts(lb, 6);
  CHECK(got["a"] == 1);
  CHECK(got["b"] == 3);
  CHECK(got["c"] == 2);
  // Errors lower a weight: qps / (util + eps/qps × penalty) = 300 / (1 + 0.5) = 200.
  lb.report_load(b, keel::load_report{300, 150, 1.0});
  clock.advance(1s);
  got = counts(lb, 5);
  CHECK(got["a"] == 1);
  CHECK(got["b"] == 2);
  CHECK(got["c"] == 2);
}

TEST_CASE("load-report weights: a throwing score changes nothing", "[balance][load_report]") {
  struct picky {
    double operator()(const keel::load_report& r) const {
      if (r.queue_depth < 0) throw std::runtime_error("bad report");
      return r.qps;
    }
  };
  using strategy = keel::load_report_weights<picky>;
  strategy::config c;
  c.blackout_period = 0s;
  keel::manual_clock clock{keel::manual_clock::time_point{1h}};
  keel::balancer<node, strategy, keel::outlier_detector, keel::manual_clock> lb({}, strategy(c), {}, clock);
  const auto a = lb.add({"a"});
  const auto b = lb.add({"b"});
  lb.report_load(a, keel::load_report{3, 0, 0});
  lb.report_load(b, keel::load_report{1, 0, 0});
  keel::load_report bad{100, 0, 0};
  bad.queue_depth = -1;
  CHECK_THROWS_AS(lb.report_load(a, bad), std::runtime_error);
  clock.advance(1s);
  auto got = counts(lb, 4);
  CHECK(got["a"] == 3);  // the weight from before the throw
  CHECK(got["b"] == 1);
}

namespace {
struct keyed {
  std::uint64_t key = 0;
};
auto key_of = [](const keyed& k) { return k.key; };
using affinity = keel::bounded_load_hash<decltype(key_of)>;
}  // namespace

TEST_CASE("affinity: adding one node to N moves about 1/(N+1) of the keys, all to it", "[balance][affinity]") {
  keel::balancer<node, affinity> lb({}, affinity(key_of));
  const int n = 10;
  for (int i = 0; i < n; ++i) lb.add({std::to_string(i)});
  const std::size_t keys = 20000;
  std::vector<std::string> before(keys);
  for (std::size_t k = 0; k < keys; ++k) {
    keyed req{keel::affinity_key("session-" + std::to_string(k))};
    auto l = lb.pick(req);
    REQUIRE(l);
    before[k] = l->node().name;  // dropped at once: no load, pure hashing
  }
  lb.add({"new"});
  int moved = 0;
  for (std::size_t k = 0; k < keys; ++k) {
    keyed req{keel::affinity_key("session-" + std::to_string(k))};
    auto l = lb.pick(req);
    if (l->node().name != before[k]) {
      ++moved;
      REQUIRE(l->node().name == "new");  // nothing moves between old nodes
    }
  }
  const double fraction = moved / double(keys);
  INFO("moved " << fraction);
  CHECK(fraction > 0.5 / (n + 1));
  CHECK(fraction < 1.6 / (n + 1));

  // The same key keeps its node.
  keyed session{keel::affinity_key("session-7")};
  const auto first = lb.pick(session)->node().name;
  for (int i = 0; i < 10; ++i) CHECK(lb.pick(session)->node().name == first);
}

TEST_CASE("affinity: a key goes to the first ring point at or after its hash", "[balance][affinity]") {
  // Reference: the ring as documented (points_per_node × weight / mean weight
  // points per node, at mix64(id × weyl_step + p)), searched with std::lower_bound.
  for (const int n : {1, 3, 10, 64}) {
    keel::balancer<node, affinity> lb({}, affinity(key_of));
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ring;  // hash, node id
    std::map<std::uint64_t, std::string> names;
    double total = 0;
    for (int i = 0; i < n; ++i) total += 1.0 + i % 4;
    for (int i = 0; i < n; ++i) {
      const double w = 1.0 + i % 4;
      const auto id = lb.add({std::to_string(i)}, w).value;
      names[id] = std::to_string(i);
      const auto points = std::max<long>(1, std::lround(w / (total / n) * 100));
      for (long p = 0; p < points; ++p)
        ring.push_back({keel::detail::mix64(id * keel::detail::weyl_step + static_cast<std::uint64_t>(p)), id});
    }
    std::sort(ring.begin(), ring.end());
    std::uint64_t keys = 12345;
    for (int k = 0; k < 5000; ++k) {
      keyed req{keel::detail::splitmix64(keys)};
      const std::uint64_t h = keel::detail::mix64(req.key);
      auto it = std::lower_bound(ring.begin(), ring.end(), std::pair<std::uint64_t, std::uint64_t>{h, 0});
      if (it == ring.end()) it = ring.begin();
      auto l = lb.pick(req);
      REQUIRE(l);
      REQUIRE(l->node().name == names[it->second]);  // dropped at once: no load, pure hashing
    }
  }
}

TEST_CASE("affinity: no node exceeds (1 + epsilon) × the average load", "[balance][affinity]") {
  for (const double epsilon : {0.1, 0.25, 1.0}) {
    affinity::config c;
    c.epsilon = epsilon;
    keel::balancer<node, affinity> lb({}, affinity(key_of, c));
    const int n = 8;
    std::vector<keel::node_id> ids;
    for (int i = 0; i < n; ++i) ids.push_back(lb.add({std::to_string(i)}));
    std::vector<decltype(lb)::lease> held;
    const int calls = 800;
    for (int i = 0; i < calls; ++i) {
      // Heavily skewed: half the calls share one hot session.
      keyed req{i % 2 == 0 ? 42u : keel::affinity_key(std::to_string(i))};
      auto l = lb.pick(req);
      REQUIRE(l);
      held.push_back(std::move(*l));
      const double average = double(i + 1) / n;
      for (const auto id : ids) REQUIRE(double(lb.outstanding(id)) <= std::ceil((1 + epsilon) * average));
    }
    // The hot session still lands mostly on its own node: affinity is kept up to the bound.
    std::int64_t max_load = 0;
    for (const auto id : ids) max_load = std::max(max_load, lb.outstanding(id));
    CHECK(max_load == static_cast<std::int64_t>(std::ceil((1 + epsilon) * calls / double(n))));
  }
}

TEST_CASE("affinity: weights scale both the ring share and the bound", "[balance][affinity]") {
  keel::balancer<node, affinity> lb({}, affinity(key_of));
  const auto big = lb.add({"big"}, 3);
  const auto small = lb.add({"small"}, 1);
  std::vector<decltype(lb)::lease> held;
  for (int i = 0; i < 400; ++i) {
    keyed req{keel::affinity_key(std::to_string(i))};
    held.push_back(std::move(*lb.pick(req)));
  }
  // Bound: big ≤ ceil(1.25 × 400 × 3/4) = 375, small ≤ ceil(1.25 × 400 / 4) = 125.
  CHECK(lb.outstanding(big) <= 375);
  CHECK(lb.outstanding(small) <= 125);
  CHECK(lb.outstanding(big) > 2 * lb.outstanding(small));
}

TEST_CASE("recommended: candidates by weight, cheapest of four; the balancer's default", "[balance][recommended]") {
  static_assert(std::is_same_v<keel::balancer<node>::strategy_type, keel::recommended>);
  keel::manual_clock clock;
  keel::balancer<node, keel::recommended, keel::always_healthy, keel::manual_clock> lb({}, {}, {}, clock);
  // Two fast nodes and ten slow ones: uniform P2C would often compare two
  // slow nodes; drawing by weight almost always offers a fast one.
  lb.add({"fast"}, 8);
  lb.add({"fast"}, 8);
  for (int i = 0; i < 10; ++i) lb.add({"slow"}, 1);
  int fast = 0;
  const int picks = 4000;
  for (int i = 0; i < picks; ++i) {
    clock.advance(1ms);
    auto l = lb.pick();
    REQUIRE(l);
    const bool is_fast = l->node().name == "fast";
    fast += is_fast;
    l->success(is_fast ? 20ms : 160ms);
  }
  INFO("fast share " << fast / double(picks));
  CHECK(fast > 0.95 * picks);  // idle fleet: the fast tier takes (almost) everything

  keel::balancer<node, keel::p2c_least_request> uniform;
  uniform.add({"fast"}, 8);
  uniform.add({"fast"}, 8);
  for (int i = 0; i < 10; ++i) uniform.add({"slow"}, 1);
  int uniform_fast = 0;
  for (int i = 0; i < picks; ++i) {
    auto l = uniform.pick();
    uniform_fast += l->node().name == "fast";
  }
  // Uniform candidates: a fast node is among two draws from 12 only ~32 % of the time.
  CHECK(uniform_fast < 0.4 * picks);
}

TEST_CASE("strategy configuration is validated with the field's name", "[balance][config]") {
  keel::weighted_round_robin_config w;
  w.max_cycle = 0;
  CHECK_THROWS_WITH(keel::edf_round_robin(w), "keel::weighted_round_robin: max_cycle must be in [1, 2^24]");
  w = {};
  w.update_period = 0s;
  CHECK_THROWS_WITH(keel::smooth_weighted_round_robin(w), "keel::weighted_round_robin: update_period must be positive");

  keel::p2c_least_request::config p;
  p.choices = 0;
  CHECK_THROWS_WITH(keel::p2c_least_request(p), "keel::p2c_least_request: choices must be at least 1");
  p = {};
  p.active_request_bias = std::nan("");
  CHECK_THROWS_WITH(keel::p2c_least_request(p),
                    "keel::p2c_least_request: active_request_bias must be finite and not negative");

  keel::peak_ewma::config e;
  e.decay_time = 0s;
  CHECK_THROWS_WITH(keel::peak_ewma(e), "keel::peak_ewma: decay_time must be positive");
  e = {};
  e.failure_penalty = -1s;
  CHECK_THROWS_WITH(keel::peak_ewma(e), "keel::peak_ewma: failure_penalty must not be negative");

  keel::load_report_weights<>::config l;
  l.weight_expiration_period = 0s;
  CHECK_THROWS_WITH(keel::load_report_weights<>(l),
                    "keel::load_report_weights: weight_expiration_period must be positive");
  l = {};
  l.blackout_period = -1s;
  CHECK_THROWS_WITH(keel::load_report_weights<>(l), "keel::load_report_weights: blackout_period must not be negative");

  affinity::config a;
  a.epsilon = 0;
  CHECK_THROWS_WITH(affinity(key_of, a), "keel::bounded_load_hash: epsilon must be positive and finite");
  a.epsilon = std::nan("");
  CHECK_THROWS_WITH(affinity(key_of, a), "keel::bounded_load_hash: epsilon must be positive and finite");
  a = {};
  a.points_per_node = 0;
  CHECK_THROWS_WITH(affinity(key_of, a), "keel::bounded_load_hash: points_per_node must be in [1, 100000]");
}

namespace {
// A scripted stand-in for the balancer's view: best_of_random needs only size().
struct fake_view {
  std::size_t n;
  std::size_t size() const noexcept { return n; }
};
}  // namespace

TEST_CASE("best of d choices: cheapest drawn candidate, first on a tie, each draw excludes the best so far",
          "[balance][sampling]") {
  const fake_view v{8};
  const std::vector<double> cost_of = {5, 3, 9, 3, 1, 7, 2, 8};
  auto cost = [&](const fake_view&, std::size_t i) { return cost_of[i]; };

  SECTION("six choices: every draw is told the cheapest node so far") {
    const std::vector<std::size_t> script = {2, 1, 5, 3, 0, 6};
    std::vector<std::size_t> excluded;
    std::size_t next = 0;
    auto draw = [&](const fake_view&, std::size_t exclude) {
      excluded.push_back(exclude);
      return script[next++];
    };
    // Costs 9, 3, 7, 3, 5, 2: the best is 2, then 1 (3) through the tie with 3, then 6 (2).
    CHECK(keel::detail::best_of_random(v, 6, cost, draw) == 6);
    CHECK(excluded == std::vector<std::size_t>{keel::detail::no_node, 2, 1, 1, 1, 1});
  }
  SECTION("a tie keeps the first drawn") {
    const std::vector<std::size_t> script = {3, 1};  // both cost 3
    std::size_t next = 0;
    auto draw = [&](const fake_view&, std::size_t) { return script[next++]; };
    CHECK(keel::detail::best_of_random(v, 2, cost, draw) == 3);
  }
  SECTION("a draw that finds nothing ends the pick with what was drawn") {
    std::size_t calls = 0;
    auto draw = [&](const fake_view&, std::size_t) { return ++calls == 1 ? std::size_t{7} : keel::detail::no_node; };
    CHECK(keel::detail::best_of_random(v, 4, cost, draw) == 7);
    CHECK(calls == 2);
    auto nothing = [](const fake_view&, std::size_t) { return keel::detail::no_node; };
    CHECK(keel::detail::best_of_random(v, 4, cost, nothing) == keel::detail::no_node);
  }
  SECTION("one node: drawn once, no cost is computed") {
    int costed = 0, draws = 0;
    auto counting = [&](const fake_view&, std::size_t) { return ++costed, 0.0; };
    auto only = [&](const fake_view&, std::size_t) { return ++draws, std::size_t{0}; };
    CHECK(keel::detail::best_of_random(fake_view{1}, 4, counting, only) == 0);
    CHECK(draws == 1);
    CHECK(costed == 0);
  }
}
