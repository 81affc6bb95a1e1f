// keel/scale/autoscaler.hpp — how many replicas an inference fleet should run.
//
// autoscaler is a pure, deterministic scale policy: a controller (Kubernetes
// operator, cloud API, in-process worker pool) calls recommend(now,
// observation) every few seconds (HPA: 15 s) with the replica counts and the
// metric readings, and acts on the decision: desired replicas plus the reason
// (which metric drove it, which rule limited it). It starts no thread and
// reads no clock: time comes only through `now`, so a replay of the same
// observations gives the same decisions, and tests are exact.
//
//   keel::autoscaler_config cfg;
//   cfg.max_replicas = 32;
//   cfg.metrics = {{.name = "queue_depth", .target = 8, .kind = keel::metric_kind::total},
//                  {.name = "kv_cache", .target = 0.7, .utilisation = true}};
//   keel::autoscaler<> scaler{cfg};
//   std::array<keel::metric_sample, 2> readings{keel::queue_depth(queue), kv_cache_average};
//   auto d = scaler.recommend(std::chrono::steady_clock::now(), {.current = n, .ready = up, .metrics = readings});
//   if (d.replicas != n) fleet.resize(d.replicas);   // d.reason says why
//
// The algorithm is Kubernetes' HorizontalPodAutoscaler (autoscaling/v2),
// rule for rule (pkg/controller/podautoscaler: replica_calculator.go and
// horizontal.go):
//  1. per metric, desired = ceil(replicas × value / target); no change while
//     the ratio value/target is within the tolerance band; readings missing
//     for some ready replicas count as 100% of target on a scale-down and 0 on
//     a scale-up, not-ready replicas count as 0 on a scale-up, and a
//     recommendation that these assumptions would turn against the direction
//     of the data is dropped (no change);
//  2. the maximum over metrics; with a metric missing, no scale-down, and
//     with all missing, no change;
//  3. stabilisation: the highest recommendation of the scale-down window
//     (300 s) and the lowest of the scale-up window (0 s) bound the result
//     (replicas added to drain a backlog metric stay out of the windows);
//  4. scaling policies (pods or percent per period, select max/min/disabled)
//     limit the change against the scale events of each period, and
//     min/max replicas bound it.
// Beyond HPA, each off by default (see scale_config.hpp): Knative's panic mode,
// KEDA's scale to zero with an activation threshold and a cooldown, a
// cold-start model that does not add replicas for backlog that replicas still
// loading their model will serve, a faster scale-down once demand has
// collapsed, unless the load oscillates (collapse_config), and square-root
// staffing for a rate metric (metric_spec::headroom).
//
// recommend() assumes its decision is applied: a decision that changes the
// count is recorded as a scale event, which the policies count. Not
// thread-safe: one controller owns an autoscaler (as one HPA controller owns
// a target); wrap it in a mutex if several threads must call it.
#pragma once

#include <keel/core/clock.hpp>
#include <keel/scale/detail/timed_log.hpp>
#include <keel/scale/scale_config.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

namespace keel {

/// One reading of one metric. A NaN, infinite or negative value is missing
/// data, and the autoscaler treats it as HPA treats a metric it cannot fetch.
struct metric_sample {
  double value = std::numeric_limits<double>::quiet_NaN();
  /// For metric_kind::average: how many ready replicas the average is over
  /// (-1: all ready replicas). Ready replicas without a reading are HPA's
  /// "missing pods".
  std::int32_t reporting = -1;

