// keel/balance/detail/cycle_table.hpp — one full weighted round-robin cycle, precomputed.
//
// Weighted round robin is usually a per-pick computation under a lock: nginx
// scans every peer (smooth WRR), Envoy pops and pushes an EDF heap. Both give
// the same sequence every cycle of sum(weights) picks while weights stay put,
// so keel computes the cycle once into a table and a pick is one fetch_add on
// a sequence number: lock-free and O(1) for any number of nodes (the approach
// of gRPC's static stride scheduler, A58, but exact over a cycle).
//
// The table is rebuilt when effective weights change (slow start, ejections,
// load reports). A rebuild writes entries in place while readers run: every
// entry is an atomic index below the node count of the snapshot the table
// belongs to, so a reader that sees half of the old and half of the new cycle
// still gets a valid node, only a slightly different share for one cycle.
//
// Weights are quantised to integers whose sum is at most `max_cycle`: integer
// weights whose sum fits are kept exactly (then divided by their gcd), other
// weights are scaled to the cycle length, each nonzero weight keeping at least 1.
#pragma once

#include <keel/core/detail/cache_line.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <queue>
#include <vector>

namespace keel::detail {

enum class cycle_order {
  smooth,  ///< nginx smooth weighted round robin (ngx_http_upstream_get_peer)
  edf,     ///< earliest deadline first: pick i when its next deadline (k+1)/w_i is earliest (Envoy, gRPC)
};

/// Integer weights proportional to `weights` with sum ≤ max_cycle (0 stays 0).
inline std::vector<std::uint64_t> quantise_weights(const std::vector<double>& weights, std::size_t max_cycle) {
  std::vector<std::uint64_t> q(weights.size(), 0);
  double sum = 0;
  bool integral = true;
  for (const double w : weights) {
    sum += w;
    integral = integral && w == std::floor(w) && w < 1e15;
  }
  if (sum <= 0) return q;
  if (integral && sum <= static_cast<double>(max_cycle)) {
    for (std::size_t i = 0; i < weights.size(); ++i) q[i] = static_cast<std::uint64_t>(weights[i]);
  } else {
    const double scale = static_cast<double>(max_cycle) / sum;
    for (std::size_t i = 0; i < weights.size(); ++i)
      if (weights[i] > 0) q[i] = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::floor(weights[i] * scale)));
  }
  std::uint64_t g = 0;
  for (const std::uint64_t x : q) g = std::gcd(g, x);
  if (g > 1)
    for (auto& x : q) x /= g;
  return q;
}

/// Appends one full cycle of node indices for integer weights q, in `order`.
inline void build_cycle(const std::vector<std::uint64_t>& q, cycle_order order, std::vector<std::uint32_t>& out) {
  out.clear();
  const std::uint64_t total = std::accumulate(q.begin(), q.end(), std::uint64_t{0});
  out.reserve(total);
  if (order == cycle_order::smooth) {
    // nginx: every peer's current weight grows by its weight; the largest is
    // picked and pays back the total. Ties go to the lowest index.
    std::vector<std::int64_t> current(q.size(), 0);
    for (std::uint64_t step = 0; step < total; ++step) {
      std::size_t best = q.size();
      for (std::size_t i = 0; i < q.size(); ++i) {
        if (q[i] == 0) continue;
        current[i] += static_cast<std::int64_t>(q[i]);
        if (best == q.size() || current[i] > current[best]) best = i;
      }
      current[best] -= static_cast<std::int64_t>(total);
      out.push_back(static_cast<std::uint32_t>(best));
    }
    return;
  }
  // EDF: node i's k-th pick has deadline (k + 1) / q_i. Compared exactly as
  // (k_a + 1) × q_b < (k_b + 1) × q_a; ties go to the lowest index, as an
  // order offset does in Envoy's scheduler.
  struct entry {
    std::uint64_t next;  // k + 1
    std::uint64_t weight;
    std::uint32_t index;
  };
  auto later = [](const entry& a, const entry& b) {
    // Both factors are at most max_cycle (≤ 2^24), so the products fit.
    const std::uint64_t lhs = a.next * b.weight;
    const std::uint64_t rhs = b.next * a.weight;
    return lhs != rhs ? lhs > rhs : a.index > b.index;
  };
  std::priority_queue<entry, std::vector<entry>, decltype(later)> heap(later);
  for (std::size_t i = 0; i < q.size(); ++i)
    if (q[i] > 0) heap.push(entry{1, q[i], static_cast<std::uint32_t>(i)});
  for (std::uint64_t step = 0; step < total; ++step) {
    entry e = heap.top();
    heap.pop();
    out.push_back(e.index);
    ++e.next;
    heap.push(e);
  }
}

/// A cycle that readers walk with one atomic counter while a writer may refill it.
class cycle_table {
 public:
  explicit cycle_table(std::size_t max_cycle)
      : capacity_(max_cycle), entries_(std::make_unique<std::atomic<std::uint32_t>[]>(max_cycle)) {}

