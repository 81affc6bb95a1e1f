// keel/balance/detail/random.hpp — the cheap, seedable randomness strategies draw from.
//
// Strategies that sample (power of two choices) need a few random numbers per
// pick. A shared std::mt19937 behind a lock would cost more than the pick, so
// each reader stripe of the balancer keeps a Weyl sequence (a counter advanced
// by an odd constant) and the value is scrambled with SplitMix64's finaliser
// (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
// OOPSLA 2014). Seeded from the balancer's seed, so single-threaded runs are
// repeatable; threads sharing a stripe may occasionally draw the same number,
// which costs nothing but a little randomness.
#pragma once

#include <keel/core/detail/random.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace keel::detail {

/// A uniform index in [0, n) from random bits, without division (Lemire,
/// "Fast random integer generation in an interval", 2019, on the top 32 bits;
/// the bias, below n / 2^32, is irrelevant for n up to a few thousand nodes).
constexpr std::size_t bounded(std::uint64_t random, std::size_t n) noexcept {
  return static_cast<std::size_t>(((random >> 32) * static_cast<std::uint64_t>(n)) >> 32);
}

/// Advances a Weyl state and returns 64 scrambled bits. A relaxed load and
/// store rather than fetch_add: the state belongs to one thread in practice,
/// and a lost update between two threads only repeats a number.
inline std::uint64_t next_random(std::atomic<std::uint64_t>& state) noexcept {
  const std::uint64_t x = state.load(std::memory_order_relaxed) + weyl_step;
  state.store(x, std::memory_order_relaxed);
  return mix64(x);
}

}  // namespace keel::detail
