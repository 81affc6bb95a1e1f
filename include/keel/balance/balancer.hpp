// keel/balance/balancer.hpp — spread calls over a changing set of unequal nodes.
//
// keel::balancer<Node, Strategy, Health, Clock> holds a set of nodes (your
// type: an address, a client, a GPU server handle) with a weight each, and
// picks one per call with a strategy (smooth WRR, EDF, P2C least request,
// peak EWMA, load-report weights, bounded-load affinity). pick(ctx) returns a
// lease that counts the call as outstanding on its node; recording the outcome
// on the lease feeds the strategy (latency EWMA) and the node's health policy
// (outlier ejection). Nodes are added, removed, reweighted and drained while
// other threads pick: picks read an immutable snapshot and never wait for a
// writer.
//
//   struct gpu { std::string address; };
//   keel::balancer<gpu> lb;                               // keel::recommended strategy
//   auto h100 = lb.add(gpu{"10.0.0.1:8000"}, 4.0);   // four times an L4's capacity
//   lb.add(gpu{"10.0.0.2:8000"}, 1.0);
//   if (auto lease = lb.pick()) {
//     auto reply = call(lease->node().address);
//     reply ? lease->success() : lease->failure();     // latency measured by the lease
//   } else {
//     return lease.error();                              // errc::no_backend
//   }
//   lb.drain(h100);                                      // no new calls; leases finish
//   lb.remove(h100);
//
// Guarantees (tested in tests/balance/concurrency_test.cpp):
//  * pick never blocks on add/remove/set_weight/drain; writers serialise on a
//    mutex and wait only for picks already in progress (a grace period);
//  * once remove(id) or drain(id) has returned, no pick that starts afterwards
//    returns that node; a lease obtained earlier stays valid and records normally;
//  * a node's outstanding count is exactly the number of its live leases, and
//    its state (outstanding, EWMA, health, load report) survives every
//    snapshot change, because snapshots share the node objects;
//  * a removed node's memory is reclaimed by a later writer operation (or the
//    balancer's destructor) once its last lease is gone.
// Precondition: every lease is recorded or destroyed before the balancer is.
//
// Health: when a node's health policy trips (default: 5 consecutive
// failures, Envoy's outlier detection) the node is ejected for the time the
// policy says, unless max_ejection_percent of the nodes are ejected already
// (at least one may always be). When fewer than panic_threshold_percent of
// the nodes are healthy, health is ignored and every node is used (Envoy's
// panic threshold): overloading the few healthy nodes is worse. A node that
// is added to a non-empty set or returns from ejection ramps its weight up
// over slow_start_window (Envoy's slow start: weight × max(min_weight_percent,
// (elapsed / window)^(1 / aggression))).
//
// Clock: keel::tsc_clock by default. A latency-aware pick reads the clock
// every time, and steady_clock::now() (20–30 ns on a VM) would be a quarter
// of it; the TSC read is ~10 ns. The balancer never hands out or takes time
// points, so its clock's time_point type is invisible to callers; where the
// TSC is not a trustworthy clock, tsc_clock is steady_clock (see
// keel/core/tsc_clock.hpp). Its one-off ~5 ms calibration (once per
// process) happens in the first balancer's constructor, not in a pick.
// Tests pass keel::manual_clock.
//
// A lease destroyed without a record releases its outstanding count and
// records nothing: no latency sample, no success or failure (like
// outcome::ignored, but without feeding the strategy).
#pragma once

#include <keel/balance/detail/random.hpp>
#include <keel/balance/detail/snapshot_cell.hpp>
#include <keel/balance/health.hpp>
#include <keel/balance/recommended.hpp>
#include <keel/core/clock.hpp>
#include <keel/core/detail/cache_line.hpp>
#include <keel/core/detail/fatal.hpp>
#include <keel/core/detail/saturate.hpp>
#include <keel/core/permit.hpp>
#include <keel/core/result.hpp>
#include <keel/core/tsc_clock.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

