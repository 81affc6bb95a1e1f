// keel_sim balance/gpu_fleet — which balancing strategy keeps the tail short on
// a heterogeneous GPU fleet, and what happens when a node slows down, fails
// fast, or leaves.
//
// A deterministic discrete-event simulation. Each node is a batching server
// with `slots` concurrent requests (its batch) and a FIFO queue in front; a
// request's service time is its work (exponential, mean 200 ms at speed 1)
// divided by the node's speed when it starts. Arrivals are Poisson at 60 %,
// 85 % and 95 % of the fleet's total capacity (sum of slots × speed / mean work).
//
// Fleets:  gpu    2 fast H100-like nodes (speed 3) + 4 older ones (speed 1)
//          mixed  8 nodes, speeds 3 : 3 : 2 : 2 : 1 : 1 : 0.5 : 0.5
//          two_tier 2 fast (speed 4) + 10 slow (speed 0.5) — where unweighted
//                 power-of-two-choices breaks: both candidates are usually slow
// Scenarios (the change happens at half time):
//          steady; slow (the fastest node slows 5×); failfast (one fast node
//          starts failing every request in 1 ms); churn (a mid-speed node
//          leaves, a new one of the same speed joins, in slow start).
// Strategies: every keel strategy alone (health: always_healthy, static
// weights = slots × nominal speed), keel's recommended `default` (see
// keel/balance/recommended.hpp, with the balancer's default outlier ejection), least_outstanding (a
// full scan, the "least connections" a user writes) and `oracle`: a greedy
// placement that knows every node's true current speed and the work of every
// queued and running request, and sends each request where a request of
// average size would finish first — the best a balancer could do with full
// information about the fleet (it does not know the new request's size).
//
// Columns: p50/p99/p999 of successful requests' latency after warm-up (ms);
// error_rate: failed or unroutable requests / all; share_of_bad_node: share of
// the requests arriving after the change that went to the changed node (the
// slowed one, the failing one; the new node for churn); kept_up: false when
// the backlog at the end exceeds both 4 × the fleet's slots and 1.5 × the
// backlog at half time (a queue still growing).
#include "sim/sim.hpp"

#include <keel/balance/balancer.hpp>
#include <keel/balance/least_request.hpp>
#include <keel/balance/load_report.hpp>
#include <keel/balance/peak_ewma.hpp>
#include <keel/balance/recommended.hpp>
#include <keel/balance/round_robin.hpp>
#include <keel/core/clock.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr double mean_work_s = 0.2;

struct node_spec {
  double speed;
  int slots;
};

struct fleet {
  std::string name;
  std::vector<node_spec> nodes;
  std::size_t bad;     ///< index of the node that slows down or fails
  std::size_t leaver;  ///< index of the node that leaves in churn
};

enum class scenario { steady, slow, failfast, churn };
const char* name_of(scenario s) {
  switch (s) {
    case scenario::steady: return "steady";
    case scenario::slow: return "slow";
    case scenario::failfast: return "failfast";
    case scenario::churn: return "churn";
  }
  return "?";
}

struct results {
  double p50 = 0, p99 = 0, p999 = 0, error_rate = 0, share_bad = 0;
  bool kept_up = true;
  bool consistent = true;
};

/// One request in flight.
struct job {
  double arrival;
  double work;
  std::size_t id;
  bool fails = false;  ///< set when it starts on a failing node
};

/// The fleet as the event loop sees it.
struct server {
  node_spec spec;
  double speed;
  bool failing = false;
  bool in_set = true;
  int busy = 0;
  std::deque<job> queue;
  std::vector<double> running_ends;  // for the oracle: when each busy slot frees
  int completed_since_report = 0;
  int failed_since_report = 0;
};

struct event {
  double time;
  int kind;  // 0 arrival, 1 completion, 2 report tick, 3 change
  std::size_t node;
  job j;
  bool operator>(const event& o) const { return time > o.time || (time == o.time && j.id > o.j.id); }
};

/// The routing decision, behind one interface so keel balancers and the oracle run the same loop.
struct router {
  virtual ~router() = default;
  /// Chooses a node for job j; -1 if none.
  virtual long route(double now, const job& j, const std::vector<server>& fleet) = 0;
  virtual void finish(std::size_t id, bool ok, double latency_s, double now) = 0;
  virtual void report(double /*now*/, std::size_t /*node*/, const keel::load_report&) {}
  virtual void leave(std::size_t /*node*/) {}
  virtual void join(std::size_t /*node*/, double /*weight*/) {}
};

