// keel/core/detail/random.hpp — SplitMix64, the one mixer and tiny generator keel uses.
//
// Components need cheap, seedable, repeatable randomness (balancer sampling,
// breaker jitter) and a strong 64-bit mix of a hash (slot indices). Both are
// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
// generators", OOPSLA 2014): a Weyl sequence scrambled by a bijective finaliser.
#pragma once

#include <cstdint>

namespace keel::detail {

/// SplitMix64's output function: a bijective 64-bit mixer.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// The Weyl increment (2^64 / golden ratio, odd).
inline constexpr std::uint64_t weyl_step = 0x9e3779b97f4a7c15ULL;

/// Advances `state` by one Weyl step and returns 64 scrambled bits.
constexpr std::uint64_t splitmix64(std::uint64_t& state) noexcept { return mix64(state += weyl_step); }

}  // namespace keel::detail