namespace keel {

/// Identifies a node of one balancer; never reused by that balancer.
struct node_id {
  std::uint64_t value = 0;
  friend constexpr bool operator==(node_id, node_id) = default;
};

/// Balancer-wide settings (strategy and health have their own).
struct balancer_config {
  /// Weight ramp for new and recovered nodes; zero disables slow start (Envoy's default).
  std::chrono::nanoseconds slow_start_window{0};
  /// Envoy's aggression: 1 is linear; larger ramps faster at first.
  double slow_start_aggression = 1.0;
  /// The weight a node in slow start gets at least, in percent of its weight.
  double slow_start_min_weight_percent = 10.0;
  /// Below this percentage of healthy nodes, health is ignored; 0 disables panic.
  double panic_threshold_percent = 50.0;
  /// At most this percentage of nodes is ejected at once (at least one may be).
  double max_ejection_percent = 10.0;
  /// Seed of the per-thread random streams strategies sample from.
  std::uint64_t seed = 0x6b65656c;

  void validate() const {
    detail::require_config(slow_start_window.count() >= 0, "keel::balancer: slow_start_window must not be negative");
    detail::require_config(std::isfinite(slow_start_aggression) && slow_start_aggression > 0,
                           "keel::balancer: slow_start_aggression must be positive and finite");
    detail::require_config(slow_start_min_weight_percent > 0 && slow_start_min_weight_percent <= 100,
                           "keel::balancer: slow_start_min_weight_percent must be in (0, 100]");
    detail::require_config(panic_threshold_percent >= 0 && panic_threshold_percent <= 100,
                           "keel::balancer: panic_threshold_percent must be in [0, 100]");
    detail::require_config(max_ejection_percent >= 0 && max_ejection_percent <= 100,
                           "keel::balancer: max_ejection_percent must be in [0, 100]");
  }
};

/// A cheap picture of the balancer for metrics.
struct balancer_stats {
  std::size_t nodes = 0;         ///< nodes that can be picked (not draining)
  std::size_t draining = 0;      ///< drained nodes still in the set
  std::size_t ejected = 0;       ///< pickable nodes currently ejected by health
  std::int64_t outstanding = 0;  ///< live leases over all nodes in the set
  bool panic = false;            ///< health is being ignored (too few healthy nodes)
};

/// One node as seen by for_each_node.
struct node_info {
  node_id id;
  double weight = 0;            ///< configured weight
  double effective_weight = 0;  ///< weight after slow start (what weighted strategies use)
  std::int64_t outstanding = 0;
  bool draining = false;
  bool ejected = false;
};

namespace detail {

struct no_context {};

/// The object behind each node: shared by every snapshot that lists it, so
/// its counters and learned state survive node-set changes.
template <class Node, class NodeState, class Health>
struct balance_node {
  static constexpr std::uint32_t draining = 1, removed = 2, counted = 4;

  balance_node(Node v, node_id i, double w, const typename Health::config& h)
      : value(std::move(v)), id(i), weight(w), inverse_weight(1.0 / w), health(h) {}

  void set_weight(double w) noexcept {
    weight.store(w, std::memory_order_relaxed);
    inverse_weight.store(1.0 / w, std::memory_order_relaxed);
  }

  Node value;
  node_id id;
  std::atomic<double> weight;
  std::atomic<std::uint32_t> flags{0};  ///< draining | removed | counted (in the ejected count)
  // What a pick reads of a candidate, on one cache line of its own: a
  // candidate costs one line, not two dependent ones.
  alignas(cache_line) std::atomic<std::int64_t> outstanding{0};
  std::atomic<double> inverse_weight;                    ///< 1 / weight: picks multiply, a division costs ~15 cycles
  std::atomic<std::int64_t> ejected_until{0};            ///< 0: serving; else clock ns when it may return
  mutable std::atomic<std::int64_t> slow_start_from{0};  ///< 0: not in slow start (cleared by readers when over)
  [[no_unique_address]] NodeState state{};
  Health health;
};

template <class S>
concept records_outcomes = requires(const S& s, typename S::node_state& n, outcome o, std::int64_t ns) {
  s.record(n, o, ns, ns);
};
template <class S>
concept uses_latency = requires {
  requires S::uses_latency;
};
template <class S>
concept tracks_total_outstanding = requires {
  requires S::tracks_total_outstanding;
};

}  // namespace detail

template <class Node, class Strategy = recommended, node_health Health = outlier_detector, clock Clock = tsc_clock>
class balancer {
  using node_t = detail::balance_node<Node, typename Strategy::node_state, Health>;
  struct snapshot;