  constexpr metric_sample() noexcept = default;
  constexpr metric_sample(double v, std::int32_t reporting_replicas = -1) noexcept  // NOLINT: implicit by design
      : value(v), reporting(reporting_replicas) {}
  /// A reading that could not be taken.
  static constexpr metric_sample missing() noexcept { return metric_sample(); }
};

/// What the controller sees at one evaluation.
struct scale_observation {
  std::int32_t current = 0;  ///< replicas that exist, starting or ready (HPA status.replicas)
  std::int32_t ready = -1;   ///< of those, ready to serve; -1 means all
  /// One reading per config.metrics entry, in the same order; readings
  /// beyond the span's end are missing.
  std::span<const metric_sample> metrics;
};

/// Why the decision is what it is: the last rule that set the number.
enum class scale_reason : std::uint8_t {
  steady,            ///< metrics within tolerance of their targets: keep the count
  metrics,           ///< the metrics' recommendation, no rule limited it
  missing_metrics,   ///< readings missing: no change (or no scale-down), as HPA
  stabilized,        ///< held by a stabilisation window
  scale_up_limit,    ///< cut by the scale-up policies
  scale_down_limit,  ///< cut by the scale-down policies
  scaling_disabled,  ///< the direction's select_policy is disabled
  min_replicas,      ///< raised to min_replicas
  max_replicas,      ///< cut to max_replicas
  panic,             ///< panic mode: scaled up at once, or kept from scaling down
  cold_start,        ///< backlog already covered by replicas still starting
  activation,        ///< woke from zero: a metric passed its activation threshold
  idle,              ///< at zero, nothing active: stay at zero
  scale_to_zero,     ///< nothing active for the cooldown: go to zero
};

constexpr const char* to_string(scale_reason r) noexcept {
  switch (r) {
    case scale_reason::steady: return "steady";
    case scale_reason::metrics: return "metrics";
    case scale_reason::missing_metrics: return "missing_metrics";
    case scale_reason::stabilized: return "stabilized";
    case scale_reason::scale_up_limit: return "scale_up_limit";
    case scale_reason::scale_down_limit: return "scale_down_limit";
    case scale_reason::scaling_disabled: return "scaling_disabled";
    case scale_reason::min_replicas: return "min_replicas";
    case scale_reason::max_replicas: return "max_replicas";
    case scale_reason::panic: return "panic";
    case scale_reason::cold_start: return "cold_start";
    case scale_reason::activation: return "activation";
    case scale_reason::idle: return "idle";
    case scale_reason::scale_to_zero: return "scale_to_zero";
  }
  return "unknown";
}

struct scale_decision {
  std::int32_t replicas = 0;     ///< desired replicas: what to act on
  std::int32_t current = 0;      ///< the observation's current count
  std::int32_t recommended = 0;  ///< the metrics' recommendation (max over metrics), before the rules
  scale_reason reason = scale_reason::steady;
  std::int32_t metric = -1;  ///< index in config.metrics of the metric behind `recommended`; -1 if none
  double usage_ratio = 0;    ///< that metric's value / target (fleet totals: per current replica)
  bool panicking = false;

  std::int32_t change() const noexcept { return replicas - current; }
};

/// A snapshot for metrics and logs.
struct autoscaler_stats {
  std::int64_t decisions = 0;
  std::int64_t scale_ups = 0;
  std::int64_t scale_downs = 0;
  std::int32_t last_replicas = 0;
  bool panicking = false;
  std::size_t stabilization_samples = 0;  ///< recommendations held for the stabilisation windows
};

template <clock Clock = std::chrono::steady_clock>
class autoscaler {
 public:
  using clock_type = Clock;
  using time_point = typename Clock::time_point;

  /// Validates cfg (keel::config_error naming the field on a bad setting).
  explicit autoscaler(autoscaler_config cfg) : cfg_(std::move(cfg)) {
    cfg_.validate();
    const std::size_t n = cfg_.metrics.size();
    latest_value_.assign(n, std::numeric_limits<double>::quiet_NaN());
    held_value_.assign(n, std::numeric_limits<double>::quiet_NaN());
    backlog_adds_ =
        std::any_of(cfg_.metrics.begin(), cfg_.metrics.end(), [](const metric_spec& m) { return !m.backlog; });
    for (const auto* rules : {&cfg_.scale_up, &cfg_.scale_down})
      for (const scaling_policy& p : rules->policies) longest_period_ = std::max(longest_period_, p.period.count());
    recommendations_.reserve(32);
  }

  const autoscaler_config& config() const noexcept { return cfg_; }

  /// The decision for this observation at `now`. Time that goes backwards is
  /// taken as time standing still.
  scale_decision recommend(time_point now_tp, const scale_observation& obs) {
    const std::int64_t now = advance_time(now_tp);
    const std::int32_t current = std::max<std::int32_t>(obs.current, 0);
    const std::int32_t ready = obs.ready < 0 ? current : std::min(obs.ready, current);
    if (first_) {
      // HPA seeds the scale-down window with the current count, so a fresh
      // controller never scales down before it has a window of its own.
      recommendations_.push(now, recommendation{current, static_cast<double>(current)});
      last_active_ = now;
      first_ = false;
    }
    forget_before(now);

    const reading r = read_metrics(obs.metrics, current, ready);
    if (r.active || r.unknown) last_active_ = now;

    scale_decision d;
    d.current = current;
    d.recommended = r.replicas;
    d.metric = r.metric;
    d.usage_ratio = r.ratio;
    d.replicas = decide(now, current, ready, r, d.reason);
    d.panicking = panicking_;

    record(now, current, d.replicas, orders_for_backlog(r));
    previous_obs_ = now;
    return d;
  }