  /// Replaces the cycle (one writer at a time: callers hold the rebuild flag).
  void assign(const std::vector<std::uint32_t>& cycle) noexcept {
    const std::size_t n = std::min(cycle.size(), capacity_);
    for (std::size_t i = 0; i < n; ++i) entries_[i].store(cycle[i], std::memory_order_relaxed);
    length_.store(n, std::memory_order_release);
  }

  std::size_t length() const noexcept { return length_.load(std::memory_order_acquire); }

  /// The next node index of the cycle, or npos when the cycle is empty.
  std::size_t next() noexcept {
    const std::size_t n = length();
    if (n == 0) return npos;
    const std::uint64_t s = sequence_.fetch_add(1, std::memory_order_relaxed);
    return entries_[s % n].load(std::memory_order_relaxed);
  }

  /// Entry `offset` positions after the last one handed out (for skipping unusable nodes).
  std::size_t peek_after(std::size_t offset) const noexcept {
    const std::size_t n = length();
    if (n == 0) return npos;
    const std::uint64_t s = sequence_.load(std::memory_order_relaxed) + offset;
    return entries_[s % n].load(std::memory_order_relaxed);
  }

  void reset_sequence() noexcept { sequence_.store(0, std::memory_order_relaxed); }

  /// Try-lock for rebuilds: a picker that loses the race uses the old cycle.
  bool try_begin_rebuild() noexcept { return !rebuilding_.exchange(true, std::memory_order_acquire); }
  void end_rebuild() noexcept { rebuilding_.store(false, std::memory_order_release); }

  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

 private:
  std::size_t capacity_;
  std::unique_ptr<std::atomic<std::uint32_t>[]> entries_;
  std::atomic<std::size_t> length_{0};
  alignas(cache_line) std::atomic<std::uint64_t> sequence_{0};
  std::atomic<bool> rebuilding_{false};
};

/// A cycle_table plus the rule for when to rebuild it: when the balancer's
/// weights epoch moved (an ejection, a return, a slow start beginning) or,
/// while weights drift on their own (slow start, load reports), every
/// update_period.
class cycle_scheduler {
 public:
  cycle_scheduler(std::size_t max_cycle, cycle_order order, std::int64_t update_period_ns)
      : table_(max_cycle), max_cycle_(max_cycle), order_(order), update_period_ns_(update_period_ns) {}

  /// weight_of(view, i) -> double: the weight of usable node i (unusable nodes get 0).
  /// drifting(view) -> bool: whether weights change with time alone.
  template <class View, class WeightOf, class Drifting>
  std::size_t pick(const View& v, WeightOf&& weight_of, Drifting&& drifting) {
    if (stale(v) && table_.try_begin_rebuild()) {
      if (stale(v)) rebuild(v, weight_of, drifting);
      table_.end_rebuild();
    }
    const std::size_t n = v.size();
    for (std::size_t tries = 0; tries <= n; ++tries) {
      const std::size_t i = table_.next();
      if (i == cycle_table::npos) break;
      if (v.usable(i)) return i;
    }
    for (std::size_t i = 0; i < n; ++i)  // every entry we met was ejected: any usable node will do
      if (v.usable(i)) return i;
    return cycle_table::npos;
  }

  /// Builds the cycle now (the writer does this for every new snapshot).
  template <class View, class WeightOf, class Drifting>
  void rebuild(const View& v, WeightOf&& weight_of, Drifting&& drifting) {
    epoch_.store(v.weights_epoch(), std::memory_order_relaxed);
    std::vector<double> weights(v.size(), 0.0);
    std::int64_t next = std::numeric_limits<std::int64_t>::max();
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v.usable(i)) {
        weights[i] = weight_of(v, i);
      } else {
        next = std::min(next, v.ejected_until(i));  // it gets entries again when it may return
      }
    }
    std::vector<std::uint32_t> cycle;
    build_cycle(quantise_weights(weights, max_cycle_), order_, cycle);
    table_.assign(cycle);
    table_.reset_sequence();
    if (drifting(v)) next = std::min(next, v.now() + update_period_ns_);
    next_rebuild_ns_.store(next, std::memory_order_relaxed);
  }

  std::size_t cycle_length() const noexcept { return table_.length(); }

 private:
  template <class View>
  bool stale(const View& v) const noexcept {
    if (epoch_.load(std::memory_order_relaxed) != v.weights_epoch()) return true;
    const std::int64_t next = next_rebuild_ns_.load(std::memory_order_relaxed);
    return next != std::numeric_limits<std::int64_t>::max() && v.now() >= next;
  }

  cycle_table table_;
  std::size_t max_cycle_;
  cycle_order order_;
  std::int64_t update_period_ns_;
  std::atomic<std::uint64_t> epoch_{0};
  std::atomic<std::int64_t> next_rebuild_ns_{std::numeric_limits<std::int64_t>::max()};
};

}  // namespace keel::detail