 public:
  using node_type = Node;
  using strategy_type = Strategy;
  using clock_type = Clock;

  /// What a strategy sees during a pick (and while building its per-snapshot
  /// table): indices 0..size()-1 are the pickable nodes of one snapshot.
  template <class Ctx>
  class view {
   public:
    std::size_t size() const noexcept { return size_; }
    /// May node i take a call now? False only for an ejected node outside panic
    /// mode. A node whose ejection has expired is returned to service here.
    bool usable(std::size_t i) const noexcept {
      node_t& n = *nodes_[i];
      std::int64_t until = n.ejected_until.load(std::memory_order_relaxed);
      if (until == 0 || panic()) return true;
      const std::int64_t t = now();
      if (t < until) return false;
      owner_->return_to_service(n, until, t);
      return true;
    }
    /// Clock ns at which an ejected node i may return (0 when not ejected).
    std::int64_t ejected_until(std::size_t i) const noexcept {
      return nodes_[i]->ejected_until.load(std::memory_order_relaxed);
    }
    /// True while node i ramps up in slow start.
    bool ramping(std::size_t i) const noexcept {
      return nodes_[i]->slow_start_from.load(std::memory_order_relaxed) != 0;
    }
    /// The weight set with add or set_weight.
    double configured_weight(std::size_t i) const noexcept { return nodes_[i]->weight.load(std::memory_order_relaxed); }
    /// Configured weight × slow-start factor.
    double weight(std::size_t i) const noexcept { return owner_->effective_weight(*nodes_[i], *this); }
    /// 1 / weight(i); divides only while node i is in slow start.
    double inverse_weight(std::size_t i) const noexcept {
      const node_t& n = *nodes_[i];
      if (n.slow_start_from.load(std::memory_order_relaxed) == 0)
        return n.inverse_weight.load(std::memory_order_relaxed);
      return 1.0 / owner_->effective_weight(n, *this);
    }
    std::int64_t outstanding(std::size_t i) const noexcept {
      return nodes_[i]->outstanding.load(std::memory_order_relaxed);
    }
    typename Strategy::node_state& state(std::size_t i) const noexcept { return nodes_[i]->state; }
    node_id id(std::size_t i) const noexcept { return nodes_[i]->id; }
    /// Sum of the configured weights of the pickable nodes.
    double total_weight() const noexcept { return snap_->total_weight; }
    /// Live leases over all nodes (strategies that set tracks_total_outstanding only).
    std::int64_t total_outstanding() const noexcept {
      return owner_->total_outstanding_.load(std::memory_order_relaxed);
    }
    /// Changes whenever a node is ejected or returns, or slow start begins.
    std::uint64_t weights_epoch() const noexcept { return owner_->weights_epoch_.load(std::memory_order_relaxed); }
    /// Too few healthy nodes: health is ignored (computed on first use).
    bool panic() const noexcept {
      if (panic_ == unknown) {
        const double threshold = owner_->config_.panic_threshold_percent;
        const auto n = static_cast<double>(size_);
        const auto ejected =
            static_cast<double>(std::max<std::int64_t>(0, owner_->ejected_count_.load(std::memory_order_relaxed)));
        panic_ = threshold > 0 && n > 0 && (n - ejected) * 100.0 < threshold * n ? yes : no;
      }
      return panic_ == yes;
    }
    /// 64 random bits from this reader's stream (see detail/random.hpp).
    std::uint64_t random() const noexcept { return detail::next_random(weyl_); }
    /// The clock, read at most once per view.
    std::int64_t now() const noexcept {
      if (now_ == unread) now_ = detail::now_ns(owner_->clock_);
      return now_;
    }
    Ctx& context() const noexcept { return *ctx_; }

