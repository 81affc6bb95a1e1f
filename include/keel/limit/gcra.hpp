// keel/limit/gcra.hpp — a lock-free, cost-weighted rate limiter (GCRA).
//
// gcra_limiter admits calls at a sustained rate with a burst, where each call
// has a cost (1 per request, or tokens, bytes, ...). Its whole state is one
// 64-bit atomic — the theoretical arrival time (TAT) in integer nanoseconds —
// updated by a compare_exchange_weak loop, so admission never takes a lock
// and never blocks (see detail/gcra_math.hpp for the algorithm).
//
//   keel::gcra_limiter tpm{keel::rate_limit::per_minute(90'000)};
//   if (auto ok = tpm.try_acquire(prompt_tokens); !ok)
//     return ok.error();                       // rate_limited, retry_after exact
//
//   // LLM output tokens are unknown at admission: reserve, then settle.
//   auto permit = tpm.reserve(prompt_tokens + max_tokens);
//   if (!permit) return permit.error();
//   auto reply = model(request);
//   permit->settle(reply.usage.total_tokens);  // refund or debt; dropping keeps the estimate
//
//   tpm.acquire(500, deadline);   // sleeps until admitted, or fails at once if it cannot be by deadline
//
// try_acquire has nothing to record afterwards, so it returns result<void>;
// reserve is the admit-then-record form and returns a permit. Rejections:
// errc::rate_limited with retry_after = the exact time until the same call
// would be admitted (if nothing else is admitted meanwhile);
// errc::invalid_argument for a negative cost or a cost above the burst, which
// no wait can ever admit.
//
// Time: TAT is absolute, so a clock that stands still admits the burst and no
// more, a jump ahead leaves the limiter at rest (one burst, not years of
// rate), and a clock going backwards makes the limiter owe more until the
// clock catches up — never admitting more than the latest time seen allows.
//
// Reconfiguration (reconfigure(limit), a cold path) publishes T and τ through
// a sequence lock: an admission reads both from the same configuration, never
// T of one and τ of the other, without writing any shared line. TAT is left
// as it is: time already owed stays owed (a retry_after handed out before the
// change stays truthful), and new admissions are judged by the new T and τ.
#pragma once

#include <keel/core/clock.hpp>
#include <keel/core/detail/cache_line.hpp>
#include <keel/core/permit.hpp>
#include <keel/core/result.hpp>
#include <keel/limit/detail/gcra_math.hpp>
#include <keel/limit/rate_limit.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>

namespace keel {

/// A snapshot of a limiter: its configuration and how much it would admit now.
struct limit_stats {
  rate_limit limit;
  std::int64_t available = 0;  ///< cost units admissible at once now; negative while in debt
};

namespace detail {
/// The default way a blocking acquire waits: the calling thread sleeps.
struct sleep_thread {
  void operator()(std::chrono::nanoseconds d) const { std::this_thread::sleep_for(d); }
};

inline constexpr const char* negative_cost = "cost must not be negative";
inline constexpr const char* cost_above_burst = "cost exceeds the burst; it can never be admitted";
inline constexpr const char* wait_past_deadline = "the wait would pass the deadline";

/// The rejection for a decision that did not admit.
constexpr rejection gcra_rejection(const gcra_decision& d) noexcept {
  if (d.verdict == gcra_verdict::never) return reject(errc::invalid_argument, cost_above_burst);
  return rejection{errc::rate_limited, std::chrono::nanoseconds(d.wait), nullptr};
}
}  // namespace detail

template <clock Clock = std::chrono::steady_clock>
class gcra_limiter {
 public:
  using clock_type = Clock;
  using time_point = typename Clock::time_point;

  class reservation;

  explicit gcra_limiter(rate_limit limit, Clock clk = Clock()) : clock_(std::move(clk)), limit_(limit) {
    publish(detail::to_gcra(limit));
  }
  gcra_limiter(const gcra_limiter&) = delete;
  gcra_limiter& operator=(const gcra_limiter&) = delete;

  /// Admits `cost` now or rejects; never blocks.
  result<void> try_acquire(std::int64_t cost = 1) noexcept {
    if (cost < 0) return reject(errc::invalid_argument, detail::negative_cost);
    const std::int64_t now = detail::now_ns(clock_);
    const auto d = admit(cost, now, now);
    if (d.verdict != detail::gcra_verdict::admit) return detail::gcra_rejection(d);
    return {};
  }

  /// Admits `cost` at the first instant it conforms, sleeping until then with
  /// sleep(nanoseconds) (default: this thread sleeps). The slot is charged
  /// before sleeping, so waiters are served in order and never spin. If the
  /// call cannot conform by `deadline` it fails at once: rate_limited with
  /// retry_after, nothing charged, nothing slept.
  template <class Sleep = detail::sleep_thread>
  result<void> acquire(std::int64_t cost, time_point deadline, Sleep&& sleep = Sleep()) {
    static_assert(std::is_invocable_v<Sleep&, std::chrono::nanoseconds>,
                  "keel::gcra_limiter::acquire: sleep must be callable as sleep(std::chrono::nanoseconds)");
    if (cost < 0) return reject(errc::invalid_argument, detail::negative_cost);
    const std::int64_t now = detail::now_ns(clock_);
    const std::int64_t horizon =
        std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
    const auto d = admit(cost, now, horizon);
    if (d.verdict == detail::gcra_verdict::reject)
      return rejection{errc::rate_limited, std::chrono::nanoseconds(d.wait), detail::wait_past_deadline};
    if (d.verdict == detail::gcra_verdict::never) return detail::gcra_rejection(d);
    if (d.wait > 0) sleep(std::chrono::nanoseconds(d.wait));
    return {};
  }