template <class Strategy, class Health>
class keel_router final : public router {
  using balancer_t = keel::balancer<std::size_t, Strategy, Health, keel::manual_clock>;

 public:
  keel_router(const fleet& f, Strategy s, keel::manual_clock clock, keel::balancer_config cfg)
      : clock_(clock), lb_(cfg, std::move(s), {}, clock) {
    for (std::size_t i = 0; i < f.nodes.size(); ++i) ids_.push_back(lb_.add(i, f.nodes[i].slots * f.nodes[i].speed));
  }
  long route(double now, const job& j, const std::vector<server>&) override {
    set(now);
    auto l = lb_.pick();
    if (!l) return -1;
    const auto node = static_cast<long>(l->node());
    if (leases_.size() <= j.id) leases_.resize(j.id + 1);
    leases_[j.id].emplace(std::move(*l));
    return node;
  }
  void finish(std::size_t id, bool ok, double latency_s, double now) override {
    set(now);
    auto& l = leases_[id];
    const auto latency = std::chrono::nanoseconds(static_cast<std::int64_t>(latency_s * 1e9));
    ok ? l->success(latency) : l->failure(latency);
    l.reset();
  }
  void report(double now, std::size_t node, const keel::load_report& r) override {
    if constexpr (requires { lb_.report_load(ids_[node], r); }) {
      set(now);
      lb_.report_load(ids_[node], r);
    }
  }
  void leave(std::size_t node) override { lb_.remove(ids_[node]); }
  void join(std::size_t node, double weight) override {
    if (ids_.size() <= node) ids_.resize(node + 1);
    ids_[node] = lb_.add(node, weight);
  }

 private:
  void set(double now) {
    clock_.set(keel::manual_clock::time_point(std::chrono::nanoseconds(static_cast<std::int64_t>(now * 1e9))));
  }
  keel::manual_clock clock_;
  balancer_t lb_;
  std::vector<keel::node_id> ids_;
  std::vector<std::optional<typename balancer_t::lease>> leases_;
};

/// Least connections: a full scan for the fewest outstanding calls (what a
/// user writes first), as a keel strategy.
struct least_outstanding {
  struct node_state {};
  struct table {
    template <class View>
    table(const least_outstanding&, const View&) {}
  };
  template <class View>
  std::size_t pick(table&, const View& v) const {
    std::size_t best = static_cast<std::size_t>(-1);
    const std::size_t start = keel::detail::bounded(v.random(), v.size());
    for (std::size_t k = 0; k < v.size(); ++k) {
      const std::size_t i = (start + k) % v.size();
      if (v.usable(i) && (best == static_cast<std::size_t>(-1) || v.outstanding(i) < v.outstanding(best))) best = i;
    }
    return best;
  }
};