   private:
    friend class balancer;
    static constexpr std::int64_t unread = std::numeric_limits<std::int64_t>::min();

    view(const balancer& owner, const snapshot& snap, std::atomic<std::uint64_t>& random, Ctx* ctx) noexcept
        : owner_(&owner),
          snap_(&snap),
          nodes_(snap.pickable.data()),
          size_(snap.pickable.size()),
          random_(&random),
          ctx_(ctx),
          weyl_(random.load(std::memory_order_relaxed)),
          weyl_at_start_(weyl_) {}
    view(const view&) = delete;
    view& operator=(const view&) = delete;
    // The stream state lives in a register during the pick and goes back to
    // the stripe once, at the end, instead of a load and a store per draw.
    ~view() {
      if (weyl_ != weyl_at_start_) random_->store(weyl_, std::memory_order_relaxed);
    }

    enum tristate : unsigned char { unknown, no, yes };

    const balancer* owner_;
    const snapshot* snap_;
    node_t* const* nodes_;  // snap_->pickable, read once: a pick reaches every node through it
    std::size_t size_;
    std::atomic<std::uint64_t>* random_;
    Ctx* ctx_;
    mutable std::uint64_t weyl_;
    std::uint64_t weyl_at_start_;
    mutable std::int64_t now_ = unread;
    mutable tristate panic_ = unknown;
  };

 private:
  using table_t = typename Strategy::table;

  struct snapshot {
    snapshot(std::vector<node_t*> p, std::vector<node_t*> a, const balancer& owner)
        : pickable(std::move(p)),
          all(std::move(a)),
          total_weight(sum_weights(pickable)),
          table(owner.strategy_, owner.build_view(*this)) {}

    static double sum_weights(const std::vector<node_t*>& nodes) {
      double sum = 0;
      for (const node_t* n : nodes) sum += n->weight.load(std::memory_order_relaxed);
      return sum;
    }

    std::vector<node_t*> pickable;  ///< not draining, in insertion order
    std::vector<node_t*> all;       ///< every node in the set, draining included
    double total_weight;
    mutable table_t table;  ///< the strategy's per-snapshot state (cycle, hash ring, ...)
  };

  template <class Ctx>
  static constexpr bool strategy_fits = requires(const Strategy& s, table_t& t, view<Ctx>& v) {
    { s.pick(t, v) } -> std::convertible_to<std::size_t>;
  };

 public:
  /// A call admitted to one node: counts as outstanding there until recorded
  /// or destroyed. Move-only; record once (later records are ignored).
  class lease {
   public:
    lease(lease&&) noexcept = default;
    lease& operator=(lease&& other) noexcept { return detail::replace_permit(*this, std::move(other)); }
    ~lease() { drop(); }

    bool active() const noexcept { return link_.active(); }
    /// The node picked. Valid while the lease lives, even after remove().
    const Node& node() const noexcept { return node_->value; }
    node_id id() const noexcept { return node_->id; }

