// keel/balance/detail/random.hpp — the cheap, seedable randomness strategies draw from.
//
// Strategies that sample (power of two choices) need a few random numbers per
// pick. A shared std::mt19937 behind a lock would cost more than the pick, so
// each reader stripe of the balancer keeps a Weyl sequence (a counter advanced
// by an odd constant) and the value is scrambled with SplitMix64's finaliser
// (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
// OOPSLA 2014). Seeded from the balancer's seed, so single-threaded runs are
// repeatable. A pick copies its stripe's state into a register and stores it
// back once at the end (balancer::view); threads sharing a stripe may
// occasionally draw the same numbers, which costs nothing but a little
// randomness.
#pragma once

#include <keel/core/detail/random.hpp>

#include <cstddef>
#include <cstdint>

namespace keel::detail {

/// A uniform index in [0, n) from random bits, without division (Lemire,
/// "Fast random integer generation in an interval", 2019, on the top 32 bits;
/// the bias, below n / 2^32, is irrelevant for n up to a few thousand nodes).
constexpr std::size_t bounded(std::uint64_t random, std::size_t n) noexcept {
  return static_cast<std::size_t>(((random >> 32) * static_cast<std::uint64_t>(n)) >> 32);
}

}  // namespace keel::detail
