// keel/breaker/circuit_breaker.hpp — a sliding-window failure-rate and slow-call breaker.
//
// When a vector store or model server starts failing or timing out, callers
// must stop piling on, fail fast with a useful answer, and probe carefully
// until it recovers. circuit_breaker watches the outcomes of recent calls in a
// sliding window (keel/breaker/window.hpp) and moves between the states of
// Resilience4j's CircuitBreakerStateMachine:
//
//          failure rate or slow-call rate ≥ threshold
//          over at least minimum_calls
//   closed ──────────────────────────────────────────▶ open ◀──────┐
//     ▲                                                 │           │ a probe result
//     │ the probes' rates stay                          │ after     │ crosses a threshold
//     │ under both thresholds                           ▼ open_duration (backoff on repeat)
//     └───────────────────────────────────────────── half_open ────┘
//                                                 admits exactly half_open_probes calls
//   forced_open (rejects everything) and disabled (admits everything, records
//   metrics only) are entered by force_open() / disable() and left by reset().
//
//   keel::breaker_config cfg;                  // defaults: docs/circuit-breaking.md
//   cfg.slow_call_duration = std::chrono::milliseconds(800);
//   keel::circuit_breaker<> vector_store{cfg};
//
//   auto p = vector_store.try_acquire();
//   if (!p) return p.error();                  // circuit_open, retry_after = time until half-open
//   auto r = search(query);
//   r ? p->success(elapsed) : p->failure(elapsed);
//   // or: try_acquire_timed() and p->success() / p->failure() measure with the breaker's clock
//
// Admit, then record (keel/core/permit.hpp). A permit records once; a permit
// destroyed unrecorded counts as ignored, and a half-open probe permit gives
// its slot back — a probe whose result is never reported cannot leave the
// breaker half-open for ever (Resilience4j issues #903, #935, #1568).
//
// Costs. In the closed state admission is one atomic load of the state word
// (read-only while closed, so every core keeps it cached) and a record is the
// window's record plus one more load (count_window: a single load and no
// write while a healthy dependency keeps succeeding; see window.hpp). Half-open
// admission is a compare-exchange on a probe word that holds the probe count,
// so concurrent callers never get more than half_open_probes permits.
// Transitions (rare) take a mutex; the state-change callback runs after it is
// released, so a callback may read the breaker and a throwing callback leaves
// it consistent (the transition is complete; the exception reaches whoever
// caused it).
//
// A breaker is cheap to build (two allocations: its state and count_window's
// ring) and movable, so a balancer can keep one per node in a std::vector.
// Its state lives at a fixed address: moving the breaker does not invalidate
// outstanding permits. A moved-from breaker may only be destroyed or assigned;
// a breaker must outlive its permits.
#pragma once

#include <keel/breaker/window.hpp>
#include <keel/core/clock.hpp>
#include <keel/core/detail/cache_line.hpp>
#include <keel/core/detail/fatal.hpp>
#include <keel/core/detail/random.hpp>
#include <keel/core/permit.hpp>
#include <keel/core/result.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

