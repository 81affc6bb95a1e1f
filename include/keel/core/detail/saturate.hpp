// keel/core/detail/saturate.hpp — time arithmetic that cannot wrap.
//
// keel keeps time as signed 64-bit nanoseconds. A clock near its end, a
// huge TTL or a far-future deadline must clamp, not wrap into the past.
#pragma once

#include <cstdint>
#include <limits>

namespace keel::detail {

inline constexpr std::int64_t i64_max = std::numeric_limits<std::int64_t>::max();
inline constexpr std::int64_t i64_min = std::numeric_limits<std::int64_t>::min();

/// a + b, clamped to [i64_min, i64_max].
constexpr std::int64_t sat_add(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? i64_max : i64_min;
  return r;
}

/// a - b, clamped to [i64_min, i64_max].
constexpr std::int64_t sat_sub(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t r = 0;
  if (__builtin_sub_overflow(a, b, &r)) return b < 0 ? i64_max : i64_min;
  return r;
}

}  // namespace keel::detail
