// keel/balance/detail/sampling.hpp — draw random usable candidates (power of d choices).
#pragma once

#include <keel/balance/detail/random.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace keel::detail {

inline constexpr std::size_t no_node = static_cast<std::size_t>(-1);

/// A uniformly random usable node other than `exclude`, or no_node. A few
/// random draws first (ejected nodes are a minority outside panic mode, so
/// they almost always hit), then a scan from a random start, so an ejected
/// node is never returned and a usable one is always found when it exists.
template <class View>
std::size_t sample_usable(const View& v, std::size_t exclude) {
  const std::size_t n = v.size();
  for (int tries = 0; tries < 4; ++tries) {
    const std::size_t i = bounded(v.random(), n);
    if (i != exclude && v.usable(i)) return i;
  }
  const std::size_t start = bounded(v.random(), n);
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (start + k) % n;
    if (i != exclude && v.usable(i)) return i;
  }
  return no_node;
}

/// Draws a node with probability proportional to its configured weight in
/// O(1): Vose's alias method (Vose, "A linear algorithm for generating random
/// numbers with a given distribution", 1991), built once per snapshot. One
/// random number picks a column and decides between it and its alias.
class weight_sampler {
 public:
  template <class View>
  explicit weight_sampler(const View& v) : columns_(v.size()) {
    const std::size_t n = v.size();
    if (n == 0) return;
    std::vector<double> scaled(n);
    const double total = v.total_weight();
    std::vector<std::uint32_t> small, large;
    for (std::size_t i = 0; i < n; ++i) {
      scaled[i] = v.configured_weight(i) * static_cast<double>(n) / total;
      (scaled[i] < 1.0 ? small : large).push_back(static_cast<std::uint32_t>(i));
    }
    while (!small.empty() && !large.empty()) {
      const std::uint32_t s = small.back(), l = large.back();
      small.pop_back();
      columns_[s] = {static_cast<std::uint32_t>(scaled[s] * 0x1.0p32), l};  // scaled[s] < 1: fits
      scaled[l] -= 1.0 - scaled[s];
      if (scaled[l] < 1.0) {
        large.pop_back();
        small.push_back(l);
      }
    }
    for (const std::uint32_t i : large) columns_[i] = {0, i};  // a full column: the alias is itself
    for (const std::uint32_t i : small) columns_[i] = {0, i};  // rounding leftovers
  }

  /// A usable node other than `exclude` drawn by weight, or no_node. `v`
  /// views the snapshot the table was built for (the balancer keeps the
  /// table in the snapshot), so the sizes agree, and it is never empty (the
  /// balancer does not ask a strategy to pick from an empty snapshot).
  template <class View>
  std::size_t sample(const View& v, std::size_t exclude) const {
    const std::size_t n = columns_.size();
    for (int tries = 0; tries < 4; ++tries) {
      const std::uint64_t r = v.random();
      const std::size_t column = bounded(r, n);  // from the top 32 bits; the coin is the low 32
      const entry e = columns_[column];
      // column if coin < threshold, else alias; without a branch (the coin is unpredictable).
      const std::size_t keep = std::size_t{0} - static_cast<std::size_t>((r & 0xffffffffU) < e.threshold);
      const std::size_t i = e.alias ^ ((column ^ e.alias) & keep);
      if (i != exclude && v.usable(i)) return i;
    }
    return sample_usable(v, exclude);  // mostly ejected, or one heavy node: uniform over the rest
  }

 private:
  struct entry {
    std::uint32_t threshold = 0;  ///< P(column) × 2^32; a full column keeps alias == column
    std::uint32_t alias = 0;
  };
  std::vector<entry> columns_;
};

/// Uniform candidates (Mitzenmacher; Envoy, Finagle).
struct uniform_candidates {
  template <class View>
  std::size_t operator()(const View& v, std::size_t exclude) const {
    return sample_usable(v, exclude);
  }
};

/// Power of `choices` choices: the candidate with the lowest cost(v, i)
/// (the first on a tie), each candidate drawn by draw(v, best so far).
///
/// The running minimum is kept without a branch: which candidate is cheaper
/// is a coin toss the branch predictor loses half the time, and a lost
/// guess throws away the next candidate's draw and cost already under way.
/// The draw's own test against `best` is predictable (a repeat is rare) and
/// speculates past it, so the candidates' costs — each a chain of dependent
/// loads and multiplications — are computed side by side.
template <class View, class Cost, class Draw = uniform_candidates>
std::size_t best_of_random(const View& v, std::size_t choices, Cost&& cost, Draw&& draw = {}) {
  std::size_t best = draw(v, no_node);
  if (best == no_node || v.size() == 1) return best;
  double best_cost = cost(v, best);
  for (std::size_t c = 1; c < choices; ++c) {
    const std::size_t i = draw(v, best);
    if (i == no_node) break;
    const double ci = cost(v, i);
    const std::size_t cheaper = std::size_t{0} - static_cast<std::size_t>(ci < best_cost);  // all ones or zero
    best ^= (best ^ i) & cheaper;
    best_cost = ci < best_cost ? ci : best_cost;  // minsd
  }
  return best;
}

}  // namespace keel::detail