namespace keel {

enum class breaker_state : std::uint8_t {
  closed,       ///< calls flow; outcomes are recorded in the window
  open,         ///< calls are rejected until open_duration has passed
  half_open,    ///< exactly half_open_probes calls are let through to test the dependency
  forced_open,  ///< an operator opened it: everything is rejected until reset()
  disabled,     ///< an operator disabled it: everything is admitted, outcomes only feed stats()
};

constexpr const char* to_string(breaker_state s) noexcept {
  switch (s) {
    case breaker_state::closed: return "closed";
    case breaker_state::open: return "open";
    case breaker_state::half_open: return "half_open";
    case breaker_state::forced_open: return "forced_open";
    case breaker_state::disabled: return "disabled";
  }
  return "unknown";
}

/// How a breaker judges. Every default, and why it differs from
/// Resilience4j's, is in docs/circuit-breaking.md.
struct breaker_config {
  /// Open when at least this percentage of the window's calls failed. (0, 100].
  double failure_rate_threshold = 50;
  /// Open when at least this percentage of the window's calls were slow. (0, 100].
  double slow_call_rate_threshold = 80;
  /// A call is slow when it takes longer than this. Positive.
  std::chrono::nanoseconds slow_call_duration = std::chrono::seconds(10);
  /// Rates are judged only once the window holds this many calls. ≥ 1, and at
  /// most a count_window's size.
  std::uint32_t minimum_calls = 20;
  /// How long the breaker stays open after tripping from closed. Positive.
  std::chrono::nanoseconds open_duration = std::chrono::seconds(10);
  /// How many calls half-open admits to decide. [1, 255].
  std::uint32_t half_open_probes = 5;
  /// Each re-open from half-open multiplies the open duration by this (1: no backoff). ≥ 1.
  double backoff_multiplier = 2.0;
  /// The open duration never exceeds this. ≥ open_duration.
  std::chrono::nanoseconds max_open_duration = std::chrono::minutes(2);
  /// Backed-off open durations are spread uniformly by ±jitter (0.2: ±20%),
  /// so breakers in many replicas do not probe a recovering node in lockstep. [0, 1).
  double jitter = 0.2;
  /// Seed of the jitter's generator; 0 seeds from the breaker's address.
  std::uint64_t jitter_seed = 0;
  /// Called after each state change, outside the breaker's lock, by the
  /// thread that caused it. May read the breaker; may throw (the change stands).
  std::function<void(breaker_state from, breaker_state to)> on_state_change{};
};

/// A snapshot for dashboards and logs.
struct breaker_stats {
  breaker_state state = breaker_state::closed;
  std::uint32_t calls = 0;       ///< calls in the window
  std::uint32_t failures = 0;    ///< failed calls in the window
  std::uint32_t slow_calls = 0;  ///< slow calls in the window (failed or not)
  double failure_rate = 0;       ///< percent of the window's calls; 0 without calls
  double slow_call_rate = 0;     ///< percent of the window's calls; 0 without calls
  std::uint64_t rejected = 0;    ///< calls refused since construction
  std::chrono::nanoseconds time_in_state{};
  std::uint32_t consecutive_opens = 0;       ///< opens since the breaker last closed (drives backoff)
  std::chrono::nanoseconds open_duration{};  ///< length of the current (or last) open period
};

namespace detail {

inline constexpr std::uint32_t max_half_open_probes = 255;

inline void validate(const breaker_config& c) {
  const auto rate_ok = [](double r) { return r > 0 && r <= 100; };  // false for NaN
  require_config(rate_ok(c.failure_rate_threshold), "keel::breaker: failure_rate_threshold must be in (0, 100]");
  require_config(rate_ok(c.slow_call_rate_threshold), "keel::breaker: slow_call_rate_threshold must be in (0, 100]");
  require_config(c.slow_call_duration.count() > 0, "keel::breaker: slow_call_duration must be positive");
  require_config(c.minimum_calls >= 1, "keel::breaker: minimum_calls must be at least 1");
  require_config(c.open_duration.count() > 0, "keel::breaker: open_duration must be positive");
  require_config(c.half_open_probes >= 1 && c.half_open_probes <= max_half_open_probes,
                 "keel::breaker: half_open_probes must be in [1, 255]");
  require_config(c.backoff_multiplier >= 1 && std::isfinite(c.backoff_multiplier),
                 "keel::breaker: backoff_multiplier must be finite and at least 1");
  require_config(c.max_open_duration >= c.open_duration,
                 "keel::breaker: max_open_duration must not be less than open_duration");
  require_config(c.jitter >= 0 && c.jitter < 1, "keel::breaker: jitter must be in [0, 1)");
}

// The state word: generation << 8 | state. The generation grows on every
// transition, so a permit knows whether the period it was admitted in is over.
constexpr std::uint64_t state_word(std::uint64_t gen, breaker_state s) noexcept {
  return gen << 8 | static_cast<std::uint64_t>(s);
}
constexpr breaker_state state_of(std::uint64_t w) noexcept { return static_cast<breaker_state>(w & 0xff); }
constexpr std::uint64_t gen_of(std::uint64_t w) noexcept { return w >> 8; }

// The probe word of a half-open period: gen (low 32 bits) << 32 | slow << 24 |
// failed << 16 | recorded << 8 | issued. issued counts admitted probes,
// recorded those that reported; ignored probes give their slot back.
struct probe_count {
  std::uint32_t gen, issued, recorded, failed, slow;
};
constexpr std::uint64_t pack(const probe_count& p) noexcept {
  return std::uint64_t{p.gen} << 32 | std::uint64_t{p.slow} << 24 | std::uint64_t{p.failed} << 16 |
         std::uint64_t{p.recorded} << 8 | p.issued;
}
constexpr probe_count unpack_probes(std::uint64_t w) noexcept {
  return {static_cast<std::uint32_t>(w >> 32), static_cast<std::uint32_t>(w & 0xff),
          static_cast<std::uint32_t>((w >> 8) & 0xff), static_cast<std::uint32_t>((w >> 16) & 0xff),
          static_cast<std::uint32_t>((w >> 24) & 0xff)};
}

/// True when `t` says: open. Rates compare as failures × 100 ≥ threshold × calls.
inline bool over_threshold(const breaker_config& c, std::uint32_t calls, std::uint32_t failures,
                           std::uint32_t slow) noexcept {
  const double n = calls;
  return static_cast<double>(failures) * 100.0 >= c.failure_rate_threshold * n ||
         static_cast<double>(slow) * 100.0 >= c.slow_call_rate_threshold * n;
}

inline constexpr std::int64_t no_start = std::numeric_limits<std::int64_t>::min();
inline constexpr const char* rejected_open = "circuit open";
inline constexpr const char* rejected_probing = "circuit half-open: every probe is in flight";
inline constexpr const char* rejected_forced = "circuit forced open";

template <class Window, class Clock>
class breaker_core;

}  // namespace detail

/// An admission by a circuit_breaker: record the call's outcome on it once.
/// Dropped unrecorded, it counts as ignored (and a probe gives its slot back).
template <class Core>
class breaker_permit {
 public:
  breaker_permit(breaker_permit&&) noexcept = default;
  breaker_permit& operator=(breaker_permit&& other) noexcept { return detail::replace_permit(*this, std::move(other)); }
  ~breaker_permit() { ignore(); }

