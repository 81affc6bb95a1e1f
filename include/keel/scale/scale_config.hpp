// keel/scale/scale_config.hpp — what an autoscaler scales on, and how fast.
//
// The defaults are those of the Kubernetes HorizontalPodAutoscaler (autoscaling/v2),
// so a configuration that sets only the metrics and the replica bounds behaves as
// an HPA would; what keel adds beyond HPA (Knative-style panic mode, KEDA-style
// scale to zero, a cold-start model, collapse release, square-root headroom)
// is off until asked for. docs/autoscaling.md has the table of every default
// with its HPA / Knative / KEDA equivalent.
//
//   keel::autoscaler_config cfg;
//   cfg.min_replicas = 1;
//   cfg.max_replicas = 64;
//   cfg.metrics = {
//       {.name = "queue_depth", .target = 4, .kind = keel::metric_kind::total, .backlog = true},
//       {.name = "in_flight", .target = 6},                       // average per ready replica
//       {.name = "kv_cache", .target = 0.8, .utilisation = true},  // fraction of capacity
//   };
//   cfg.panic.enabled = true;                                      // Knative: burst → scale now
//   cfg.cold_start.startup_delay = std::chrono::minutes(2);        // model load time
#pragma once

#include <keel/core/detail/fatal.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace keel {

/// How a metric reading relates to replicas.
enum class metric_kind : std::uint8_t {
  /// The average over the ready replicas that reported it (HPA "Pods" and
  /// "Resource" metrics): in-flight requests per replica, KV-cache or GPU
  /// utilisation. desired = ceil(reporting × value / target), with HPA's
  /// handling of not-ready replicas and replicas without a reading.
  average,
  /// One number for the whole fleet, with a per-replica target (HPA "External"
  /// metric with an AverageValue target): a central queue's depth, the
  /// requests a balancer has outstanding. desired = ceil(value / target).
  total,
};

/// One metric the autoscaler scales on. Readings come in the observation, in
/// the same order as the specs here.
struct metric_spec {
  std::string name;   ///< names the metric in decisions ("queue_depth")
  double target = 0;  ///< the per-replica value to hold (> 0)
  metric_kind kind = metric_kind::average;
  /// A utilisation (1.0 = 100% of a replica's capacity, as HPA's resource
  /// metrics): on scale-down, replicas without a reading are assumed fully
  /// used (HPA: 100% of the request) instead of exactly at target.
  bool utilisation = false;
  /// KEDA's activationThreshold: at zero replicas, a reading above this wakes
  /// the fleet; with every reading at or below it for `scale_to_zero.cooldown`,
  /// the fleet goes back to zero. Used only when min_replicas is 0.
  double activation = 0;
  /// The reading is accumulated work (queue depth), not a rate or a level of
  /// concurrency, and `target` is the backlog one replica should drain
  /// (its throughput × the drain time you accept). Next to other metrics it
  /// adds the whole replicas that drain it to what they ask for, instead of
  /// competing with them for the maximum; alone it is an ordinary HPA metric.
  /// Those drain replicas stay out of the stabilisation windows: once the
  /// backlog is drained they go at once, while the rest of the fleet is held.
  /// With the cold-start model on, a backlog that grows while replicas
  /// ordered for it are starting does not add replicas: they will serve it.
  bool backlog = false;
  /// Square-root staffing (Halfin–Whitt) for a metric_kind::total rate that
  /// is not a backlog: with R = value / target, ask for R + headroom·√R
  /// replicas instead of R. Set `target` to what one replica serves at full
  /// throughput and `headroom` (β) to about 1: a small fleet then keeps a
  /// larger share spare than a large one, where a fixed target below full
  /// throughput (HPA) keeps the same share in every fleet. 0: off (HPA).
  double headroom = 0;
};

/// HPA's HPAScalingPolicy: at most `value` pods, or `value` percent of the
/// replicas at the start of the period, may be added (or removed) per period.
struct scaling_policy {
  enum class type : std::uint8_t { pods, percent };
  type kind = type::pods;
  std::int32_t value = 0;                                      ///< > 0
  std::chrono::nanoseconds period = std::chrono::seconds(15);  ///< HPA periodSeconds, in (0, 30 min]

