// keel/balance/load_report.hpp — weights from the load the nodes report.
//
// Static weights say what a node can do; a load report says what it is
// doing. Nodes (or a sidecar) report qps, errors, utilisation, queue depth,
// running requests, KV-cache and GPU utilisation, per call (lease.report_load)
// or out of band (balancer.report_load(id, report)). A scoring function turns
// a report into a weight, and picks follow those weights in EDF order.
//
// This is gRPC's weighted_round_robin (gRFC A58) generalised:
//  * default score (orca_weight): qps / (utilization + eps / qps × penalty);
//    a report with no qps or no utilisation carries no weight and is ignored;
//  * blackout_period (10 s): a node's weight is used only after it has been
//    reporting for that long, so one lucky report cannot draw a flood;
//  * weight_expiration_period (3 min): a node that stopped reporting loses
//    its weight and must sit out a new blackout when it resumes;
//  * nodes without a usable weight get the mean of those that have one;
//    with fewer than two usable weights every node gets the same weight;
//  * weights are recomputed every weight_update_period (1 s).
//
// Any callable `double(const keel::load_report&)` can score instead, e.g. the
// Gateway API inference extension's queue / KV-cache scorer:
//
//   auto score = [](const keel::load_report& r) {
//     return 1.0 / (1.0 + 2.0 * r.queue_depth + 2.0 * r.kv_cache);
//   };
//   keel::balancer<gpu, keel::load_report_weights<decltype(score)>> lb({}, {{}, score});
//   if (auto lease = lb.pick()) { ...; lease->report_load(reply.load); lease->success(); }
#pragma once

#include <keel/balance/detail/cycle_table.hpp>
#include <keel/core/detail/fatal.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>

namespace keel {

/// What a node says about its load (fields it does not know stay 0).
struct load_report {
  double qps = 0;          ///< calls served per second, all outcomes
  double eps = 0;          ///< failed calls per second
  double utilization = 0;  ///< how busy the node says it is, 1 = saturated (ORCA application_utilization)
  double queue_depth = 0;  ///< calls waiting for a batch slot
  double running = 0;      ///< calls in the running batch
  double kv_cache = 0;     ///< KV-cache utilisation, 0..1
  double gpu = 0;          ///< GPU duty cycle, 0..1 (near 1 whenever a batch runs: a poor load signal)
};

/// gRPC A58's weight: qps / (utilization + eps / qps × error_utilization_penalty).
struct orca_weight {
  double error_utilization_penalty = 1.0;

  double operator()(const load_report& r) const noexcept {
    if (!(r.qps > 0) || !(r.utilization > 0)) return 0;
    return r.qps / (r.utilization + r.eps / r.qps * error_utilization_penalty);
  }
};

template <class Score = orca_weight>
class load_report_weights {
 public:
  struct config {
    std::chrono::nanoseconds blackout_period = std::chrono::seconds(10);
    std::chrono::nanoseconds weight_expiration_period = std::chrono::minutes(3);
    std::chrono::nanoseconds weight_update_period = std::chrono::seconds(1);
    std::size_t max_cycle = 1024;

    void validate() const {
      detail::require_config(blackout_period.count() >= 0,
                             "keel::load_report_weights: blackout_period must not be negative");
      detail::require_config(weight_expiration_period.count() > 0,
                             "keel::load_report_weights: weight_expiration_period must be positive");
      detail::require_config(weight_update_period.count() > 0,
                             "keel::load_report_weights: weight_update_period must be positive");
      detail::require_config(max_cycle >= 1 && max_cycle <= (std::size_t{1} << 24),
                             "keel::load_report_weights: max_cycle must be in [1, 2^24]");
    }
  };

  struct node_state {
    std::atomic<double> weight{0};
    std::atomic<std::int64_t> non_empty_since{0};  ///< 0: no usable report in this streak
    std::atomic<std::int64_t> last_update{0};
  };

  class table {
   public:
    template <class View>
    table(const load_report_weights& s, const View& v)
        : scheduler_(s.config_.max_cycle, detail::cycle_order::edf, s.config_.weight_update_period.count()) {
      s.rebuild(scheduler_, v);
    }

   private:
    friend class load_report_weights;
    detail::cycle_scheduler scheduler_;
  };

  load_report_weights() : load_report_weights(config{}) {}
  explicit load_report_weights(const config& c, Score score = {}) : config_(c), score_(std::move(score)) {
    c.validate();
  }

  template <class View>
  std::size_t pick(table& t, const View& v) const {
    return t.scheduler_.pick(v, weigher<View>{this}, always);
  }

  /// Takes a report. If the scoring function throws, nothing changes.
  void report(node_state& s, const load_report& r, std::int64_t now_ns) const {
    const double w = std::invoke(score_, r);
    if (!(w > 0) || !std::isfinite(w)) return;  // carries no weight (gRPC ignores such reports)
    const std::int64_t last = s.last_update.load(std::memory_order_relaxed);
    const bool fresh_streak = s.non_empty_since.load(std::memory_order_relaxed) == 0 ||
                              now_ns - last >= config_.weight_expiration_period.count();
    if (fresh_streak) s.non_empty_since.store(std::max<std::int64_t>(1, now_ns), std::memory_order_relaxed);
    s.weight.store(w, std::memory_order_relaxed);
    s.last_update.store(now_ns, std::memory_order_relaxed);
  }

  /// The weight node i would get now, or 0 when it has none (blacked out, expired, never reported).
  template <class View>
  double reported_weight(const View& v, std::size_t i) const noexcept {
    const node_state& s = v.state(i);
    const std::int64_t now = v.now();
    const std::int64_t since = s.non_empty_since.load(std::memory_order_relaxed);
    const std::int64_t last = s.last_update.load(std::memory_order_relaxed);
    if (since == 0 || now - last >= config_.weight_expiration_period.count()) return 0;
    if (now - since < config_.blackout_period.count()) return 0;
    return s.weight.load(std::memory_order_relaxed);
  }

 private:
  static constexpr auto always = [](const auto&) { return true; };

  template <class View>
  void rebuild(detail::cycle_scheduler& scheduler, const View& v) const {
    scheduler.rebuild(v, weigher<View>{this}, always);
  }

  /// The weight of node i for a rebuild: its reported weight, else the mean
  /// of the reported ones; equal weights when fewer than two nodes have one;
  /// times the slow-start ramp. The mean is computed once per rebuild.
  template <class View>
  struct weigher {
    const load_report_weights* self;
    double mean = -1;

    double operator()(const View& v, std::size_t i) {
      if (mean < 0) {
        double sum = 0;
        std::size_t valid = 0;
        for (std::size_t k = 0; k < v.size(); ++k)
          if (const double w = self->reported_weight(v, k); w > 0) {
            sum += w;
            ++valid;
          }
        mean = valid < 2 ? 0 : sum / static_cast<double>(valid);
      }
      const double ramp = v.weight(i) / v.configured_weight(i);
      if (mean == 0) return ramp;
      const double w = self->reported_weight(v, i);
      return (w > 0 ? w : mean) * ramp;
    }
  };

  config config_;
  Score score_;
};

}  // namespace keel
