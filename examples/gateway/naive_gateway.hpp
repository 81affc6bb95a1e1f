// The gateway a team writes first: authenticate, then send every request
// straight to the next GPU in round-robin order. No cache, no limits, no
// breaker, a fixed fleet, batch jobs served inline like any other request.
#pragma once

#include "metrics.hpp"
#include "simulation.hpp"
#include "workload.hpp"

#include <map>
#include <string>
#include <vector>

namespace demo {

class naive_gateway {
 public:
  naive_gateway(event_loop& loop, gpu_fleet& fleet, vector_store& store, const scenario& s, run_metrics& m)
      : loop_(&loop), fleet_(&fleet), store_(&store), metrics_(&m) {
    for (auto& [key, tenant] : api_keys(s)) tenants_[key] = tenant;
  }

  void handle(request r) {
    const auto it = tenants_.find(r.api_key);
    if (it == tenants_.end()) return metrics_->rejected(r, 401, "unauthenticated");
    r.tenant = it->second;
    switch (r.path) {
      case route::embed: return run_on_gpu(std::move(r), 200);
      case route::summarize: return run_on_gpu(std::move(r), 200);
      case route::generate:
        store_->query(2s, [this, r = std::move(r)](bool ok) mutable {
          if (!ok) return metrics_->rejected(r, 502, "vector store timeout");
          run_on_gpu(std::move(r), 200);
        });
        return;
    }
  }

 private:
  std::size_t next_node() {
    const std::size_t n = fleet_->size();
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t id = (cursor_++) % n;
      if (fleet_->node(id).ready(loop_->now())) return id;
    }
    return 0;
  }

  void run_on_gpu(request r, int status) {
    const double work = gpu_work(r.path, r.prompt_tokens, r.output_tokens);
    metrics_->gpu_call(r);
    fleet_->run(next_node(), work, [this, r = std::move(r), status](time_point done) {
      metrics_->served(r, status, done);
      if (r.path == route::summarize)
        metrics_->routes[r.path].completion_ms.push_back(seconds(done - r.arrival) * 1000);
      if (r.path != route::embed) metrics_->bill(r, r.prompt_tokens + r.output_tokens);
    });
  }

  event_loop* loop_;
  gpu_fleet* fleet_;
  vector_store* store_;
  run_metrics* metrics_;
  std::map<std::string, std::string> tenants_;
  std::size_t cursor_ = 0;
};

}  // namespace demo
