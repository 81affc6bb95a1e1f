// keel/limit/detail/gcra_math.hpp — the Generic Cell Rate Algorithm as pure functions.
//
// GCRA (ATM Forum TM 4.0, ITU-T I.371; Brandur Leach's "Rate limiting, cells
// and GCRA" for the API-limiting reading) keeps one number per limit: the
// theoretical arrival time (TAT), the instant at which the limiter would be
// back at rest if nothing more arrived. With emission interval T and tolerance
// τ = burst × T, a call of cost c at time `now`:
//
//   new_tat = max(TAT, now) + c × T
//   admit  ⇔ new_tat − τ ≤ now            (then TAT := new_tat)
//   else retry_after = new_tat − τ − now  (exact: the first instant it would pass)
//
// It is a token bucket seen from the other side — tokens available at `now`
// are (now + τ − max(TAT, now)) / T — but needs no refill step and one word of
// state, so one CAS updates it (governor keeps it in one AtomicU64 the same
// way). The functions below are shared by every keel limiter and by nothing
// else; all arithmetic saturates, so no cost, clock reading or debt overflows.
#pragma once

#include <keel/core/detail/saturate.hpp>
#include <keel/limit/rate_limit.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>

namespace keel::detail {

/// The TAT of a limiter that has never admitted anything: "rested since forever".
inline constexpr std::int64_t rested_tat = i64_min;

/// cost × interval for cost ≥ 0 and interval > 0, saturating at i64_max.
constexpr std::int64_t cost_time(std::int64_t cost, std::int64_t interval) noexcept {
  std::int64_t r = 0;
  if (__builtin_mul_overflow(cost, interval, &r)) return i64_max;
  return r;
}

enum class gcra_verdict : unsigned char { admit, reject, never };

struct gcra_decision {
  std::int64_t new_tat = 0;  ///< the TAT to store when admitted
  std::int64_t wait = 0;     ///< ns from now until the call conforms: retry_after when rejected, the
                             ///< wait before proceeding when admitted ahead of time (horizon > now)
  gcra_verdict verdict = gcra_verdict::never;
};

/// Judges a call of `cost` (≥ 0) at `now`, admitting it if it conforms at or
/// before `horizon` (now for try_acquire; a deadline for a blocking acquire,
/// which charges its future slot at once and sleeps until it, as
/// x/time/rate's Reserve/Wait do). A cost above the burst is `never`.
constexpr gcra_decision gcra_decide(std::int64_t tat, std::int64_t now, std::int64_t horizon, std::int64_t cost,
                                    gcra_params p) noexcept {
  const std::int64_t charge = cost_time(cost, p.interval);
  if (charge > p.tolerance) return {tat, 0, gcra_verdict::never};
  const std::int64_t new_tat = sat_add(std::max(tat, now), charge);
  const std::int64_t conform_at = sat_sub(new_tat, p.tolerance);
  const std::int64_t wait = std::max<std::int64_t>(0, sat_sub(conform_at, now));
  return {new_tat, wait, conform_at <= std::max(horizon, now) ? gcra_verdict::admit : gcra_verdict::reject};
}

/// The TAT after an admitted call's cost changes by `delta` cost units
/// (reserve-then-settle). A debt (delta > 0) is charged like an admission
/// without the conformance test, so later callers wait for it. A refund
/// (delta < 0) moves TAT back, but never behind `now`: capacity that returns
/// after the limiter is already at rest would overflow the bucket.
constexpr std::int64_t gcra_adjust(std::int64_t tat, std::int64_t now, std::int64_t delta, gcra_params p) noexcept {
  if (delta > 0) return sat_add(std::max(tat, now), cost_time(delta, p.interval));
  if (delta < 0) {
    const std::int64_t refund = cost_time(delta == i64_min ? i64_max : -delta, p.interval);
    return std::max(sat_sub(tat, refund), std::min(tat, now));
  }
  return tat;
}

/// Whole cost units admissible at `now`, rounded down (negative while in debt), for stats.
constexpr std::int64_t gcra_available(std::int64_t tat, std::int64_t now, gcra_params p) noexcept {
  const std::int64_t headroom = sat_sub(sat_add(now, p.tolerance), std::max(tat, now));
  const std::int64_t units = headroom / p.interval;
  return headroom < 0 && units * p.interval != headroom ? units - 1 : units;
}

}  // namespace keel::detail