  /// True until an outcome is recorded (or the permit is moved from).
  bool active() const noexcept { return link_.active(); }

  /// The call succeeded and took `latency` (slow if longer than slow_call_duration).
  template <class Rep, class Period>
  void success(std::chrono::duration<Rep, Period> latency) {
    record(outcome::success, latency);
  }
  /// The call failed (the dependency looks unhealthy) and took `latency`.
  template <class Rep, class Period>
  void failure(std::chrono::duration<Rep, Period> latency) {
    record(outcome::failure, latency);
  }
  /// The call says nothing about health (cancelled, client error): not counted.
  void ignore() noexcept {
    if (Core* c = link_.take()) c->release(gen_, probe_);
  }

  /// success/failure measured from admission with the breaker's clock;
  /// only for permits from try_acquire_timed().
  void success() { record(outcome::success, elapsed()); }
  void failure() { record(outcome::failure, elapsed()); }

  /// Records `o` (success, failure or ignored) for a call that took `latency`.
  template <class Rep, class Period>
  void record(outcome o, std::chrono::duration<Rep, Period> latency) {
    if (o == outcome::ignored) return ignore();
    if (Core* c = link_.take())
      c->record(gen_, probe_, o == outcome::failure, std::chrono::duration_cast<std::chrono::nanoseconds>(latency));
  }

  /// Time since admission by the breaker's clock (zero if the clock went back);
  /// only for active permits from try_acquire_timed().
  std::chrono::nanoseconds elapsed() const noexcept {
    if (start_ == detail::no_start || !link_.active())
      detail::fail_usage(
          "breaker_permit: success()/failure()/elapsed() without a latency need an active permit "
          "from try_acquire_timed(); pass the latency otherwise");
    const std::int64_t d = detail::now_ns(link_.get()->clock()) - start_;
    return std::chrono::nanoseconds(d > 0 ? d : 0);
  }

 private:
  template <class, class>
  friend class detail::breaker_core;
  breaker_permit(Core* c, std::uint64_t gen, bool probe, std::int64_t start) noexcept
      : link_(c), gen_(gen), probe_(probe), start_(start) {}