    /// Records the outcome; the latency is measured from the pick when the
    /// strategy uses latency (peak_ewma, recommended), else zero.
    void record(outcome o) {
      if (balancer* b = link_.take()) {
        if constexpr (detail::uses_latency<Strategy>) {
          const std::int64_t now = detail::now_ns(b->clock_);
          b->complete(*node_, o, std::max<std::int64_t>(0, now - start_ns_), now, now);
        } else {
          b->complete(*node_, o, 0, unread_time, unread_time);
        }
      }
    }
    /// Records the outcome with a latency the caller measured. A latency
    /// strategy stamps the sample at pick time + latency, without reading
    /// the clock again (the latency is the time since the pick, give or take
    /// the caller's own overhead). Records throw only if the health policy
    /// does (a breaker's state-change callback); the outstanding count is
    /// released either way.
    template <class Rep, class Period>
    void record(outcome o, std::chrono::duration<Rep, Period> latency) {
      if (balancer* b = link_.take()) {
        const std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(latency).count();
        if constexpr (detail::uses_latency<Strategy>) {
          b->complete(*node_, o, ns, unread_time, detail::sat_add(start_ns_, std::max<std::int64_t>(0, ns)));
        } else {
          b->complete(*node_, o, ns, unread_time, unread_time);
        }
      }
    }
    void success() { record(outcome::success); }
    void failure() { record(outcome::failure); }
    void ignore() { record(outcome::ignored); }
    template <class Rep, class Period>
    void success(std::chrono::duration<Rep, Period> latency) {
      record(outcome::success, latency);
    }
    template <class Rep, class Period>
    void failure(std::chrono::duration<Rep, Period> latency) {
      record(outcome::failure, latency);
    }

    /// Passes a load report that came back with this call (ORCA per-call
    /// reports) to a strategy that uses them; the lease stays active.
    template <class Report>
    requires requires(const Strategy& s, typename Strategy::node_state& n, const Report& r) { s.report(n, r, 0); }
    void report_load(const Report& r) {
      if (balancer* b = link_.get()) b->strategy_.report(node_->state, r, detail::now_ns(b->clock_));
    }

   private:
    friend class balancer;
    lease(balancer* owner, node_t* node, std::int64_t start_ns) noexcept
        : link_(owner), node_(node), start_ns_(start_ns) {}

    void drop() noexcept {
      if (balancer* b = link_.take()) b->release(*node_);
    }

    detail::permit_link<balancer> link_;
    node_t* node_ = nullptr;
    std::int64_t start_ns_ = 0;
  };

  explicit balancer(balancer_config config = {}, Strategy strategy = {}, typename Health::config health = {},
                    Clock clk = {})
      : config_(config),
        strategy_(std::move(strategy)),
        health_config_(health),
        clock_(std::move(clk)),
        cell_(make_empty(), config.seed) {
    config_.validate();
    Health probe(health_config_);  // validates the health configuration now, not at the first add
    (void)probe;
    if constexpr (std::is_same_v<Clock, tsc_clock>) tsc_clock::calibrate();  // here, not in the first pick
  }
  balancer(const balancer&) = delete;
  balancer& operator=(const balancer&) = delete;
  ~balancer() = default;

  /// Adds a node with a weight (positive, finite) and returns its id.
  node_id add(Node node, double weight = 1.0) {
    require_weight(weight);
    std::lock_guard lock(writer_);
    const node_id id{++last_id_};
    auto owned = std::make_unique<node_t>(std::move(node), id, weight, health_config_);
    if (config_.slow_start_window.count() > 0 && !cell_.writer_view()->pickable.empty())
      owned->slow_start_from.store(std::max<std::int64_t>(1, detail::now_ns(clock_)), std::memory_order_relaxed);
    nodes_.push_back(std::move(owned));
    republish();
    return id;
  }

  /// Removes a node: no pick that starts after this returns selects it.
  /// Outstanding leases on it finish normally. False if the id is unknown.
  bool remove(node_id id) {
    std::lock_guard lock(writer_);
    auto it = std::find_if(nodes_.begin(), nodes_.end(), [&](const auto& n) { return n->id == id; });
    if (it == nodes_.end()) return false;
    set_flag(**it, node_t::removed);
    std::unique_ptr<node_t> gone = std::move(*it);
    nodes_.erase(it);
    republish();  // after this, no reader can reach `gone`
    graveyard_.push_back(std::move(gone));
    sweep();
    return true;
  }

  /// Stops new picks of a node; its leases finish. Remove it once
  /// outstanding(id) is zero. False if the id is unknown.
  bool drain(node_id id) {
    std::lock_guard lock(writer_);
    node_t* n = find(id);
    if (n == nullptr) return false;
    set_flag(*n, node_t::draining);
    republish();
    return true;
  }

