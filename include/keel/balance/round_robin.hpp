// keel/balance/round_robin.hpp — round robin, plain and weighted.
//
//  * round_robin: every node in turn, weights ignored — the baseline that
//    gives an old GPU the same share as an H100.
//  * smooth_weighted_round_robin: nginx's smooth WRR. Over every cycle of
//    sum(weights) picks each node gets exactly its weight, spread out
//    (weights 5, 1, 1 give a a b a c a a, not a a a a a b c).
//  * edf_round_robin: the earliest-deadline-first order of Envoy and gRPC
//    (node i's k-th turn is due at k / w_i). Same shares, a different
//    interleaving; exact for any weights, not only integers, up to max_cycle.
//
// Both weighted orders are computed once per weight change into a cycle table
// (detail/cycle_table.hpp), so a pick is one atomic increment. Ejected nodes
// get weight 0 from the next pick on; nodes in slow start are re-weighted
// every update_period while they ramp.
//
//   keel::balancer<gpu, keel::edf_round_robin> lb;
//   lb.add(h100, 3); lb.add(a100, 2); lb.add(l4, 1);   // 3 : 2 : 1 of the calls
#pragma once

#include <keel/balance/detail/cycle_table.hpp>
#include <keel/core/detail/fatal.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace keel {

/// Unweighted round robin: node k, k+1, ... skipping ejected nodes.
struct round_robin {
  struct node_state {};
  struct table {
    template <class View>
    table(const round_robin&, const View&) noexcept {}
    std::atomic<std::uint64_t> next{0};
  };

  template <class View>
  std::size_t pick(table& t, const View& v) const noexcept {
    const std::size_t n = v.size();
    const std::uint64_t s = t.next.fetch_add(1, std::memory_order_relaxed);
    for (std::size_t k = 0; k < n; ++k) {
      const auto i = static_cast<std::size_t>((s + k) % n);
      if (v.usable(i)) return i;
    }
    return static_cast<std::size_t>(-1);
  }
};

/// Settings shared by the weighted round-robin orders.
struct weighted_round_robin_config {
  /// Longest cycle kept: integer weights summing to at most this are exact;
  /// others are scaled to it. At most 2^24.
  std::size_t max_cycle = 1024;
  /// How often weights are recomputed while some node is in slow start.
  std::chrono::nanoseconds update_period = std::chrono::seconds(1);

  void validate() const {
    detail::require_config(max_cycle >= 1 && max_cycle <= (std::size_t{1} << 24),
                           "keel::weighted_round_robin: max_cycle must be in [1, 2^24]");
    detail::require_config(update_period.count() > 0, "keel::weighted_round_robin: update_period must be positive");
  }
};

namespace detail {
template <cycle_order Order>
class basic_weighted_round_robin {
 public:
  using config = weighted_round_robin_config;
  struct node_state {};

  class table {
   public:
    template <class View>
    table(const basic_weighted_round_robin& s, const View& v)
        : scheduler_(s.config_.max_cycle, Order, s.config_.update_period.count()) {
      scheduler_.rebuild(v, weight_of, drifting);
    }
    std::size_t cycle_length() const noexcept { return scheduler_.cycle_length(); }

   private:
    friend class basic_weighted_round_robin;
    static constexpr auto weight_of = [](const auto& v, std::size_t i) { return v.weight(i); };
    static constexpr auto drifting = [](const auto& v) {
      for (std::size_t i = 0; i < v.size(); ++i)
        if (v.ramping(i)) return true;
      return false;
    };
    cycle_scheduler scheduler_;
  };

  basic_weighted_round_robin() : basic_weighted_round_robin(config{}) {}
  explicit basic_weighted_round_robin(const config& c) : config_(c) { c.validate(); }

  template <class View>
  std::size_t pick(table& t, const View& v) const {
    return t.scheduler_.pick(v, table::weight_of, table::drifting);
  }

 private:
  config config_;
};
}  // namespace detail

/// nginx smooth weighted round robin, exact over each cycle of sum(weights) picks.
using smooth_weighted_round_robin = detail::basic_weighted_round_robin<detail::cycle_order::smooth>;
/// Earliest-deadline-first weighted round robin (Envoy, gRPC), exact over each cycle.
using edf_round_robin = detail::basic_weighted_round_robin<detail::cycle_order::edf>;

}  // namespace keel