  detail::permit_link<Core> link_;
  std::uint64_t gen_ = 0;
  bool probe_ = false;
  std::int64_t start_ = detail::no_start;
};

namespace detail {

template <class Window, class Clock>
class breaker_core {
 public:
  using permit = breaker_permit<breaker_core>;

  breaker_core(breaker_config cfg, const Window& window, Clock clk)
      : cfg_((validate(cfg), std::move(cfg))), clock_(std::move(clk)), window_(window) {
    require_config(cfg_.minimum_calls <= window_.capacity(),
                   "keel::breaker: minimum_calls must not exceed the count_window size");
    rng_ = cfg_.jitter_seed != 0 ? cfg_.jitter_seed : reinterpret_cast<std::uintptr_t>(this);
    entered_ns_.store(now_ns(clock_), std::memory_order_relaxed);
  }

  const Clock& clock() const noexcept { return clock_; }
  const breaker_config& config() const noexcept { return cfg_; }

  result<permit> try_acquire(bool timed) {
    const std::uint64_t w = word_.value.load(std::memory_order_acquire);
    const std::int64_t start = timed ? now_ns(clock_) : no_start;
    if (state_of(w) == breaker_state::closed) [[likely]]
      return permit(this, gen_of(w), false, start);
    return acquire_slow(w, start);
  }

  bool would_admit() const noexcept {
    const std::uint64_t w = word_.value.load(std::memory_order_acquire);
    switch (state_of(w)) {
      case breaker_state::closed:
      case breaker_state::disabled: return true;
      case breaker_state::forced_open: return false;
      case breaker_state::open: return now_ns(clock_) >= open_until_ns_.load(std::memory_order_relaxed);
      case breaker_state::half_open: {
        const probe_count p = unpack_probes(probes_.value.load(std::memory_order_acquire));
        return p.gen != static_cast<std::uint32_t>(gen_of(w)) || p.issued < cfg_.half_open_probes;
      }
    }
    return false;
  }

  breaker_state state() const noexcept { return state_of(word_.value.load(std::memory_order_acquire)); }

  breaker_stats stats() const {
    const std::uint64_t w = word_.value.load(std::memory_order_acquire);
    const std::int64_t now = now_ns(clock_);
    const window_totals t = window_.totals(now);
    breaker_stats s;
    s.state = state_of(w);
    s.calls = t.calls, s.failures = t.failures, s.slow_calls = t.slow_calls;
    if (t.calls > 0) {
      s.failure_rate = 100.0 * t.failures / t.calls;
      s.slow_call_rate = 100.0 * t.slow_calls / t.calls;
    }
    s.rejected = rejected_.load(std::memory_order_relaxed);
    const std::int64_t in_state = now - entered_ns_.load(std::memory_order_relaxed);
    s.time_in_state = std::chrono::nanoseconds(in_state > 0 ? in_state : 0);
    s.consecutive_opens = opens_.load(std::memory_order_relaxed);
    s.open_duration = std::chrono::nanoseconds(open_length_ns_.load(std::memory_order_relaxed));
    return s;
  }

  void force_open() { move_to(breaker_state::forced_open); }
  void disable() { move_to(breaker_state::disabled); }
  void reset() { move_to(breaker_state::closed); }

  // --- called by permits ---------------------------------------------------

  void record(std::uint64_t gen, bool probe, bool failed, std::chrono::nanoseconds latency) {
    const sample s = make_sample(failed, latency > cfg_.slow_call_duration);
    if (probe) return record_probe(gen, s);
    const std::uint64_t w = word_.value.load(std::memory_order_acquire);
    if (gen_of(w) != gen) return;  // admitted in an earlier period; that window is gone
    const window_update u = window_.record(s, Window::recorder::reads_clock ? now_ns(clock_) : 0);
    if (state_of(w) == breaker_state::closed && u.changed && u.totals.calls >= cfg_.minimum_calls &&
        over_threshold(cfg_, u.totals.calls, u.totals.failures, u.totals.slow_calls))
      transition(w, breaker_state::open);
  }

