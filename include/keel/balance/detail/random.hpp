// keel/balance/detail/random.hpp — the cheap, seedable randomness strategies draw from.
//
// Strategies that sample (power of d choices) need a few random numbers per
// pick. A shared std::mt19937 behind a lock would cost more than the pick, so
// each reader stripe of the balancer keeps a Weyl sequence (a counter advanced
// by an odd constant) and each value is scrambled from it. Seeded from the
// balancer's seed, so single-threaded runs are repeatable. A pick copies its
// stripe's state into a register and stores it back once at the end
// (balancer::view); threads sharing a stripe may occasionally draw the same
// numbers, which costs nothing but a little randomness.
#pragma once

#include <keel/core/detail/random.hpp>

#include <cstddef>
#include <cstdint>

namespace keel::detail {

/// 64 random bits from a Weyl state. Where the compiler has 128-bit
/// integers this is wyrand (Wang Yi's generator from wyhash; it passes
/// BigCrush and PractRand): one 64×64→128 multiplication folded to 64 bits,
/// half the dependent latency of SplitMix64's two multiplications, and a
/// recommended pick draws four or five numbers. Elsewhere it is SplitMix64.
inline std::uint64_t next_random(std::uint64_t& state) noexcept {
#if defined(__SIZEOF_INT128__)
  __extension__ typedef unsigned __int128 u128;  // __extension__: no -Wpedantic warning
  state += 0xa0761d6478bd642fULL;
  const u128 product = static_cast<u128>(state) * (state ^ 0xe7037ed1a0b428dbULL);
  return static_cast<std::uint64_t>(product >> 64) ^ static_cast<std::uint64_t>(product);
#else
  return splitmix64(state);
#endif
}

/// A uniform index in [0, n) from random bits, without division (Lemire,
/// "Fast random integer generation in an interval", 2019, on the top 32 bits;
/// the bias, below n / 2^32, is irrelevant for n up to a few thousand nodes).
constexpr std::size_t bounded(std::uint64_t random, std::size_t n) noexcept {
  return static_cast<std::size_t>(((random >> 32) * static_cast<std::uint64_t>(n)) >> 32);
}

}  // namespace keel::detail
