// keel/balance/detail/sampling.hpp — draw random usable candidates (power of d choices).
#pragma once

#include <keel/balance/detail/random.hpp>

#include <cstddef>

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

/// Power of `choices` choices: the candidate with the lowest cost(v, i).
template <class View, class Cost>
std::size_t best_of_random(const View& v, std::size_t choices, Cost&& cost) {
  std::size_t best = sample_usable(v, no_node);
  if (best == no_node || v.size() == 1) return best;
  double best_cost = cost(v, best);
  for (std::size_t c = 1; c < choices; ++c) {
    const std::size_t i = sample_usable(v, best);
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
