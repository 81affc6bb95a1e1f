// What the demo measures about a gateway run, identically for both gateways.
#pragma once

#include "simulation.hpp"
#include "workload.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace demo {

struct route_metrics {
  std::vector<double> latency_ms;                 // served requests: response time seen by the caller
  std::vector<double> completion_ms;              // /batch/summarize: until the summary exists
  std::map<std::string, std::uint64_t> outcomes;  // "200", "429 rate_limited", ...
  std::uint64_t served = 0, rejected = 0, degraded = 0;
  std::uint64_t late = 0;  // served after the caller's deadline: work paid for, answer useless
};

struct replica_sample {
  double t_s;
  std::size_t ready, provisioned;
};

struct run_metrics {
  std::string gateway;
  std::map<route, route_metrics> routes;
  std::map<std::string, std::int64_t> tokens_billed;  // by tenant
  std::uint64_t gpu_calls = 0;
  std::uint64_t embed_requests_served = 0;
  std::uint64_t cache_hits = 0, coalesced = 0;
  std::uint64_t stampede_gpu_calls = 0;  // GPU calls made for the 200 identical "reset my password" embeddings
  std::uint64_t vector_store_calls = 0, vector_store_failures = 0;
  double vector_store_wait_s = 0;  // caller time spent on vector-store calls that failed
  double gpu_hours = 0;
  std::vector<replica_sample> replicas;

  void served(const request& r, int status, time_point done, bool degraded = false) {
    auto& m = routes[r.path];
    ++m.served;
    if (degraded) ++m.degraded;
    ++m.outcomes[std::to_string(status) + (degraded ? " degraded" : "")];
    m.latency_ms.push_back(seconds(done - r.arrival) * 1000);
    if (done > r.deadline) ++m.late;
  }
  void rejected(const request& r, int status, const char* why) {
    auto& m = routes[r.path];
    ++m.rejected;
    ++m.outcomes[std::to_string(status) + " " + why];
  }
  void gpu_call(const request& r) {
    if (r.path == route::embed && r.text == stampede_text) ++stampede_gpu_calls;
  }
  void bill(const request& r, std::int64_t tokens) { tokens_billed[r.tenant] += tokens; }
};

/// The p-th percentile (0..100) by nearest rank; 0 for an empty sample.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

}  // namespace demo
