// keel inference gateway demo.
//
// Runs one seeded workload — a traffic spike, a greedy tenant, an embedding
// stampede, a vector-store outage — through a naive gateway and through one
// built from keel, on the same simulated GPU fleet, and prints both side by
// side. Deterministic: the same seed prints the same report.
//
//   keel_gateway_demo [--json] [--seed N] [--check]
//
// --check (used by CTest) also verifies the claims docs/gateway.md makes about
// the report, and fails if a change to keel or the demo breaks one of them.
#include "keel_gateway.hpp"
#include "metrics.hpp"
#include "naive_gateway.hpp"
#include "report.hpp"
#include "simulation.hpp"
#include "workload.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

namespace {

using namespace demo;

/// The fleet both gateways start with: two fast GPUs, four slower ones.
void provision(gpu_fleet& fleet) {
  for (int i = 0; i < 2; ++i) fleet.add("h100-" + std::to_string(i), 3.0, 8, 0s);
  for (int i = 0; i < 4; ++i) fleet.add("a10-" + std::to_string(i), 1.0, 8, 0s);
}

/// Calls fn every `period` from `start` until `end`.
void every(event_loop& loop, duration period, time_point end, std::function<void()> fn) {
  auto tick = std::make_shared<std::function<void()>>();
  *tick = [&loop, period, end, fn = std::move(fn), tick_ref = std::weak_ptr(tick)] {
    fn();
    if (loop.now() + period <= end)
      if (auto t = tick_ref.lock()) loop.after(period, [t] { (*t)(); });
  };
  loop.at(loop.now(), [tick] { (*tick)(); });
}

template <class Gateway>
run_metrics run(const char* name, const scenario& s, const std::vector<request>& trace, bool autoscale) {
  sim_clock clock;
  event_loop loop(clock);
  gpu_fleet fleet(loop);
  provision(fleet);
  vector_store store(loop, s.outage_start, s.outage_end);
  run_metrics m;
  m.gateway = name;
  Gateway gateway(loop, fleet, store, s, m);
  for (const request& r : trace) loop.at(r.arrival, [&gateway, r] { gateway.handle(r); });

  const time_point end = time_point(s.length) + 300s;  // the traffic, then time to drain
  every(loop, 30s, end, [&] {
    m.replicas.push_back({seconds(loop.now().time_since_epoch()), fleet.ready_count(), fleet.provisioned_count()});
  });
  if constexpr (requires { gateway.autoscale(); }) {
    if (autoscale) {
      every(loop, 1s, end, [&] { gateway.observe(); });
      every(loop, 15s, end, [&] { gateway.autoscale(); });
    }
  }
  loop.run_until(end);
  if constexpr (requires { gateway.finish(); }) gateway.finish();

  m.gpu_calls = fleet.calls();
  m.gpu_hours = fleet.gpu_hours();
  m.vector_store_calls = store.calls();
  m.vector_store_failures = store.failed();
  m.vector_store_wait_s = seconds(store.waited_on_failures());
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  demo::scenario s;
  bool json = false;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0) {
      json = true;
    } else if (std::strcmp(argv[i], "--check") == 0) {
      check = true;
    } else if (std::strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
      s.seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: keel_gateway_demo [--json] [--seed N] [--check]\n");
      return 2;
    }
  }
  const auto wall_start = std::chrono::steady_clock::now();
  const auto trace = demo::make_trace(s);
  const demo::run_metrics naive = run<demo::naive_gateway>("naive", s, trace, false);
  const demo::run_metrics keel = run<demo::keel_gateway>("keel", s, trace, true);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();

  const demo::report_input in{&s, {&naive, &keel}, wall};
  json ? demo::print_json(in) : demo::print_report(in);
  return check ? demo::check_claims(s, naive, keel) : 0;
}
