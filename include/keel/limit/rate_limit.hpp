// keel/limit/rate_limit.hpp — how much a limiter lets through.
//
// A rate_limit is a sustained rate (cost units per period) and a burst (the
// most cost admitted at once, from a rested limiter). Cost is whatever you
// count: 1 per request for RPM, tokens for TPM, bytes, GPU-seconds.
//
//   auto rpm = keel::rate_limit::per_minute(600);            // burst = 600
//   auto tpm = keel::rate_limit::per_minute(90'000, 20'000); // smaller burst
//   auto custom = keel::rate_limit{.rate = 5, .burst = 10, .period = std::chrono::hours(1)};
//
// GCRA (see gcra.hpp) turns it into two integers: the emission interval
// T = period / rate, rounded to the nearest nanosecond, and the tolerance
// τ = burst × T. Rounding T is the only approximation: the rate a limiter
// enforces is period / T, off by at most 0.5 ns per unit of cost (0.05% at one
// million units per second, 5·10⁻⁷ at 90 000 tokens per minute).
#pragma once

#include <keel/core/detail/fatal.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>

namespace keel {

struct rate_limit {
  double rate = 0;         ///< cost units per `period`: positive and finite
  std::int64_t burst = 0;  ///< cost admitted at once from rest; at least 1; a larger cost is never admitted
  std::chrono::nanoseconds period = std::chrono::seconds(1);

  /// `rate` per second; burst defaults to one second's worth (at least 1).
  static constexpr rate_limit per_second(double rate, std::int64_t burst = 0) noexcept {
    return {rate, burst > 0 ? burst : one_period(rate), std::chrono::seconds(1)};
  }
  /// `rate` per minute (RPM, TPM); burst defaults to one minute's worth (at least 1).
  static constexpr rate_limit per_minute(double rate, std::int64_t burst = 0) noexcept {
    return {rate, burst > 0 ? burst : one_period(rate), std::chrono::minutes(1)};
  }

  friend constexpr bool operator==(const rate_limit&, const rate_limit&) = default;

 private:
  // ceil(rate), clamped so that a huge or invalid rate reaches validation
  // (which rejects it with a clear message) instead of an undefined conversion.
  static constexpr std::int64_t one_period(double rate) noexcept {
    if (!(rate >= 1)) return 1;  // also NaN
    if (rate >= 4e18) return std::numeric_limits<std::int64_t>::max();
    const auto whole = static_cast<std::int64_t>(rate);
    return static_cast<double>(whole) < rate ? whole + 1 : whole;
  }
};

namespace detail {

/// The largest time span keel's limiters hold in one tolerance or debt:
/// 2^62 ns (146 years), so sums of two such spans and a clock reading stay in int64.
inline constexpr std::int64_t max_span_ns = std::int64_t{1} << 62;

/// A rate_limit in GCRA form: emission interval T and tolerance τ = burst × T, in ns.
struct gcra_params {
  std::int64_t interval = 1;
  std::int64_t tolerance = 1;
  friend constexpr bool operator==(const gcra_params&, const gcra_params&) = default;
};

/// Validates `limit` (keel::config_error, or abort without exceptions) and converts it.
inline gcra_params to_gcra(const rate_limit& limit) {
  require_config(std::isfinite(limit.rate) && limit.rate > 0, "keel::limit: rate must be a positive, finite number");
  require_config(limit.period.count() > 0, "keel::limit: period must be positive");
  require_config(limit.burst >= 1, "keel::limit: burst must be at least 1");
  const long double interval = static_cast<long double>(limit.period.count()) / static_cast<long double>(limit.rate);
  require_config(interval >= 0.5L,
                 "keel::limit: rate must be at most one unit per nanosecond (period / rate must be at least 1 ns)");
  require_config(
      interval < static_cast<long double>(max_span_ns) && std::llround(interval) <= max_span_ns / limit.burst,
      "keel::limit: burst * period / rate must be under 2^62 ns (146 years)");
  const auto t = static_cast<std::int64_t>(std::llround(interval));
  return {t, t * limit.burst};
}

}  // namespace detail
}  // namespace keel