  void release(std::uint64_t gen, bool probe) noexcept {
    if (!probe) return;
    std::uint64_t p = probes_.value.load(std::memory_order_acquire);
    for (;;) {
      probe_count c = unpack_probes(p);
      if (c.gen != static_cast<std::uint32_t>(gen) || c.issued == 0) return;
      --c.issued;
      if (probes_.value.compare_exchange_weak(p, pack(c), std::memory_order_acq_rel, std::memory_order_acquire)) return;
    }
  }

 private:
  result<permit> acquire_slow(std::uint64_t w, std::int64_t start) {
    for (;;) {
      switch (state_of(w)) {
        case breaker_state::closed:
        case breaker_state::disabled: return permit(this, gen_of(w), false, start);
        case breaker_state::forced_open: return refuse(reject(errc::circuit_open, rejected_forced));
        case breaker_state::open: {
          const std::int64_t now = now_ns(clock_);
          const std::int64_t until = open_until_ns_.load(std::memory_order_relaxed);
          if (now < until)
            return refuse(rejection{errc::circuit_open, std::chrono::nanoseconds(until - now), rejected_open});
          transition(w, breaker_state::half_open);
          break;
        }
        case breaker_state::half_open: {
          std::uint64_t p = probes_.value.load(std::memory_order_acquire);
          for (;;) {
            probe_count c = unpack_probes(p);
            if (c.gen != static_cast<std::uint32_t>(gen_of(w))) break;  // that half-open period is over
            if (c.issued >= cfg_.half_open_probes) return refuse(reject(errc::circuit_open, rejected_probing));
            ++c.issued;
            if (probes_.value.compare_exchange_weak(p, pack(c), std::memory_order_acq_rel, std::memory_order_acquire))
              return permit(this, gen_of(w), true, start);
          }
          break;
        }
      }
      w = word_.value.load(std::memory_order_acquire);
    }
  }

  rejection refuse(rejection r) noexcept {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    return r;
  }

  void record_probe(std::uint64_t gen, sample s) {
    std::uint64_t p = probes_.value.load(std::memory_order_acquire);
    probe_count c{};
    for (;;) {
      c = unpack_probes(p);
      if (c.gen != static_cast<std::uint32_t>(gen)) return;  // a probe of an earlier period
      ++c.recorded;
      c.failed += failed(s) ? 1 : 0;
      c.slow += slow(s) ? 1 : 0;
      if (probes_.value.compare_exchange_weak(p, pack(c), std::memory_order_acq_rel, std::memory_order_acquire)) break;
    }
    if (c.recorded < cfg_.half_open_probes) return;
    const breaker_state to =
        over_threshold(cfg_, c.recorded, c.failed, c.slow) ? breaker_state::open : breaker_state::closed;
    transition(state_word(gen, breaker_state::half_open), to);
  }

  // Moves from exactly `from` (a state word) to `to`, or does nothing if
  // another thread moved first; announces the change after unlocking.
  void transition(std::uint64_t from, breaker_state to) {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (word_.value.load(std::memory_order_relaxed) != from) return;
      enter(from, to);
    }
    announce(state_of(from), to);
  }

  // An operator's command: from whatever state the breaker is in.
  void move_to(breaker_state to) {
    breaker_state from{};
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      const std::uint64_t w = word_.value.load(std::memory_order_relaxed);
      from = state_of(w);
      if (from == to && to != breaker_state::closed) return;  // already there; reset() always empties the window
      enter(w, to);
    }
    if (from != to) announce(from, to);
  }

  // Under the lock: prepares the state `to`, then publishes it with a new generation.
  void enter(std::uint64_t from, breaker_state to) {
    const std::int64_t now = now_ns(clock_);
    const std::uint64_t gen = gen_of(from) + 1;
    switch (to) {
      case breaker_state::open: {
        const std::uint32_t opens = state_of(from) == breaker_state::half_open ? opens_.load() + 1 : 1;
        opens_.store(opens, std::memory_order_relaxed);
        const std::int64_t d = open_length(opens);
        open_length_ns_.store(d, std::memory_order_relaxed);
        const std::int64_t until = now > std::numeric_limits<std::int64_t>::max() - d
                                       ? std::numeric_limits<std::int64_t>::max()
                                       : now + d;  // saturate: a clock years ahead must not wrap
        open_until_ns_.store(until, std::memory_order_relaxed);
        break;
      }
      case breaker_state::half_open:
        probes_.value.store(pack(probe_count{static_cast<std::uint32_t>(gen), 0, 0, 0, 0}), std::memory_order_release);
        break;
      case breaker_state::closed:
      case breaker_state::disabled:
        window_.clear();
        opens_.store(0, std::memory_order_relaxed);
        break;
      case breaker_state::forced_open: break;
    }
    entered_ns_.store(now, std::memory_order_relaxed);
    word_.value.store(state_word(gen, to), std::memory_order_release);
  }

