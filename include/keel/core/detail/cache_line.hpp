// keel/core/detail/cache_line.hpp — padding against false sharing.
//
// std::hardware_destructive_interference_size varies with compiler flags (GCC
// warns that using it in a header is an ABI hazard), so keel fixes one value.
// 64 bytes is the line size of x86-64 and most AArch64 cores; the adjacent-
// line prefetcher on Intel pulls pairs, so hot atomics that different threads
// write are kept two lines apart where it pays.
#pragma once

#include <cstddef>

namespace keel::detail {

inline constexpr std::size_t cache_line = 64;

/// A value alone on its cache line(s).
template <class T>
struct alignas(cache_line) padded {
  T value{};
};

}  // namespace keel::detail