  /// Changes a node's weight (positive, finite). False if the id is unknown.
  bool set_weight(node_id id, double weight) {
    require_weight(weight);
    std::lock_guard lock(writer_);
    node_t* n = find(id);
    if (n == nullptr) return false;
    n->set_weight(weight);
    republish();
    return true;
  }

  /// Live leases on a node (0 for an unknown id).
  std::int64_t outstanding(node_id id) const {
    std::lock_guard lock(writer_);
    const node_t* n = find(id);
    return n == nullptr ? 0 : n->outstanding.load(std::memory_order_acquire);
  }

  /// Picks a node for a call described by ctx (affinity strategies hash it).
  /// errc::no_backend when no node can serve, with retry_after when every
  /// node is ejected and panic mode is off.
  template <class Ctx>
  result<lease> pick(Ctx& ctx) {
    static_assert(strategy_fits<Ctx>,
                  "keel::balancer: the strategy must provide `std::size_t pick(table&, view&) const`; use one of "
                  "keel::round_robin, smooth_weighted_round_robin, edf_round_robin, p2c_least_request, peak_ewma, "
                  "load_report_weights or bounded_load_hash (or write one like them)");
    const auto guard = cell_.read();
    const snapshot& s = *guard;
    if (s.pickable.empty()) return reject(errc::no_backend, s.all.empty() ? "no nodes" : "every node is draining");
    view<Ctx> v(*this, s, guard.random_state(), &ctx);
    const std::size_t i = strategy_.pick(s.table, v);
    if (i >= s.pickable.size()) return unavailable(s, v);
    node_t& n = *s.pickable[i];
    n.outstanding.fetch_add(1, std::memory_order_relaxed);
    if constexpr (detail::tracks_total_outstanding<Strategy>)
      total_outstanding_.fetch_add(1, std::memory_order_relaxed);
    std::int64_t start = 0;
    if constexpr (detail::uses_latency<Strategy>) start = v.now();
    return lease(this, &n, start);
  }

  result<lease> pick() {
    detail::no_context none;
    return pick(none);
  }

  /// Feeds an out-of-band load report for a node (strategies that use them).
  template <class Report>
  requires requires(const Strategy& s, typename Strategy::node_state& n, const Report& r) { s.report(n, r, 0); }
  bool report_load(node_id id, const Report& r) {
    const auto guard = cell_.read();
    for (node_t* n : guard->all)
      if (n->id == id) {
        strategy_.report(n->state, r, detail::now_ns(clock_));
        return true;
      }
    return false;
  }

  balancer_stats stats() const noexcept {
    const auto guard = cell_.read();
    balancer_stats st;
    st.nodes = guard->pickable.size();
    st.draining = guard->all.size() - guard->pickable.size();
    const std::int64_t now = detail::now_ns(clock_);
    for (const node_t* n : guard->all) {
      st.outstanding += n->outstanding.load(std::memory_order_relaxed);
      if (!(n->flags.load(std::memory_order_relaxed) & node_t::draining) && ejected_at(*n, now)) ++st.ejected;
    }
    detail::no_context none;
    st.panic = view<detail::no_context>(*this, *guard, guard.random_state(), &none).panic();
    return st;
  }

  /// Calls fn(const Node&, const node_info&) for every node in the set.
  template <class Fn>
  void for_each_node(Fn&& fn) const {
    const auto guard = cell_.read();
    detail::no_context none;
    view<detail::no_context> v(*this, *guard, guard.random_state(), &none);
    for (const node_t* n : guard->all) {
      node_info info;
      info.id = n->id;
      info.weight = n->weight.load(std::memory_order_relaxed);
      info.effective_weight = effective_weight(*n, v);
      info.outstanding = n->outstanding.load(std::memory_order_relaxed);
      info.draining = (n->flags.load(std::memory_order_relaxed) & node_t::draining) != 0;
      info.ejected = ejected_at(*n, v.now());
      fn(std::as_const(n->value), std::as_const(info));
    }
  }

  const Strategy& strategy() const noexcept { return strategy_; }
  const balancer_config& config() const noexcept { return config_; }