/// Full information: where would this job finish first?
class oracle_router final : public router {
 public:
  long route(double now, const job& j, const std::vector<server>& fleet) override {
    long best = -1;
    double best_finish = 0;
    for (std::size_t i = 0; i < fleet.size(); ++i) {
      const server& s = fleet[i];
      if (!s.in_set || s.failing) continue;
      // Replay the FIFO: slots free at running_ends (now when idle); each
      // queued job takes the earliest slot.
      std::vector<double> slots(s.running_ends);
      while (static_cast<int>(slots.size()) < s.spec.slots) slots.push_back(now);
      std::priority_queue<double, std::vector<double>, std::greater<>> free(slots.begin(), slots.end());
      for (const job& q : s.queue) {
        const double t = free.top();
        free.pop();
        free.push(t + q.work / s.speed);
      }
      // It knows the queued work, not the size of the job it places.
      const double finish = std::max(now, free.top()) + mean_work_s / s.speed;
      (void)j;
      if (best < 0 || finish < best_finish) {
        best = static_cast<long>(i);
        best_finish = finish;
      }
    }
    return best;
  }
  void finish(std::size_t, bool, double, double) override {}
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(
      std::min<double>(static_cast<double>(v.size() - 1), std::floor(p * static_cast<double>(v.size()))));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

results simulate(const fleet& f, double load, scenario sc, router& r, double duration, std::uint64_t seed) {
  std::vector<server> fleet;
  double capacity = 0;  // requests per second
  int total_slots = 0;
  for (const auto& n : f.nodes) {
    fleet.push_back(server{n, n.speed, false, true, 0, {}, {}, 0, 0});
    capacity += n.slots * n.speed / mean_work_s;
    total_slots += n.slots;
  }
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap(load * capacity);
  std::exponential_distribution<double> work(1.0 / mean_work_s);
  std::priority_queue<event, std::vector<event>, std::greater<>> events;
  const double change_at = duration / 2, warmup = duration / 10;
  std::size_t next_id = 0;
  events.push({0.0, 0, 0, {0, work(rng), next_id++}});
  events.push({0.1, 2, 0, {}});
  if (sc != scenario::steady) events.push({change_at, 3, 0, {}});

  std::vector<double> latencies;
  std::size_t total = 0, errors = 0, after_change = 0, to_bad = 0;
  std::size_t backlog_half = 0;
  std::size_t bad = f.bad;  // for churn: the node that joins
  results out;

  auto start = [&](std::size_t n, job j, double now) {
    server& s = fleet[n];
    ++s.busy;
    j.fails = s.failing;
    const double service = s.failing ? 0.001 : j.work / s.speed;
    s.running_ends.push_back(now + service);
    events.push({now + service, 1, n, j});
  };
  auto backlog = [&] {
    std::size_t b = 0;
    for (const auto& s : fleet) b += s.queue.size() + static_cast<std::size_t>(s.busy);
    return b;
  };
  std::size_t backlog_end = 0;
  events.push({duration * 0.5, 4, 0, {}});
  events.push({duration, 4, 1, {}});

  while (!events.empty()) {
    const event e = events.top();
    events.pop();
    const double now = e.time;
    if (e.kind == 4) {
      (e.node == 0 ? backlog_half : backlog_end) = backlog();
    } else if (e.kind == 0) {
      if (now >= duration) continue;
      events.push({now + gap(rng), 0, 0, {0, work(rng), next_id++}});
      job j{now, e.j.work, e.j.id};
      ++total;
      const long n = r.route(now, j, fleet);
      if (now >= change_at) ++after_change;
      if (n < 0) {
        ++errors;
        continue;
      }
      const auto node = static_cast<std::size_t>(n);
      if (!fleet[node].in_set) out.consistent = false;  // a removed node was picked
      if (now >= change_at && node == bad) ++to_bad;
      server& s = fleet[node];
      if (s.busy < s.spec.slots) {
        start(node, j, now);
      } else {
        s.queue.push_back(j);
      }
    } else if (e.kind == 1) {
      server& s = fleet[e.node];
      --s.busy;
      s.running_ends.erase(std::find(s.running_ends.begin(), s.running_ends.end(), now));
      const bool ok = !e.j.fails;
      const double latency = now - e.j.arrival;
      r.finish(e.j.id, ok, latency, now);
      ++s.completed_since_report;
      if (!ok) {
        ++errors;
        ++s.failed_since_report;
      } else if (e.j.arrival >= warmup) {
        latencies.push_back(latency);
      }
      if (!s.queue.empty()) {
        const job next = s.queue.front();
        s.queue.pop_front();
        start(e.node, next, now);
      }
    } else if (e.kind == 2) {
      // Every 100 ms each node reports its load (what a sidecar or ORCA would send).
      for (std::size_t i = 0; i < fleet.size(); ++i) {
        server& s = fleet[i];
        if (!s.in_set) continue;
        keel::load_report rep;
        rep.qps = s.completed_since_report / 0.1;
        rep.eps = s.failed_since_report / 0.1;
        rep.running = s.busy;
        rep.queue_depth = static_cast<double>(s.queue.size());
        rep.utilization = (s.busy + static_cast<double>(s.queue.size())) / s.spec.slots;
        r.report(now, i, rep);
        s.completed_since_report = s.failed_since_report = 0;
      }
      if (now < duration) events.push({now + 0.1, 2, 0, {}});
    } else {
      if (sc == scenario::slow) fleet[f.bad].speed /= 5;
      if (sc == scenario::failfast) fleet[f.bad].failing = true;
      if (sc == scenario::churn) {
        fleet[f.leaver].in_set = false;  // finishes what it holds, takes nothing new
        r.leave(f.leaver);
        fleet.push_back(server{f.nodes[f.leaver], f.nodes[f.leaver].speed, false, true, 0, {}, {}, 0, 0});
        bad = fleet.size() - 1;
        r.join(bad, f.nodes[f.leaver].slots * f.nodes[f.leaver].speed);
      }
    }
  }
  out.kept_up = !(static_cast<double>(backlog_end) > 4.0 * total_slots &&
                  static_cast<double>(backlog_end) > 1.5 * static_cast<double>(backlog_half));
  out.p50 = percentile(latencies, 0.50) * 1000;
  out.p99 = percentile(latencies, 0.99) * 1000;
  out.p999 = percentile(latencies, 0.999) * 1000;
  out.error_rate = total ? static_cast<double>(errors) / static_cast<double>(total) : 0;
  out.share_bad = after_change ? static_cast<double>(to_bad) / static_cast<double>(after_change) : 0;
  return out;
}

}  // namespace

