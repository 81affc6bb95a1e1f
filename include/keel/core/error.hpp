// keel/core/error.hpp — why a call was not served.
//
// Being rate limited, finding a circuit open or a queue full is an expected
// outcome of a resilience policy, so keel reports it as a value: a keel::errc
// code, optionally with the time after which a retry can succeed (what a
// gateway sends as HTTP `Retry-After`). errc plugs into <system_error>, so it
// compares with std::error_code and prints through its category.
//
//   keel::rejection r{keel::errc::rate_limited, std::chrono::milliseconds(250)};
//   std::error_code ec = r.code;            // "keel: rate limited"
//   int status = keel::http_status(r.code); // 429
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

namespace keel {

/// Rejection codes. Zero is reserved for "no error", as <system_error> expects.
enum class errc : int {
  rate_limited = 1,   ///< a rate or cost limit is exhausted; retry_after says when it refills
  circuit_open,       ///< a circuit breaker is failing fast; retry_after says when it probes
  queue_full,         ///< a bounded queue is at capacity (back-pressure)
  queue_closed,       ///< the queue was closed and, for consumers, is drained
  queue_empty,        ///< nothing to pop now, or nothing arrived before the deadline
  deadline_exceeded,  ///< the deadline passed, or would pass before the work could finish
  no_backend,         ///< no node can take the call (none configured, all ejected or draining)
  unauthenticated,    ///< the caller could not be authenticated
  overloaded,         ///< a concurrency limit or load shedder refused the call
  invalid_argument,   ///< the request itself can never be served (e.g. cost above burst)
  upstream_failure,   ///< the protected call ran and failed (or threw)
};

/// The std::error_category for keel::errc; name() is "keel".
inline const std::error_category& error_category() noexcept {
  class category final : public std::error_category {
   public:
    const char* name() const noexcept override { return "keel"; }
    std::string message(int code) const override {
      switch (static_cast<errc>(code)) {
        case errc::rate_limited: return "rate limited";
        case errc::circuit_open: return "circuit open";
        case errc::queue_full: return "queue full";
        case errc::queue_closed: return "queue closed";
        case errc::queue_empty: return "queue empty";
        case errc::deadline_exceeded: return "deadline exceeded";
        case errc::no_backend: return "no backend available";
        case errc::unauthenticated: return "unauthenticated";
        case errc::overloaded: return "overloaded";
        case errc::invalid_argument: return "invalid argument";
        case errc::upstream_failure: return "upstream failure";
      }
      return "unknown keel error";
    }
  };
  static const category instance;
  return instance;
}

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

/// Short, stable identifier for logs and metrics labels ("rate_limited", ...).
constexpr const char* to_string(errc e) noexcept {
  switch (e) {
    case errc::rate_limited: return "rate_limited";
    case errc::circuit_open: return "circuit_open";
    case errc::queue_full: return "queue_full";
    case errc::queue_closed: return "queue_closed";
    case errc::queue_empty: return "queue_empty";
    case errc::deadline_exceeded: return "deadline_exceeded";
    case errc::no_backend: return "no_backend";
    case errc::unauthenticated: return "unauthenticated";
    case errc::overloaded: return "overloaded";
    case errc::invalid_argument: return "invalid_argument";
    case errc::upstream_failure: return "upstream_failure";
  }
  return "unknown";
}

/// The HTTP status a gateway should answer with for a rejection:
/// 401 unauthenticated, 429 rate limited (send Retry-After), 400 for a request
/// that can never be served, 504 for deadlines, 502 for a failed upstream call,
/// 503 for everything that says "the service cannot take this now".
constexpr int http_status(errc e) noexcept {
  switch (e) {
    case errc::unauthenticated: return 401;
    case errc::rate_limited: return 429;
    case errc::invalid_argument: return 400;
    case errc::deadline_exceeded: return 504;
    case errc::upstream_failure: return 502;
    case errc::circuit_open:
    case errc::queue_full:
    case errc::queue_closed:
    case errc::queue_empty:
    case errc::no_backend:
    case errc::overloaded: return 503;
  }
  return 500;
}

/// Why a call was not served: a code, the earliest time a retry can succeed
/// (when the policy knows it), and an optional static explanation.
struct rejection {
  errc code;
  /// Set by policies that know when capacity returns (limiters, breakers).
  std::optional<std::chrono::nanoseconds> retry_after{};
  /// A string literal (never owned, never freed) with detail for humans, or null.
  const char* reason = nullptr;

  friend constexpr bool operator==(const rejection&, const rejection&) = default;
};

/// The value of an HTTP `Retry-After` header for r: retry_after in whole
/// seconds, rounded up so a client that obeys it never comes back too early,
/// and at least 1; nullopt when the policy does not know when to retry.
constexpr std::optional<std::int64_t> retry_after_seconds(const rejection& r) noexcept {
  if (!r.retry_after) return std::nullopt;
  const std::int64_t ns = r.retry_after->count();
  if (ns <= 0) return 1;
  constexpr std::int64_t second = 1'000'000'000;
  return ns / second + (ns % second != 0 ? 1 : 0);
}

/// Builds a rejection: `return keel::reject(keel::errc::queue_full);`
constexpr rejection reject(errc code) noexcept { return rejection{code}; }

template <class Rep, class Period>
constexpr rejection reject(errc code, std::chrono::duration<Rep, Period> retry_after) noexcept {
  return rejection{code, std::chrono::duration_cast<std::chrono::nanoseconds>(retry_after)};
}

constexpr rejection reject(errc code, const char* reason) noexcept { return rejection{code, std::nullopt, reason}; }

}  // namespace keel

template <>
struct std::is_error_code_enum<keel::errc> : std::true_type {};