  autoscaler_stats stats() const noexcept {
    return {decisions_, scale_ups_, scale_downs_, last_replicas_, panicking_, recommendations_.size()};
  }

 private:
  static constexpr std::int64_t no_time = std::numeric_limits<std::int64_t>::min();
  static constexpr double replica_cap = static_cast<double>(std::numeric_limits<std::int32_t>::max());

  // What the metrics say, after HPA's per-metric rules and the max over them.
  struct reading {
    std::int32_t replicas = 0;           ///< max over valid metrics (HPA computeReplicasForMetrics)
    std::int32_t uncapped_replicas = 0;  ///< the same without the cold-start model
    std::int32_t drain = 0;              ///< of `replicas`, those added to drain backlog metrics
    std::int32_t metric = -1;
    double ratio = 0;
    double demand = 0;       ///< load in replicas at target, for panic mode
    double base_demand = 0;  ///< the same without backlog metrics: what a drained fleet needs
    double load = 0;         ///< base_demand before headroom: what an oscillation hold keeps
    int valid = 0;
    int invalid = 0;
    bool active = false;   ///< some reading above its activation threshold
    bool unknown = false;  ///< some reading missing: never scale to zero on that
  };

  struct proposal {
    std::int32_t replicas = 0;
    double ratio = 0;
    double demand = 0;  ///< replicas at target, headroom included
    double load = 0;    ///< replicas at target, without headroom
    bool valid = false;
  };

  // ceil(x) as a replica count, saturating instead of overflowing.
  static std::int32_t ceil_replicas(double x) noexcept {
    if (!(x > 0)) return 0;
    if (x >= replica_cap) return std::numeric_limits<std::int32_t>::max();
    return static_cast<std::int32_t>(std::ceil(x));
  }

  // Square-root staffing (Halfin & Whitt 1981; the "QED" regime of the
  // Erlang-C queue): a load of R replicas at full throughput needs
  // R + β·√R of them to keep queueing delay small with a stable probability
  // of waiting. The spare capacity is a larger share of a small fleet than of
  // a large one, where a fixed utilisation target gives every fleet the same
  // share. β = 0 is plain HPA.
  static double staffed(double load, double beta) noexcept {
    return beta > 0 && load > 0 ? load + beta * std::sqrt(load) : load;
  }

  static bool usable(double v) noexcept { return std::isfinite(v) && v >= 0; }

  std::int64_t advance_time(time_point t) noexcept {
    const std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    if (last_now_ == no_time || ns > last_now_) last_now_ = ns;
    return last_now_;
  }

  static std::int64_t minus(std::int64_t now, std::int64_t d) noexcept {
    return now < std::numeric_limits<std::int64_t>::min() + d ? std::numeric_limits<std::int64_t>::min() : now - d;
  }

  void forget_before(std::int64_t now) {
    const std::int64_t down = cfg_.scale_down.stabilization_window.count();
    std::int64_t window = std::max(cfg_.scale_up.stabilization_window.count(), down);
    if (cfg_.collapse.enabled)  // release_collapse looks back this far
      window = std::max({window, 2 * down, cfg_.collapse.window.count(), cfg_.cold_start.startup_delay.count()});
    recommendations_.drop_through(minus(now, window));
    recent_collapses_.drop_through(minus(now, down));
    events_.drop_through(minus(now, longest_period_));
    panic_samples_.drop_through(minus(now, panic_window()));
  }

  // HPA's tolerance band, per direction (Kubernetes 1.33 configurable tolerance).
  bool within_tolerance(double ratio) const noexcept {
    return ratio >= 1.0 - cfg_.scale_down.tolerance && ratio <= 1.0 + cfg_.scale_up.tolerance;
  }

  // ---- 1. one metric (replica_calculator.go) --------------------------------

