// The same gateway built from keel: every pattern in one place.
//
// Each route is a keel::pipeline, outermost layer first:
//
//   /embed            authenticate → deadline → embedding cache (single flight) → GPU
//   /generate         authenticate → deadline → token budget (reserve) →
//                     fallback(circuit_open → answer without retrieved context) →
//                     vector-store breaker → retrieval, then GPU
//   /batch/summarize  authenticate → token budget (reserve) → bounded queue (202 or 503)
//
// and behind them: a balancer over the heterogeneous fleet (keel::recommended:
// peak EWMA over candidates drawn by GPU speed, with outlier ejection), batch workers draining the
// queue with pop_batch, and the autoscaler resizing the fleet every 15 s from
// in-flight requests and queue depth.
//
// The calls are asynchronous (the simulated GPUs answer later), which is the
// case keel's admit-then-record protocol is built for: each layer admits and
// leaves its permit in the call's context — a token reservation, a breaker
// permit, a balancer lease, a cache load permit — and the completion handler
// records on them when the GPU or the vector store answers. Layers that need
// a permit are small lambdas over keel components; the generic ones are
// keel's own (authenticate, deadline, fallback).
#pragma once

#include "metrics.hpp"
#include "simulation.hpp"
#include "workload.hpp"

#include <keel/balance/balancer.hpp>
#include <keel/balance/recommended.hpp>
#include <keel/breaker/circuit_breaker.hpp>
#include <keel/cache/cache.hpp>
#include <keel/core/authenticate.hpp>
#include <keel/core/deadline.hpp>
#include <keel/core/fallback.hpp>
#include <keel/core/pipeline.hpp>
#include <keel/limit/keyed.hpp>
#include <keel/queue/mpmc_queue.hpp>
#include <keel/scale/autoscaler.hpp>
#include <keel/scale/metric_source.hpp>

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace demo {

class keel_gateway {
  struct gpu {
    std::size_t fleet_id;
  };
  struct embedding {
    std::uint64_t fingerprint;
  };
  struct accepted {};  // the reply will follow asynchronously

  using token_limiter = keel::keyed_limiter<std::string, sim_clock>;
  using embedding_cache = keel::cache<std::string, embedding, keel::w_tinylfu, sim_clock>;
  using store_breaker = keel::circuit_breaker<keel::count_window, sim_clock>;
  using gpu_balancer = keel::balancer<gpu, keel::recommended, keel::outlier_detector, sim_clock>;

  /// One request in flight, with every permit it holds until it completes.
  struct call : std::enable_shared_from_this<call> {
    request req;
    time_point deadline;  // read by keel::deadline
    std::optional<token_limiter::reservation> tokens;
    std::optional<store_breaker::permit> retrieval;
    std::optional<gpu_balancer::lease> gpu_lease;
    std::optional<embedding_cache::load_permit> embedding_load;
    bool degraded = false;
  };
  using call_ptr = std::shared_ptr<call>;

 public:
  keel_gateway(event_loop& loop, gpu_fleet& fleet, vector_store& store, const scenario& s, run_metrics& m)
      : loop_(&loop),
        fleet_(&fleet),
        store_(&store),
        metrics_(&m),
        tokens_(keel::rate_limit::per_minute(static_cast<double>(s.tenant_tokens_per_minute)), {}, loop.time()),
        embeddings_(keel::cache_config{.capacity = 4096, .shards = 4, .expire_after_write = 1h}, loop.time()),
        store_breaker_(store_breaker_config(), keel::count_window{50}, loop.time()),
        gpus_({}, keel::recommended(), {}, loop.time()),
        batch_queue_(64, loop.time()),
        scaler_(autoscaler_config()) {
    for (auto& [key, tenant] : api_keys(s)) api_keys_[key] = tenant;
    for (std::size_t id = 0; id < fleet.size(); ++id) attach(id);
    build_routes();
  }

  void handle(request r) {
    auto c = std::make_shared<call>();
    c->deadline = r.deadline;
    c->req = std::move(r);
    auto& service = c->req.path == route::embed ? embed_ : c->req.path == route::generate ? generate_ : summarize_;
    if (auto admitted = service(*c); !admitted) refuse(*c, admitted.error());
  }

  /// Called every second: the controller averages in-flight requests over its
  /// period, as a metrics pipeline would, rather than act on one instant.
  void observe() {
    in_flight_sum_ += keel::in_flight(gpus_).value;
    ++in_flight_samples_;
  }

  /// The controller loop: every 15 s, read the fleet and act on the decision.
  void autoscale() {
    const auto current = static_cast<std::int32_t>(fleet_->provisioned_count());
    const auto ready = static_cast<std::int32_t>(fleet_->ready_count());
    keel::metric_sample in_flight = keel::in_flight(gpus_);
    if (in_flight_samples_ > 0) in_flight.value = in_flight_sum_ / in_flight_samples_;
    in_flight_sum_ = 0;
    in_flight_samples_ = 0;
    const std::array<keel::metric_sample, 2> readings{in_flight, keel::queue_depth(batch_queue_)};
    const keel::scale_decision d =
        scaler_.recommend(loop_->now(), {.current = current, .ready = ready, .metrics = readings});
    for (std::int32_t i = 0; i < d.change(); ++i) {
      const std::size_t id = fleet_->add("a10-auto-" + std::to_string(fleet_->size()), 1.0, 8, 60s);
      loop_->at(fleet_->node(id).ready_at, [this, id] { attach(id); });
    }
    for (std::int32_t i = 0; i > d.change(); --i) retire_one();
  }

  /// Copies what only the gateway knows into the run's metrics.
  void finish() {
    const auto cs = embeddings_.stats();
    metrics_->cache_hits = cs.hits;
    metrics_->coalesced = cs.coalesced_waits;
  }

 private:
  // --- the routes: one pipeline each, built once ------------------------------

  void build_routes() {
    auto authenticate = keel::authenticate([this](call& c) {
      const auto it = api_keys_.find(c.req.api_key);
      if (it == api_keys_.end()) return false;
      c.req.tenant = it->second;
      return true;
    });
    auto reserve_tokens = [this](call& c, auto&& next) { return this->reserve_tokens(c, next); };

    embed_ = keel::pipeline(authenticate, keel::deadline(20ms, loop_->time()), [this](call& c, auto&& next) {
               return cached_embedding(c, next);
             }).bind([this](call& c) { return compute_embedding(c); });

    generate_ =
        keel::pipeline(authenticate, keel::deadline(500ms, loop_->time()), reserve_tokens,
                       // The vector store is failing fast: answer from the model alone.
                       keel::fallback([this](call& c, const keel::rejection&) { return generate(c, false); },
                                      [](const keel::rejection& r) { return r.code == keel::errc::circuit_open; }),
                       [this](call& c, auto&& next) -> keel::next_result_t<decltype(next), call> {
                         auto permit = store_breaker_.try_acquire_timed();
                         if (!permit) return permit.error();  // circuit_open: the fallback above answers
                         c.retrieval = std::move(*permit);
                         return next(c);
                       })
            .bind([this](call& c) { return retrieve_then_generate(c); });

    summarize_ = keel::pipeline(authenticate, reserve_tokens).bind([this](call& c) -> keel::result<accepted> {
      if (auto pushed = batch_queue_.try_push(c.shared_from_this()); !pushed) return pushed.error();  // 503
      metrics_->served(c.req, 202, loop_->now());
      wake_batch_workers();
      return accepted{};
    });
  }

  // --- layers that hold a permit until the call completes -----------------------

  template <class Next>
  keel::result<accepted> reserve_tokens(call& c, Next& next) {
    auto reservation = tokens_.reserve(c.req.tenant, c.req.prompt_tokens + c.req.max_tokens);
    if (!reservation) return reservation.error();  // 429 + Retry-After
    c.tokens = std::move(*reservation);
    auto r = next(c);
    if (!r) c.tokens->settle(0);  // refused below: refund the estimate
    return r;
  }

  template <class Next>
  keel::result<accepted> cached_embedding(call& c, Next& next) {
    auto ticket = embeddings_.begin_load(c.req.text);
    call_ptr self = c.shared_from_this();
    ticket.result.on_ready([this, self](const keel::result<embedding>& e) {
      if (e) {
        metrics_->served(self->req, 200, loop_->now());
      } else {
        refuse(*self, e.error());
      }
    });
    if (!ticket.permit.active()) return accepted{};  // a hit, or someone else is computing it
    c.embedding_load = std::move(ticket.permit);
    auto r = next(c);
    if (!r) c.embedding_load->complete(r.error());  // every waiter learns why
    return accepted{};
  }

  // --- terminals ----------------------------------------------------------------

  keel::result<accepted> compute_embedding(call& c) {
    call_ptr self = c.shared_from_this();
    return run_on_gpu(c, gpu_work(route::embed, 0, 0), [self](time_point) {
      self->embedding_load->complete(embedding{std::hash<std::string>{}(self->req.text)});
    });
  }

  keel::result<accepted> retrieve_then_generate(call& c) {
    call_ptr self = c.shared_from_this();
    store_->query(2s, [this, self](bool ok) {
      ok ? self->retrieval->success() : self->retrieval->failure();
      if (auto r = generate(*self, ok); !r) {  // with or without context: no GPU could take it
        self->tokens->settle(0);
        refuse(*self, r.error());
      }
    });
    return accepted{};
  }

  keel::result<accepted> generate(call& c, bool with_context) {
    c.degraded = !with_context;
    call_ptr self = c.shared_from_this();
    return run_on_gpu(c, gpu_work(route::generate, c.req.prompt_tokens, c.req.output_tokens),
                      [this, self](time_point done) {
                        const int used = self->req.prompt_tokens + self->req.output_tokens;
                        self->tokens->settle(used);  // charge what was used, not what was asked
                        metrics_->bill(self->req, used);
                        metrics_->served(self->req, 200, done, self->degraded);
                      });
  }

  /// Picks a GPU, runs `work` there, records the outcome on the lease.
  keel::result<accepted> run_on_gpu(call& c, double work, std::function<void(time_point)> done) {
    auto lease = gpus_.pick();
    if (!lease) return lease.error();  // no_backend → 503
    c.gpu_lease = std::move(*lease);
    metrics_->gpu_call(c.req);
    call_ptr self = c.shared_from_this();
    fleet_->run(c.gpu_lease->node().fleet_id, work, [self, done = std::move(done)](time_point t) {
      self->gpu_lease->success();  // latency measured by the lease on the simulated clock
      done(t);
    });
    return accepted{};
  }

  // --- batch workers: one lane per ready replica, draining with pop_batch ---------

  void wake_batch_workers() {
    while (busy_lanes_ < static_cast<int>(fleet_->ready_count()) && batch_queue_.size() > 0) {
      ++busy_lanes_;
      loop_->after(0s, [this] { run_batch(); });
    }
  }

  void run_batch() {
    std::vector<call_ptr> batch;
    batch.reserve(4);
    auto out = std::back_inserter(batch);
    if (!batch_queue_.try_pop_batch(out, 4)) {
      --busy_lanes_;
      return;
    }
    auto remaining = std::make_shared<std::size_t>(batch.size());
    for (call_ptr& job : batch) {
      call_ptr self = job;
      auto started = run_on_gpu(
          *job, gpu_work(route::summarize, job->req.prompt_tokens, job->req.output_tokens),
          [this, self, remaining](time_point done) {
            const int used = self->req.prompt_tokens + self->req.output_tokens;
            self->tokens->settle(used);
            metrics_->bill(self->req, used);
            metrics_->routes[route::summarize].completion_ms.push_back(seconds(done - self->req.arrival) * 1000);
            if (--*remaining == 0) lane_done();
          });
      if (!started) {
        job->tokens->settle(0);
        ++metrics_->routes[route::summarize].outcomes["202 then lost: no backend"];
        if (--*remaining == 0) lane_done();
      }
    }
  }

  void lane_done() {
    --busy_lanes_;
    wake_batch_workers();
  }

  // --- fleet membership ---------------------------------------------------------

  void attach(std::size_t fleet_id) {
    const gpu_node& n = fleet_->node(fleet_id);
    if (n.retired) return;
    members_[fleet_id] = gpus_.add(gpu{fleet_id}, n.speed);
    wake_batch_workers();
  }

  /// Scale-down: the newest auto-scaled A10 stops taking calls and is billed no more
  /// once it has finished what it runs (the simulated fleet lets it finish).
  void retire_one() {
    for (std::size_t id = fleet_->size(); id-- > base_nodes_;) {
      if (fleet_->node(id).retired) continue;
      if (auto it = members_.find(id); it != members_.end()) {
        gpus_.drain(it->second);
        gpus_.remove(it->second);
        members_.erase(it);
      }
      fleet_->retire(id);
      return;
    }
  }

  void refuse(call& c, const keel::rejection& why) {
    metrics_->rejected(c.req, keel::http_status(why.code), keel::to_string(why.code));
  }

  static keel::breaker_config store_breaker_config() {
    keel::breaker_config cfg;
    cfg.minimum_calls = 20;
    cfg.failure_rate_threshold = 50;
    cfg.slow_call_duration = 1s;
    cfg.open_duration = 5s;
    cfg.max_open_duration = 20s;  // back off, but notice a recovered store within 20 s
    cfg.jitter_seed = 7;          // deterministic backoff jitter
    return cfg;
  }

  static keel::autoscaler_config autoscaler_config() {
    keel::autoscaler_config cfg;
    cfg.min_replicas = 6;  // the reserved fleet; the autoscaler adds A10s on top
    cfg.max_replicas = 12;
    // Six of a replica's eight batch slots busy, on average over 15 s.
    cfg.metrics = {{.name = "in_flight", .target = 6, .kind = keel::metric_kind::total},
                   {.name = "batch_queue", .target = 2, .kind = keel::metric_kind::total, .backlog = true}};
    // A GPU replica costs by the hour and loads its model in a minute: give
    // capacity back after 2 minutes of lower demand instead of HPA's 5.
    cfg.scale_down.stabilization_window = 120s;
    cfg.panic.enabled = true;
    cfg.cold_start.startup_delay = 60s;
    return cfg;
  }

  event_loop* loop_;
  gpu_fleet* fleet_;
  vector_store* store_;
  run_metrics* metrics_;
  std::map<std::string, std::string> api_keys_;

  token_limiter tokens_;
  embedding_cache embeddings_;
  store_breaker store_breaker_;
  gpu_balancer gpus_;
  keel::mpmc_queue<call_ptr, sim_clock> batch_queue_;
  keel::autoscaler<sim_clock> scaler_;
  std::function<keel::result<accepted>(call&)> embed_, generate_, summarize_;

  double in_flight_sum_ = 0;
  int in_flight_samples_ = 0;
  std::map<std::size_t, keel::node_id> members_;
  std::size_t base_nodes_ = 2;  // the two H100s are never scaled down
  int busy_lanes_ = 0;
};

}  // namespace demo
