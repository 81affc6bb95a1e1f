// keel/balance/detail/sampling.hpp — draw random usable candidates (power of d choices).
#pragma once

#include <keel/balance/detail/random.hpp>

#include <algorithm>
#include <cstddef>
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

/// Cumulative configured weights of a snapshot's nodes, for drawing a node
/// with probability proportional to its weight (O(log n) per draw).
class weight_sampler {
 public:
  template <class View>
  explicit weight_sampler(const View& v) {
    double sum = 0;
    cumulative_.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) cumulative_.push_back(sum += v.configured_weight(i));
  }

  /// A usable node other than `exclude` drawn by weight, or no_node.
  template <class View>
  std::size_t sample(const View& v, std::size_t exclude) const {
    if (cumulative_.size() != v.size() || cumulative_.empty()) return sample_usable(v, exclude);
    for (int tries = 0; tries < 4; ++tries) {
      const double x = static_cast<double>(v.random() >> 11) * 0x1.0p-53 * cumulative_.back();
      const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), x);
      const auto i = std::min(static_cast<std::size_t>(it - cumulative_.begin()), cumulative_.size() - 1);
      if (i != exclude && v.usable(i)) return i;
    }
    return sample_usable(v, exclude);  // mostly ejected or one heavy node: fall back to uniform
  }

 private:
  std::vector<double> cumulative_;
};

/// Uniform candidates (Mitzenmacher; Envoy, Finagle).
struct uniform_candidates {
  template <class View>
  std::size_t operator()(const View& v, std::size_t exclude) const {
    return sample_usable(v, exclude);
  }
};

/// Power of `choices` choices: the candidate with the lowest cost(v, i),
/// candidates drawn by draw(v, exclude).
template <class View, class Cost, class Draw = uniform_candidates>
std::size_t best_of_random(const View& v, std::size_t choices, Cost&& cost, Draw&& draw = {}) {
  std::size_t best = draw(v, no_node);
  if (best == no_node || v.size() == 1) return best;
  double best_cost = cost(v, best);
  for (std::size_t c = 1; c < choices; ++c) {
    const std::size_t i = draw(v, best);
    if (i == no_node) break;
    const double ci = cost(v, i);
    if (ci < best_cost) {
      best = i;
      best_cost = ci;
    }
  }
  return best;
}

}  // namespace keel::detail