  proposal propose(const metric_spec& m, double value, std::int32_t reporting, std::int32_t current,
                   std::int32_t ready) const noexcept {
    proposal p;
    if (m.kind == metric_kind::total) {
      // GetExternalPerPodMetricReplicas: the ratio is per current replica,
      // the count is the total over the per-replica target.
      p.valid = true;
      p.load = value / m.target;
      p.demand = staffed(p.load, m.headroom);
      p.ratio = current > 0 ? p.demand / current : p.demand;
      p.replicas = current > 0 && within_tolerance(p.ratio) ? current : ceil_replicas(p.demand);
      return p;
    }
    // calcPlainMetricReplicas / GetResourceReplicas: an average over the
    // ready replicas that reported.
    const std::int32_t n = reporting < 0 ? ready : std::min(reporting, ready);
    if (n <= 0) return p;  // "did not receive metrics for any ready pods"
    p.valid = true;
    p.ratio = value / m.target;
    p.demand = p.ratio * n;
    p.load = p.demand;
    const std::int32_t missing = ready - n;
    const std::int32_t unready = current - ready;
    const bool rebalance_unready = unready > 0 && p.ratio > 1.0;
    if (!rebalance_unready && missing == 0) {
      p.replicas = within_tolerance(p.ratio) ? current : ceil_replicas(p.ratio * n);
      return p;
    }
    // Fill the gaps conservatively and recompute: missing replicas at 100%
    // of target on a scale-down (a utilisation: 100% of capacity, or the
    // target if higher), at 0 on a scale-up; not-ready ones at 0 on a scale-up.
    double sum = value * n;
    double count = n;
    if (missing > 0 && p.ratio < 1.0) {
      sum += missing * (m.utilisation ? std::max(1.0, m.target) : m.target);
      count += missing;
    } else if (missing > 0 && p.ratio > 1.0) {
      count += missing;
    }
    if (rebalance_unready) count += unready;
    p.load = sum / m.target;  // missing readings filled in as above: an oscillation hold is as careful as HPA
    const double new_ratio = sum / (count * m.target);
    // Never scale against the data: no change when the filled-in ratio is
    // within tolerance or points the other way.
    if (within_tolerance(new_ratio) || (p.ratio < 1.0 && new_ratio > 1.0) || (p.ratio > 1.0 && new_ratio < 1.0)) {
      p.replicas = current;
      return p;
    }
    const std::int32_t desired = ceil_replicas(new_ratio * count);
    const bool reverses = (new_ratio < 1.0 && desired > current) || (new_ratio > 1.0 && desired < current);
    p.replicas = reverses ? current : desired;
    return p;
  }

  // ---- 2. all metrics (computeReplicasForMetrics), with the cold-start model

  reading read_metrics(std::span<const metric_sample> samples, std::int32_t current, std::int32_t ready) {
    reading r;
    const bool hold_backlog = cold_start_hold();
    double backlog = 0;
    double backlog_uncapped = 0;
    for (std::size_t i = 0; i < cfg_.metrics.size(); ++i) {
      const metric_spec& m = cfg_.metrics[i];
      const metric_sample s = i < samples.size() ? samples[i] : metric_sample::missing();
      if (!usable(s.value)) {
        ++r.invalid;
        r.unknown = true;
        latest_value_[i] = std::numeric_limits<double>::quiet_NaN();
        continue;
      }
      if (s.value > m.activation) r.active = true;
      const double value = cold_start_value(i, m, s.value, hold_backlog);
      latest_value_[i] = s.value;
      const proposal p = propose(m, value, s.reporting, current, ready);
      if (!p.valid) {
        ++r.invalid;
        r.unknown = true;
        continue;
      }
      ++r.valid;
      const proposal unheld = value == s.value ? p : propose(m, s.value, s.reporting, current, ready);
      if (m.backlog && backlog_adds_) {
        backlog += p.demand;
        backlog_uncapped += unheld.demand;
        continue;
      }
      r.demand = std::max(r.demand, p.demand);
      r.base_demand = r.demand;
      r.load = std::max(r.load, p.load);
      if (r.metric < 0 || p.replicas > r.replicas) {
        r.replicas = p.replicas;
        r.metric = static_cast<std::int32_t>(i);
        r.ratio = p.ratio;
      }
      r.uncapped_replicas = std::max(r.uncapped_replicas, unheld.replicas);
    }
    // A backlog is work waiting on top of the arrival rate: the replicas that
    // drain it within its target join those the other metrics ask for (HPA's
    // max would either ignore it or size the fleet as if it arrived every
    // second). Whole replicas only: a backlog smaller than one replica's
    // share drains on the headroom the targets leave.
    r.demand += backlog;
    const std::int32_t base = r.replicas;
    r.replicas = add_replicas(r.replicas, backlog);
    r.drain = r.replicas - base;
    r.uncapped_replicas = add_replicas(r.uncapped_replicas, backlog_uncapped);
    return r;
  }