 private:
  static std::unique_ptr<snapshot> make_empty_snapshot(const balancer& owner) {
    return std::make_unique<snapshot>(std::vector<node_t*>{}, std::vector<node_t*>{}, owner);
  }
  std::unique_ptr<snapshot> make_empty() { return make_empty_snapshot(*this); }

  static void require_weight(double w) {
    detail::require_config(std::isfinite(w) && w > 0, "keel::balancer: weight must be positive and finite");
  }

  view<detail::no_context> build_view(const snapshot& s) const noexcept {
    return view<detail::no_context>(*this, s, writer_random_, &build_context_);
  }

  node_t* find(node_id id) const noexcept {
    for (const auto& n : nodes_)
      if (n->id == id) return n.get();
    return nullptr;
  }

  /// Builds and installs a snapshot of nodes_ (writer mutex held).
  void republish() {
    std::vector<node_t*> pickable, all;
    for (const auto& n : nodes_) {
      all.push_back(n.get());
      if (!(n->flags.load(std::memory_order_relaxed) & node_t::draining)) pickable.push_back(n.get());
    }
    pickable_count_.store(static_cast<std::int64_t>(pickable.size()), std::memory_order_relaxed);
    weights_epoch_.fetch_add(1, std::memory_order_relaxed);
    cell_.publish(std::make_unique<snapshot>(std::move(pickable), std::move(all), *this));
  }

  /// Frees removed nodes whose last lease is gone (writer mutex held).
  void sweep() {
    std::erase_if(graveyard_,
                  [](const std::unique_ptr<node_t>& n) { return n->outstanding.load(std::memory_order_acquire) == 0; });
  }

  /// Marks a node draining or removed; it leaves the ejected count if it was in it.
  void set_flag(node_t& n, std::uint32_t flag) noexcept {
    std::uint32_t f = n.flags.load(std::memory_order_relaxed);
    while (!n.flags.compare_exchange_weak(f, (f | flag) & ~node_t::counted, std::memory_order_acq_rel)) {
    }
    if (f & node_t::counted) ejected_count_.fetch_sub(1, std::memory_order_relaxed);
  }

  static bool ejected_at(const node_t& n, std::int64_t now) noexcept {
    const std::int64_t until = n.ejected_until.load(std::memory_order_relaxed);
    return until != 0 && now < until;
  }

  template <class Ctx>
  double effective_weight(const node_t& n, const view<Ctx>& v) const noexcept {
    const double w = n.weight.load(std::memory_order_relaxed);
    const std::int64_t from = n.slow_start_from.load(std::memory_order_relaxed);
    if (from == 0) return w;
    const std::int64_t window = config_.slow_start_window.count();
    const std::int64_t elapsed = std::max<std::int64_t>(1, v.now() - from);  // a clock going back restarts nothing
    if (elapsed >= window) {
      std::int64_t expected = from;
      n.slow_start_from.compare_exchange_strong(expected, 0, std::memory_order_relaxed);
      return w;
    }
    double factor = static_cast<double>(elapsed) / static_cast<double>(window);
    if (config_.slow_start_aggression != 1.0) factor = std::pow(factor, 1.0 / config_.slow_start_aggression);
    return w * std::max(factor, config_.slow_start_min_weight_percent / 100.0);
  }

  void return_to_service(node_t& n, std::int64_t until, std::int64_t now) const noexcept {
    if (!n.ejected_until.compare_exchange_strong(until, 0, std::memory_order_relaxed)) return;
    if (n.flags.fetch_and(~node_t::counted, std::memory_order_acq_rel) & node_t::counted)
      ejected_count_.fetch_sub(1, std::memory_order_relaxed);
    if (config_.slow_start_window.count() > 0)
      n.slow_start_from.store(std::max<std::int64_t>(1, now), std::memory_order_relaxed);
    weights_epoch_.fetch_add(1, std::memory_order_relaxed);
  }