  // open_duration × multiplier^(opens − 1), at most max_open_duration, spread
  // by ±jitter once it has backed off (the first open is exact).
  std::int64_t open_length(std::uint32_t opens) {
    const double base = static_cast<double>(cfg_.open_duration.count());
    const double cap = static_cast<double>(cfg_.max_open_duration.count());
    double d = std::min(cap, base * std::pow(cfg_.backoff_multiplier, static_cast<double>(opens - 1)));
    if (opens > 1 && cfg_.jitter > 0) {
      const double u = static_cast<double>(splitmix64(rng_) >> 11) * 0x1.0p-53;  // [0, 1)
      d = std::min(cap, d * (1.0 + cfg_.jitter * (2.0 * u - 1.0)));
    }
    return std::max<std::int64_t>(1, static_cast<std::int64_t>(d));
  }

  void announce(breaker_state from, breaker_state to) {
    if (cfg_.on_state_change) cfg_.on_state_change(from, to);
  }

  // Read on every admission, written only on transitions: alone on its line.
  padded<std::atomic<std::uint64_t>> word_{state_word(0, breaker_state::closed)};
  padded<std::atomic<std::uint64_t>> probes_{};
  const breaker_config cfg_;
  [[no_unique_address]] Clock clock_;
  typename Window::recorder window_;
  std::atomic<std::int64_t> open_until_ns_{0};
  std::atomic<std::int64_t> open_length_ns_{0};
  std::atomic<std::int64_t> entered_ns_{0};
  std::atomic<std::uint32_t> opens_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::mutex mutex_;  // transitions only
  std::uint64_t rng_ = 0;
};

}  // namespace detail

template <sliding_window Window = count_window, clock Clock = std::chrono::steady_clock>
class circuit_breaker {
  using core = detail::breaker_core<Window, Clock>;

 public:
  using window_type = Window;
  using clock_type = Clock;
  using permit = breaker_permit<core>;

  /// Throws keel::config_error (aborts without exceptions) on an invalid config.
  explicit circuit_breaker(breaker_config config = {}, Window window = {}, Clock clk = Clock())
      : core_(std::make_unique<core>(std::move(config), window, std::move(clk))) {}

  circuit_breaker(circuit_breaker&&) noexcept = default;
  circuit_breaker& operator=(circuit_breaker&&) noexcept = default;

  /// Admits a call, or rejects with errc::circuit_open (retry_after: the time
  /// until half-open, when open). Never blocks.
  result<permit> try_acquire() { return core_->try_acquire(false); }

  /// try_acquire, with the admission time stamped on the permit so that
  /// permit.success() / failure() measure the latency with this breaker's clock.
  result<permit> try_acquire_timed() { return core_->try_acquire(true); }

  /// Would try_acquire admit now? Takes nothing and changes nothing (for a
  /// balancer choosing a node).
  bool would_admit() const noexcept { return core_->would_admit(); }

  breaker_state state() const noexcept { return core_->state(); }
  breaker_stats stats() const { return core_->stats(); }
  const breaker_config& config() const noexcept { return core_->config(); }
  const Clock& clock() const noexcept { return core_->clock(); }

  /// Rejects everything until reset().
  void force_open() { core_->force_open(); }
  /// Admits everything and only records metrics, until reset().
  void disable() { core_->disable(); }
  /// Back to closed with an empty window and no backoff history.
  void reset() { core_->reset(); }

 private:
  std::unique_ptr<core> core_;
};

}  // namespace keel