  static std::int32_t add_replicas(std::int32_t base, double extra) noexcept {
    return ceil_replicas(static_cast<double>(base) + std::floor(std::min(extra, replica_cap)));
  }

  // The cold-start model. While replicas we asked for to drain a backlog
  // are still loading, the backlog keeps growing — that growth is demand
  // they will serve, not new demand — so a backlog reading counts at most
  // at its level when that scale-up began, until the first observation after
  // its replicas are due. Then what is left counts in full. A scale-up for a
  // rate alone starts no hold (record()).
  bool cold_start_hold() const noexcept {
    const std::int64_t delay = cfg_.cold_start.startup_delay.count();
    return delay > 0 && hold_start_ != no_time && previous_obs_ != no_time && previous_obs_ - hold_start_ < delay;
  }

  double cold_start_value(std::size_t i, const metric_spec& m, double value, bool hold) const noexcept {
    if (!hold || !m.backlog || !usable(held_value_[i])) return value;
    return std::min(value, held_value_[i]);
  }

  // Whether the reading orders replicas for a backlog: drain replicas on top
  // of the other metrics, or a backlog metric driving the count alone.
  bool orders_for_backlog(const reading& r) const noexcept {
    return r.drain > 0 || (r.metric >= 0 && cfg_.metrics[static_cast<std::size_t>(r.metric)].backlog);
  }

  // ---- 3-4. the rules ---------------------------------------------------------

  std::int32_t decide(std::int64_t now, std::int32_t current, std::int32_t ready, const reading& r, scale_reason& why) {
    const std::int32_t lower = std::max<std::int32_t>(cfg_.min_replicas, 1);  // zero only via scale to zero
    const bool zero_allowed = cfg_.min_replicas == 0;
    if (current == 0) {
      if (!zero_allowed) return set(why, scale_reason::min_replicas, cfg_.min_replicas);
      if (!r.active) return set(why, scale_reason::idle, 0);
      // KEDA activates 0 → 1 and lets HPA take it from there; a wake-up is a
      // burst by definition, so keel goes at once (as Knative's activator
      // does) to what the fleet totals ask for, and always at least one.
      last_drain_ = r.drain;
      return set(why, scale_reason::activation, std::clamp(r.replicas, 1, cfg_.max_replicas));
    }
    // horizontal.go reconcileAutoscaler: out-of-range counts are corrected first.
    if (current > cfg_.max_replicas) return set(why, scale_reason::max_replicas, cfg_.max_replicas);
    if (current < lower) return set(why, scale_reason::min_replicas, lower);
    if (zero_allowed && !r.active && now - last_active_ >= cfg_.scale_to_zero.cooldown.count()) {
      end_panic();
      return set(why, scale_reason::scale_to_zero, 0);
    }
    // HPA: with every metric invalid, or some invalid and the rest asking for
    // fewer replicas, the controller does not scale at all.
    if (r.valid == 0 || (r.invalid > 0 && r.replicas < current))
      return set(why, scale_reason::missing_metrics, current);

    update_panic(now, r, current, ready);
    why = r.replicas == current ? scale_reason::steady : scale_reason::metrics;
    if (r.uncapped_replicas > r.replicas) why = scale_reason::cold_start;
    // Drain replicas stay out of the stabilisation windows and out of panic's
    // hold: the windows damp noise in a rate or a level, and panic keeps the
    // fleet a burst needs, but a drained backlog is gone, and holding its
    // replicas is pure cost — in keel_sim scale/bursty_inference, holding
    // them for the 300 s scale-down window was most of the excess GPU-hours
    // on spikes and bursts from idle. The rest of the fleet is held as HPA
    // (and Knative in panic) holds it.
    const std::int32_t held = stabilize(now, std::max(current - r.drain, 0), r.replicas - r.drain, r.load, why);
    last_drain_ = r.drain;
    if (panicking_) return panic_replicas(held, r.drain, lower, why);
    return limit_rate(now, current, held + r.drain, lower, why);
  }