  static scaling_policy pods(std::int32_t n, std::chrono::nanoseconds per) { return {type::pods, n, per}; }
  static scaling_policy percent(std::int32_t p, std::chrono::nanoseconds per) { return {type::percent, p, per}; }
};

/// HPA's selectPolicy: which policy limit applies when several do.
enum class select_policy : std::uint8_t {
  max,       ///< the policy that allows the largest change (HPA default)
  min,       ///< the policy that allows the smallest change
  disabled,  ///< no scaling in this direction at all
};

/// HPA's HPAScalingRules for one direction, plus its tolerance.
struct scaling_rules {
  /// Scale-down: the highest recommendation within the window is used;
  /// scale-up: the lowest (HPA stabilizationWindowSeconds).
  std::chrono::nanoseconds stabilization_window{0};
  select_policy select = select_policy::max;
  std::vector<scaling_policy> policies;
  /// No change while |1 − value/target| is within this (HPA's
  /// --horizontal-pod-autoscaler-tolerance, default 0.1; per direction as
  /// in HPA's configurable tolerance, Kubernetes 1.33).
  double tolerance = 0.1;

  /// HPA's default scale-up: no window; the larger of +100% and +4 pods per 15 s.
  static scaling_rules hpa_scale_up() {
    using std::chrono::seconds;
    return {seconds(0),
            select_policy::max,
            {scaling_policy::percent(100, seconds(15)), scaling_policy::pods(4, seconds(15))},
            0.1};
  }
  /// HPA's default scale-down: a 300 s window; up to 100% per 15 s.
  static scaling_rules hpa_scale_down() {
    using std::chrono::seconds;
    return {seconds(300), select_policy::max, {scaling_policy::percent(100, seconds(15))}, 0.1};
  }
};

/// Knative's panic mode: when demand over the short panic window reaches
/// `threshold` × the ready replicas, scale up at once (no rate limit, no
/// stabilisation) and never down; leave after a stable window without that.
struct panic_config {
  bool enabled = false;
  std::chrono::nanoseconds stable_window = std::chrono::seconds(60);  ///< Knative stable-window
  double window_fraction = 0.1;                                       ///< Knative panic-window-percentage (10% → 6 s)
  double threshold = 2.0;                                             ///< Knative panic-threshold-percentage (200%)
};

/// keel: a faster scale-down once demand has clearly collapsed, unless the
/// load oscillates. Demand has collapsed when every recommendation of the
/// last `window` (at least cold_start.startup_delay: a released replica takes
/// that long to come back) is at most `fraction` of the highest in the
/// scale-down stabilisation window; the scale-down then follows that short
/// window instead of HPA's long one. The long window exists against
/// flapping, so it comes back as soon as a collapse turns out to be a dip:
/// when, within the long window after a collapse, the recommendation climbs
/// back over halfway to where it fell from, the load oscillates, and for one
/// long window after that rebound the fleet is sized for the cycle: the
/// highest load of two long windows (before headroom) plus the scale-up
/// tolerance, up and down, in place of HPA's window (a load whose period
/// lies between one window and two flaps once a cycle under HPA's window
/// alone). HPA's 300 s window is most of the idle GPU time after a burst; a
/// sawtooth is what it is for.
struct collapse_config {
  bool enabled = false;
  std::chrono::nanoseconds window = std::chrono::seconds(60);  ///< the scale-down window after a collapse
  double fraction = 0.5;                                       ///< collapsed: at most this share of the peak
};

/// KEDA's scale to zero; active only when min_replicas is 0.
struct scale_to_zero_config {
  std::chrono::nanoseconds cooldown = std::chrono::seconds(300);  ///< KEDA cooldownPeriod
};

/// The cold-start model: new replicas take `startup_delay` (model load) to
/// serve. 0 turns it off (HPA behaviour).
struct cold_start_config {
  std::chrono::nanoseconds startup_delay{0};
};

struct autoscaler_config {
  std::int32_t min_replicas = 1;  ///< HPA minReplicas (default 1); 0 enables scale to zero
  std::int32_t max_replicas = 0;  ///< HPA maxReplicas: required, ≥ 1 and ≥ min_replicas
  std::vector<metric_spec> metrics;
  scaling_rules scale_up = scaling_rules::hpa_scale_up();
  scaling_rules scale_down = scaling_rules::hpa_scale_down();
  panic_config panic;
  collapse_config collapse;
  scale_to_zero_config scale_to_zero;
  cold_start_config cold_start;