  /// Admits `estimated_cost` like try_acquire and returns a permit to settle
  /// with the actual cost once known.
  result<reservation> reserve(std::int64_t estimated_cost) noexcept {
    if (auto ok = try_acquire(estimated_cost); !ok) return ok.error();
    return reservation(this, estimated_cost);
  }

  /// What try_acquire(cost) would answer now, without charging anything.
  result<void> peek(std::int64_t cost = 1) const noexcept {
    if (cost < 0) return reject(errc::invalid_argument, detail::negative_cost);
    const std::int64_t now = detail::now_ns(clock_);
    const auto d = detail::gcra_decide(tat_.value.load(std::memory_order_relaxed), now, now, cost, params());
    if (d.verdict != detail::gcra_verdict::admit) return detail::gcra_rejection(d);
    return {};
  }

  /// Charges (delta > 0) or refunds (delta < 0) cost units after the fact,
  /// without a conformance test: what settle() does. Refunds never push the
  /// limiter past rest.
  void adjust(std::int64_t delta) noexcept {
    if (delta == 0) return;
    const std::int64_t now = detail::now_ns(clock_);
    const detail::gcra_params p = params();
    std::int64_t tat = tat_.value.load(std::memory_order_relaxed);
    while (!tat_.value.compare_exchange_weak(tat, detail::gcra_adjust(tat, now, delta, p), std::memory_order_relaxed)) {
    }
  }

  /// Changes rate and burst (validated like the constructor). Admissions
  /// racing with it use either the old or the new setting, never a mix.
  void reconfigure(rate_limit limit) {
    const detail::gcra_params p = detail::to_gcra(limit);
    std::lock_guard lock(config_mutex_);
    limit_ = limit;
    publish(p);
  }

  rate_limit limit() const {
    std::lock_guard lock(config_mutex_);
    return limit_;
  }

  limit_stats stats() const {
    return {limit(),
            detail::gcra_available(tat_.value.load(std::memory_order_relaxed), detail::now_ns(clock_), params())};
  }

 private:
  // The one CAS loop. Relaxed ordering is enough: TAT publishes no other
  // data, and all read-modify-writes of one atomic are totally ordered, which
  // is what bounds admissions.
  detail::gcra_decision admit(std::int64_t cost, std::int64_t now, std::int64_t horizon) noexcept {
    const detail::gcra_params p = params();
    std::int64_t tat = tat_.value.load(std::memory_order_relaxed);
    detail::gcra_decision d;
    do {
      d = detail::gcra_decide(tat, now, horizon, cost, p);
    } while (d.verdict == detail::gcra_verdict::admit && d.new_tat != tat &&
             !tat_.value.compare_exchange_weak(tat, d.new_tat, std::memory_order_relaxed));
    return d;
  }

  // Sequence lock (Boehm, "Can seqlocks get along with programming language
  // memory models?", 2012), written without fences: the data are atomics
  // stored with release and loaded with acquire, so a reader that sees any new
  // value also sees the odd sequence number that precedes it and retries.
  detail::gcra_params params() const noexcept {
    for (;;) {
      const std::uint64_t before = seq_.load(std::memory_order_acquire);
      const detail::gcra_params p{interval_.load(std::memory_order_acquire),
                                  tolerance_.load(std::memory_order_acquire)};
      if ((before & 1) == 0 && seq_.load(std::memory_order_relaxed) == before) return p;
    }
  }
  void publish(detail::gcra_params p) noexcept {  // writers hold config_mutex_ (or construct)
    const std::uint64_t s = seq_.load(std::memory_order_relaxed);
    seq_.store(s + 1, std::memory_order_relaxed);
    interval_.store(p.interval, std::memory_order_release);
    tolerance_.store(p.tolerance, std::memory_order_release);
    seq_.store(s + 2, std::memory_order_release);
  }

  // The TAT is written by every admission; the configuration is read by every
  // admission and written almost never. Separate lines keep the reads hitting.
  detail::padded<std::atomic<std::int64_t>> tat_{detail::rested_tat};
  alignas(detail::cache_line) std::atomic<std::uint64_t> seq_{0};
  std::atomic<std::int64_t> interval_{1};
  std::atomic<std::int64_t> tolerance_{1};
  [[no_unique_address]] Clock clock_;
  mutable std::mutex config_mutex_;
  rate_limit limit_;
};

/// An admitted estimate, to settle with the actual cost. settle(actual)
/// charges actual − estimate: a refund when lower, a debt when higher (later
/// callers wait for it). Dropped unsettled, the estimate stays charged.
template <clock Clock>
class gcra_limiter<Clock>::reservation {
 public:
  reservation(reservation&&) noexcept = default;
  reservation& operator=(reservation&&) noexcept = default;

  bool active() const noexcept { return link_.active(); }
  /// The cost charged at admission.
  std::int64_t estimate() const noexcept { return estimate_; }

  /// Records the actual cost (negative counts as 0); later calls are ignored.
  void settle(std::int64_t actual_cost) noexcept {
    if (gcra_limiter* owner = link_.take())
      owner->adjust(detail::sat_sub(std::max<std::int64_t>(actual_cost, 0), estimate_));
  }

 private:
  friend class gcra_limiter;
  reservation(gcra_limiter* owner, std::int64_t estimate) noexcept : link_(owner), estimate_(estimate) {}

  detail::permit_link<gcra_limiter> link_;
  std::int64_t estimate_;
};

}  // namespace keel