  static std::int32_t set(scale_reason& why, scale_reason reason, std::int32_t replicas) noexcept {
    why = reason;
    return replicas;
  }

  // stabilizeRecommendationWithBehaviors: the current count, pulled up to the
  // lowest recommendation of the scale-up window and down to the highest of
  // the scale-down window; the raw recommendation joins the windows.
  std::int32_t stabilize(std::int64_t now, std::int32_t current, std::int32_t desired, double load, scale_reason& why) {
    std::int32_t up = desired;
    std::int32_t down = desired;
    recommendations_.for_each_after(minus(now, cfg_.scale_up.stabilization_window.count()),
                                    [&](const recommendation& rec) { up = std::min(up, rec.replicas); });
    recommendations_.for_each_after(minus(now, cfg_.scale_down.stabilization_window.count()),
                                    [&](const recommendation& rec) { down = std::max(down, rec.replicas); });
    if (cfg_.collapse.enabled) down = release_collapse(now, current, desired, load, down);
    recommendations_.push(now, recommendation{desired, load});
    std::int32_t result = current;
    if (result < up) result = up;
    if (result > down) result = down;
    if (result != desired) why = scale_reason::stabilized;
    return result;
  }

  // keel's collapse release (collapse_config). `held` is the bound of HPA's
  // scale-down window (the long window). After a collapse the bound is the
  // highest recommendation of the short window instead. Unless the load
  // oscillates: within the long window the recommendation fell to a collapse
  // and has since climbed back over halfway. Then, for one long window after
  // the last such rebound, the bound is the highest load of two long windows
  // plus the scale-up tolerance, in place of HPA's window.
  std::int32_t release_collapse(std::int64_t now, std::int32_t current, std::int32_t desired, double load,
                                std::int32_t held) {
    const std::int64_t long_window = cfg_.scale_down.stabilization_window.count();
    recent_collapses_.for_each_after(minus(now, long_window), [&](const collapse& c) {
      if (std::int64_t{2} * desired >= std::int64_t{c.fell_to} + c.fell_from) last_rebound_ = now;
    });
    if (collapsed(desired, held)) recent_collapses_.push(now, collapse{desired, held});
    // A released replica takes a cold start to come back, so demand must have
    // stayed down at least that long: the cost of a wrong release grows with it.
    const std::int64_t short_window = std::max(cfg_.collapse.window.count(), cfg_.cold_start.startup_delay.count());
    std::int32_t recent = desired;
    recommendations_.for_each_after(minus(now, short_window),
                                    [&](const recommendation& rec) { recent = std::max(recent, rec.replicas); });
    const bool oscillating = last_rebound_ != no_time && now - last_rebound_ < long_window;
    if (!oscillating) return collapsed(recent, held) ? recent : held;
    // Oscillating: hold over two long windows, so that a load whose period
    // lies between one window and two — on which HPA's window expires once a
    // cycle and flaps — is held across its whole cycle. What is held is the
    // cycle's peak load with the scale-up tolerance as margin, not the
    // recommendations, and it bounds both ways: the fleet is sized for the
    // cycle, not for its latest reading. Headroom is for demand that rises
    // while new replicas load, but a held fleet is already there when the
    // peak comes back; sizing each peak with headroom would add replicas at
    // every peak and drop them in every trough — the flapping the hold is
    // for. (A load that climbs past every earlier peak gets that load plus
    // the tolerance until the oscillation ends; a burst still panics.) And a
    // recommendation within tolerance is the current count, so holding
    // recommendations ratchets the fleet up with every noisy peak and never
    // down (in keel_sim scale/bursty_inference the 6-minute sawtooth crept
    // from 17 replicas to 19). A step down smaller than the scale-down
    // tolerance is noise in the peak, and is not taken (HPA's band).
    double peak = load;
    recommendations_.for_each_after(minus(now, 2 * long_window),
                                    [&](const recommendation& rec) { peak = std::max(peak, rec.load); });
    const std::int32_t hold = ceil_replicas(peak * (1.0 + cfg_.scale_up.tolerance));
    const bool small_step = current > hold && current * (1.0 - cfg_.scale_down.tolerance) <= hold;
    return small_step ? current : hold;
  }