  /// Rejects an invalid configuration (keel::config_error, or abort without
  /// exceptions) with a message naming the field.
  void validate() const {
    using detail::require_config;
    require_config(min_replicas >= 0, "keel::autoscaler: min_replicas must not be negative");
    require_config(max_replicas >= 1, "keel::autoscaler: max_replicas must be at least 1");
    require_config(min_replicas <= max_replicas, "keel::autoscaler: min_replicas must not exceed max_replicas");
    require_config(!metrics.empty(), "keel::autoscaler: metrics must name at least one metric");
    for (const metric_spec& m : metrics) {
      require_config(std::isfinite(m.target) && m.target > 0,
                     "keel::autoscaler: metrics[].target must be positive and finite");
      require_config(std::isfinite(m.activation) && m.activation >= 0,
                     "keel::autoscaler: metrics[].activation must be finite and not negative");
      require_config(std::isfinite(m.headroom) && m.headroom >= 0,
                     "keel::autoscaler: metrics[].headroom must be finite and not negative");
      require_config(
          m.headroom == 0 || (m.kind == metric_kind::total && !m.backlog),
          "keel::autoscaler: metrics[].headroom must be 0 unless the metric is a total that is not a backlog");
    }
    validate_rules(scale_up, "keel::autoscaler: scale_up.stabilization_window must be in [0, 1 h]",
                   "keel::autoscaler: scale_up.policies must not be empty unless select is disabled",
                   "keel::autoscaler: scale_up.policies[].value must be positive",
                   "keel::autoscaler: scale_up.policies[].period must be in (0, 30 min]",
                   "keel::autoscaler: scale_up.tolerance must be finite and in [0, 1)");
    validate_rules(scale_down, "keel::autoscaler: scale_down.stabilization_window must be in [0, 1 h]",
                   "keel::autoscaler: scale_down.policies must not be empty unless select is disabled",
                   "keel::autoscaler: scale_down.policies[].value must be positive",
                   "keel::autoscaler: scale_down.policies[].period must be in (0, 30 min]",
                   "keel::autoscaler: scale_down.tolerance must be finite and in [0, 1)");
    require_config(panic.stable_window > std::chrono::nanoseconds::zero(),
                   "keel::autoscaler: panic.stable_window must be positive");
    require_config(std::isfinite(panic.window_fraction) && panic.window_fraction > 0 && panic.window_fraction <= 1,
                   "keel::autoscaler: panic.window_fraction must be in (0, 1]");
    require_config(std::isfinite(panic.threshold) && panic.threshold > 1,
                   "keel::autoscaler: panic.threshold must be finite and above 1");
    require_config(collapse.window >= std::chrono::nanoseconds::zero() && collapse.window <= std::chrono::hours(1),
                   "keel::autoscaler: collapse.window must be in [0, 1 h]");
    require_config(std::isfinite(collapse.fraction) && collapse.fraction > 0 && collapse.fraction < 1,
                   "keel::autoscaler: collapse.fraction must be in (0, 1)");
    require_config(scale_to_zero.cooldown >= std::chrono::nanoseconds::zero(),
                   "keel::autoscaler: scale_to_zero.cooldown must not be negative");
    require_config(cold_start.startup_delay >= std::chrono::nanoseconds::zero(),
                   "keel::autoscaler: cold_start.startup_delay must not be negative");
  }

 private:
  // HPA's validation: windows up to 3600 s, periods in (0, 1800] s, values > 0.
  static void validate_rules(const scaling_rules& r, const char* window, const char* empty, const char* value,
                             const char* period, const char* tolerance) {
    using detail::require_config;
    require_config(
        r.stabilization_window >= std::chrono::nanoseconds::zero() && r.stabilization_window <= std::chrono::hours(1),
        window);
    require_config(r.select == select_policy::disabled || !r.policies.empty(), empty);
    for (const scaling_policy& p : r.policies) {
      require_config(p.value > 0, value);
      require_config(p.period > std::chrono::nanoseconds::zero() && p.period <= std::chrono::minutes(30), period);
    }
    require_config(std::isfinite(r.tolerance) && r.tolerance >= 0 && r.tolerance < 1, tolerance);
  }
};

}  // namespace keel