namespace {

std::vector<fleet> fleets() {
  return {
      fleet{"gpu", {{3, 4}, {3, 4}, {1, 4}, {1, 4}, {1, 4}, {1, 4}}, 0, 2},
      fleet{"mixed", {{3, 4}, {3, 4}, {2, 4}, {2, 4}, {1, 4}, {1, 4}, {0.5, 4}, {0.5, 4}}, 0, 2},
      fleet{"two_tier",
            {{4, 4},
             {4, 4},
             {0.5, 4},
             {0.5, 4},
             {0.5, 4},
             {0.5, 4},
             {0.5, 4},
             {0.5, 4},
             {0.5, 4},
             {0.5, 4},
             {0.5, 4},
             {0.5, 4}},
            0,
            2},
  };
}

struct strategy_entry {
  std::string name;
  std::function<std::unique_ptr<router>(const fleet&, keel::manual_clock)> make;
};

template <class Strategy, class Health = keel::always_healthy>
strategy_entry entry(std::string name, Strategy s = {}, keel::balancer_config cfg = {}) {
  return {std::move(name), [s, cfg](const fleet& f, keel::manual_clock c) -> std::unique_ptr<router> {
            return std::make_unique<keel_router<Strategy, Health>>(f, s, c, cfg);
          }};
}

std::vector<strategy_entry> strategies() {
  keel::peak_ewma::config plain;
  plain.failure_penalty = std::chrono::nanoseconds(0);  // Finagle's peak EWMA, no failure penalty
  keel::load_report_weights<>::config lr;
  lr.blackout_period = std::chrono::seconds(2);
  lr.weight_update_period = std::chrono::milliseconds(500);
  return {
      entry<keel::round_robin>("round_robin"),
      entry<keel::smooth_weighted_round_robin>("weighted_round_robin"),
      entry<least_outstanding>("least_outstanding"),
      entry<keel::p2c_least_request>("p2c_least_request"),
      entry<keel::peak_ewma>("peak_ewma", keel::peak_ewma(plain)),
      entry<keel::load_report_weights<>>("load_report", keel::load_report_weights<>(lr)),
      entry<keel::recommended, keel::outlier_detector>("default", keel::recommended{}),
      {"oracle",
       [](const fleet&, keel::manual_clock) -> std::unique_ptr<router> { return std::make_unique<oracle_router>(); }},
  };
}

bool run(const keel_sim::options& opt, keel_sim::report& out) {
  const double duration = opt.quick ? 20.0 : 120.0;
  bool ok = true;
  for (const auto& f : fleets()) {
    if (opt.quick && f.name != "gpu") continue;
    std::string title = "fleet ";
    title += f.name;
    title += ": latency (ms) by load, scenario and strategy";
    auto& t = out.add(title, {"fleet", "load", "scenario", "strategy", "p50_ms", "p99_ms", "p999_ms", "error_rate",
                              "share_of_bad_node", "kept_up", "p99_vs_oracle"});
    for (const double load : {0.60, 0.85, 0.95}) {
      for (const scenario sc : {scenario::steady, scenario::slow, scenario::failfast, scenario::churn}) {
        std::vector<std::pair<std::string, results>> rows;
        for (const auto& s : strategies()) {
          keel::manual_clock clock;
          auto r = s.make(f, clock);
          rows.emplace_back(s.name, simulate(f, load, sc, *r, duration, opt.seed));
          ok = ok && rows.back().second.consistent;
        }
        const double oracle_p99 = rows.back().second.p99;
        for (const auto& [name, res] : rows)
          t.row({f.name, load, std::string(name_of(sc)), name, res.p50, res.p99, res.p999, res.error_rate,
                 res.share_bad, res.kept_up, oracle_p99 > 0 ? res.p99 / oracle_p99 : 0.0});
      }
    }
    t.note =
        "share_of_bad_node: after the change, share sent to the slowed / failing / newly joined node; "
        "p99_vs_oracle: p99 over the oracle's p99 in the same cell";
  }
  return ok;
}

const keel_sim::registration reg{"balance/gpu_fleet",
                                 "balancing strategies on heterogeneous GPU fleets: tail latency, faults, churn", run};

}  // namespace