  void try_eject(node_t& n, std::int64_t now) noexcept {
    const auto pickable = static_cast<double>(pickable_count_.load(std::memory_order_relaxed));
    const auto cap =
        std::max<std::int64_t>(1, static_cast<std::int64_t>(pickable * config_.max_ejection_percent / 100.0));
    std::int64_t c = ejected_count_.load(std::memory_order_relaxed);
    do {
      if (c >= cap) return;
    } while (!ejected_count_.compare_exchange_weak(c, c + 1, std::memory_order_relaxed));
    std::uint32_t f = n.flags.load(std::memory_order_relaxed);
    do {
      if (f & (node_t::draining | node_t::removed | node_t::counted)) {
        ejected_count_.fetch_sub(1, std::memory_order_relaxed);
        return;
      }
    } while (!n.flags.compare_exchange_weak(f, f | node_t::counted, std::memory_order_acq_rel));
    const std::int64_t duration = std::max<std::int64_t>(1, n.health.eject(now));
    n.ejected_until.store(std::max<std::int64_t>(1, detail::sat_add(now, duration)), std::memory_order_relaxed);
    weights_epoch_.fetch_add(1, std::memory_order_relaxed);
  }

  static constexpr std::int64_t unread_time = std::numeric_limits<std::int64_t>::min();

  /// Ends a lease with a record; reads the clock only if something needs the
  /// time (`now`, or `sample_time` for the strategy's sample, when known).
  /// Touches the node for the last time when it releases the outstanding
  /// count: after that a sweep may free it.
  /// If the health policy throws (a user callback), the count is still
  /// released and the exception reaches the caller of record.
  void complete(node_t& n, outcome o, std::int64_t latency_ns, std::int64_t now, std::int64_t sample_time) {
    struct release_on_exit {
      balancer* self;
      node_t* node;
      ~release_on_exit() { self->release(*node); }
    } guard{this, &n};
    auto time = [&] { return now != unread_time ? now : (now = detail::now_ns(clock_)); };
    if constexpr (detail::records_outcomes<Strategy>)
      strategy_.record(n.state, o, latency_ns, sample_time != unread_time ? sample_time : time());
    if (n.health.record(o, latency_ns)) try_eject(n, time());
  }

  void release(node_t& n) noexcept {
    if constexpr (detail::tracks_total_outstanding<Strategy>)
      total_outstanding_.fetch_sub(1, std::memory_order_relaxed);
    n.outstanding.fetch_sub(1, std::memory_order_release);
  }

  template <class Ctx>
  static rejection unavailable(const snapshot& s, const view<Ctx>& v) noexcept {
    std::int64_t earliest = 0;
    for (const node_t* n : s.pickable) {
      const std::int64_t until = n->ejected_until.load(std::memory_order_relaxed);
      if (until != 0 && (earliest == 0 || until < earliest)) earliest = until;
    }
    if (earliest == 0) return reject(errc::no_backend, "no node can serve");
    rejection r = reject(errc::no_backend, "every node is ejected");
    r.retry_after = std::chrono::nanoseconds(std::max<std::int64_t>(0, earliest - v.now()));
    return r;
  }

  balancer_config config_;
  Strategy strategy_;
  typename Health::config health_config_;
  [[no_unique_address]] Clock clock_;

  // Writer side.
  mutable std::mutex writer_;
  std::vector<std::unique_ptr<node_t>> nodes_;
  std::vector<std::unique_ptr<node_t>> graveyard_;
  std::uint64_t last_id_ = 0;
  mutable std::atomic<std::uint64_t> writer_random_{0x77726974};
  mutable detail::no_context build_context_;

  // Shared, read-mostly.
  alignas(detail::cache_line) mutable std::atomic<std::int64_t> ejected_count_{0};
  std::atomic<std::int64_t> pickable_count_{0};
  mutable std::atomic<std::uint64_t> weights_epoch_{0};
  alignas(detail::cache_line) std::atomic<std::int64_t> total_outstanding_{0};

  detail::snapshot_cell<snapshot> cell_;  // last: built from the members above
};

}  // namespace keel