  bool collapsed(std::int32_t now_wanted, std::int32_t held) const noexcept {
    return now_wanted < held && static_cast<double>(now_wanted) <= cfg_.collapse.fraction * held;
  }

  // convertDesiredReplicasWithBehaviorRate: the policies' limit for the
  // direction, then min/max replicas.
  std::int32_t limit_rate(std::int64_t now, std::int32_t current, std::int32_t desired, std::int32_t lower,
                          scale_reason& why) const {
    if (desired > current) {
      if (cfg_.scale_up.select == select_policy::disabled) return set(why, scale_reason::scaling_disabled, current);
      const std::int32_t limit = std::max(scale_up_limit(now, current), current);
      const bool policy_binds = limit < cfg_.max_replicas;
      const std::int32_t allowed = policy_binds ? limit : cfg_.max_replicas;
      if (desired > allowed)
        return set(why, policy_binds ? scale_reason::scale_up_limit : scale_reason::max_replicas, allowed);
    } else if (desired < current) {
      if (cfg_.scale_down.select == select_policy::disabled) return set(why, scale_reason::scaling_disabled, current);
      const std::int32_t limit = std::min(scale_down_limit(now, current), current);
      const bool policy_binds = limit > lower;
      const std::int32_t allowed = policy_binds ? limit : lower;
      if (desired < allowed)
        return set(why, policy_binds ? scale_reason::scale_down_limit : scale_reason::min_replicas, allowed);
    }
    return desired;
  }

  // The replicas at the start of a policy period: now, minus what was added
  // and plus what was removed within it (getReplicasChangePerPeriod).
  std::int64_t period_start(std::int64_t now, std::int32_t current, std::chrono::nanoseconds period) const {
    std::int64_t added = 0;
    std::int64_t removed = 0;
    events_.for_each_after(minus(now, period.count()), [&](std::int32_t change) {
      if (change > 0)
        added += change;
      else
        removed -= change;
    });
    return std::int64_t{current} - added + removed;
  }

  // calculateScaleUpLimitWithScalingRules. Percent rounds up, so a small
  // fleet can always grow.
  std::int32_t scale_up_limit(std::int64_t now, std::int32_t current) const {
    const bool largest = cfg_.scale_up.select == select_policy::max;
    double result = largest ? -replica_cap : replica_cap;
    for (const scaling_policy& p : cfg_.scale_up.policies) {
      const double start = static_cast<double>(period_start(now, current, p.period));
      const double proposed =
          p.kind == scaling_policy::type::pods ? start + p.value : std::ceil(start * (1.0 + p.value / 100.0));
      result = largest ? std::max(result, proposed) : std::min(result, proposed);
    }
    return static_cast<std::int32_t>(std::clamp(result, 0.0, replica_cap));
  }

  // calculateScaleDownLimitWithBehaviors. Percent truncates, as Go's int32().
  std::int32_t scale_down_limit(std::int64_t now, std::int32_t current) const {
    const bool largest = cfg_.scale_down.select == select_policy::max;  // largest change = lowest count
    double result = largest ? replica_cap : -replica_cap;
    for (const scaling_policy& p : cfg_.scale_down.policies) {
      const double start = static_cast<double>(period_start(now, current, p.period));
      const double proposed =
          p.kind == scaling_policy::type::pods ? start - p.value : std::floor(start * (1.0 - p.value / 100.0));
      result = largest ? std::min(result, proposed) : std::max(result, proposed);
    }
    return static_cast<std::int32_t>(std::clamp(result, 0.0, replica_cap));
  }

  // ---- Knative panic mode -----------------------------------------------------

  std::int64_t panic_window() const noexcept {
    return static_cast<std::int64_t>(static_cast<double>(cfg_.panic.stable_window.count()) *
                                     cfg_.panic.window_fraction);
  }

  // Demand averaged over the panic window against the ready replicas
  // (Knative: desired panic pods / ready pods ≥ threshold). Panic lasts until
  // a whole stable window has passed without the condition. A backlog counts
  // towards entering panic (it is the burst); the fleet panic holds is sized
  // without it (its drain replicas go once it is drained).
  void update_panic(std::int64_t now, const reading& r, std::int32_t current, std::int32_t ready) {
    if (!cfg_.panic.enabled) return;
    panic_samples_.push(now, panic_sample{r.demand, r.base_demand});
    double sum = 0;
    double base = 0;
    int n = 0;
    panic_samples_.for_each_after(minus(now, panic_window()), [&](const panic_sample& v) {
      sum += v.demand;
      base += v.base_demand;
      ++n;
    });
    panic_demand_ = n > 0 ? sum / n : r.demand;
    panic_base_ = n > 0 ? base / n : r.base_demand;
    const bool over = panic_demand_ >= cfg_.panic.threshold * std::max<std::int32_t>(ready, 1);
    if (over) {
      if (!panicking_) panic_peak_ = std::max(current - last_drain_, 0);  // Knative: never below the fleet it has
      panicking_ = true;
      last_over_ = now;
    } else if (panicking_ && now - last_over_ >= cfg_.panic.stable_window.count()) {
      end_panic();
    }
  }

  void end_panic() noexcept {
    panicking_ = false;
    panic_peak_ = 0;
  }

  // In panic: at once to the larger of the stable and the panic demand, with
  // no policy limit, and never below the count already reached — drain
  // replicas apart, which come on top and go with their backlog.
  std::int32_t panic_replicas(std::int32_t stable, std::int32_t drain, std::int32_t lower, scale_reason& why) {
    panic_peak_ = std::max({stable, ceil_replicas(panic_base_), panic_peak_});
    const std::int64_t unclamped = std::int64_t{panic_peak_} + drain;
    const auto want = static_cast<std::int32_t>(std::clamp<std::int64_t>(unclamped, lower, cfg_.max_replicas));
    why = unclamped > cfg_.max_replicas ? scale_reason::max_replicas : scale_reason::panic;
    return want;
  }

  // ---- bookkeeping --------------------------------------------------------------

  void record(std::int64_t now, std::int32_t current, std::int32_t desired, bool for_backlog) {
    ++decisions_;
    last_replicas_ = desired;
    if (desired == current) return;
    events_.push(now, desired - current);  // storeScaleEvent
    if (desired > current) {
      ++scale_ups_;
      // A hold starts with a scale-up that ordered replicas for a backlog:
      // replicas ordered for a rate alone have no spare capacity for its
      // growth. Later scale-ups within a hold do not extend it.
      if (!cold_start_hold() && for_backlog) {
        hold_start_ = now;
        held_value_ = latest_value_;  // the backlog this scale-up answers
      }
    } else {
      ++scale_downs_;
    }
  }

  autoscaler_config cfg_;
  bool backlog_adds_ = false;  // backlog metrics add to other metrics (there are some)
  std::int64_t longest_period_ = 0;
  bool first_ = true;
  std::int64_t last_now_ = no_time;
  std::int64_t previous_obs_ = no_time;
  std::int64_t last_active_ = no_time;
  struct recommendation {
    std::int32_t replicas;  // what HPA's stabilisation windows hold
    double load;            // the load behind it, without headroom: what an oscillation hold keeps
  };
  detail::timed_log<recommendation> recommendations_;
  detail::timed_log<std::int32_t> events_;
  // panic mode
  struct panic_sample {
    double demand;
    double base_demand;
  };
  detail::timed_log<panic_sample> panic_samples_;
  bool panicking_ = false;
  std::int64_t last_over_ = no_time;
  double panic_demand_ = 0;
  double panic_base_ = 0;
  std::int32_t panic_peak_ = 0;  // the fleet without drain replicas
  std::int32_t last_drain_ = 0;  // drain replicas in the last decision
  // collapse release
  struct collapse {
    std::int32_t fell_to;    // the recommendation that collapsed
    std::int32_t fell_from;  // the long window's bound it fell from
  };
  detail::timed_log<collapse> recent_collapses_;
  std::int64_t last_rebound_ = no_time;
  // cold-start model
  std::vector<double> latest_value_;
  std::vector<double> held_value_;
  std::int64_t hold_start_ = no_time;
  // stats
  std::int64_t decisions_ = 0;
  std::int64_t scale_ups_ = 0;
  std::int64_t scale_downs_ = 0;
  std::int32_t last_replicas_ = 0;
};

}  // namespace keel
