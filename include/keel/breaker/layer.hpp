// keel/breaker/layer.hpp — a circuit breaker as a pipeline layer.
//
// circuit_break(breaker) admits each request through the breaker before the
// rest of the stack runs and records how it went, with the latency measured
// by the breaker's clock (so slow calls count). When the circuit is open the
// layer answers errc::circuit_open with retry_after at once, without calling
// anything below it.
//
// Classification is the caller's: which results and which exceptions say the
// dependency is unhealthy.
//
//  * classify(const result<T>&) returns keel::outcome (or bool: true = failure).
//    The default, keel::breaker_failures, counts a value as success, a rejection
//    with errc::upstream_failure or errc::deadline_exceeded as failure (the
//    dependency failed or timed out), and every other rejection as ignored: a
//    rate limit, an overloaded bulkhead or a bad request below the breaker
//    says nothing about the dependency's health.
//  * on_exception(std::exception_ptr) returns keel::outcome; by default every
//    exception is a failure. The exception is recorded, then rethrown.
//
//   auto guard = keel::circuit_break(vector_store_breaker);                  // defaults
//   auto strict = keel::circuit_break(b, [](const keel::result<hits>& r) {   // empty answers are failures too
//     return !r || r->empty();
//   });
//   auto service = keel::pipeline(keel::fallback(cached_answer), guard).bind(search);
//
// The layer refers to its breaker, which must outlive it.
#pragma once

#include <keel/breaker/circuit_breaker.hpp>
#include <keel/core/config.hpp>
#include <keel/core/permit.hpp>
#include <keel/core/pipeline.hpp>

#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

namespace keel {

/// The default result classification: see the header comment.
struct breaker_failures {
  template <class T>
  constexpr outcome operator()(const result<T>& r) const noexcept {
    if (r.has_value()) return outcome::success;
    const errc e = r.error().code;
    return e == errc::upstream_failure || e == errc::deadline_exceeded ? outcome::failure : outcome::ignored;
  }
};

/// The default exception classification: every exception is a failure.
struct exceptions_fail {
  outcome operator()(const std::exception_ptr&) const noexcept { return outcome::failure; }
};

template <class Breaker, class Classify = breaker_failures, class OnException = exceptions_fail>
class breaker_layer {
 public:
  constexpr breaker_layer(Breaker& breaker, Classify classify = {}, OnException on_exception = {})
      : breaker_(&breaker), classify_(std::move(classify)), on_exception_(std::move(on_exception)) {}

  template <class Ctx, class Next>
  next_result_t<Next, Ctx> operator()(Ctx& ctx, Next&& next) {
    using R = next_result_t<Next, Ctx>;
    static_assert(is_result_v<R>, "keel::circuit_break: the stack below must return keel::result<T>");
    static_assert(std::is_invocable_v<Classify&, const R&>,
                  "keel::circuit_break: classify must be callable as classify(const keel::result<T>&) and return "
                  "keel::outcome or bool (true = failure)");
    auto permit = breaker_->try_acquire_timed();
    if (!permit) return permit.error();
#if KEEL_HAS_EXCEPTIONS
    std::optional<R> r;
    try {
      r.emplace(next(ctx));
    } catch (...) {
      permit->record(std::invoke(on_exception_, std::current_exception()), permit->elapsed());
      throw;
    }
    permit->record(to_outcome(std::invoke(classify_, std::as_const(*r))), permit->elapsed());
    return std::move(*r);
#else
    R r = next(ctx);
    permit->record(to_outcome(std::invoke(classify_, std::as_const(r))), permit->elapsed());
    return r;
#endif
  }

  Breaker& breaker() const noexcept { return *breaker_; }

 private:
  static constexpr outcome to_outcome(outcome o) noexcept { return o; }
  static constexpr outcome to_outcome(bool failed) noexcept { return failed ? outcome::failure : outcome::success; }

  Breaker* breaker_;
  [[no_unique_address]] Classify classify_;
  [[no_unique_address]] OnException on_exception_;
};

/// A layer guarding the rest of the stack with `breaker`.
template <class Breaker, class Classify = breaker_failures, class OnException = exceptions_fail>
constexpr auto circuit_break(Breaker& breaker, Classify classify = {}, OnException on_exception = {}) {
  return breaker_layer<Breaker, Classify, OnException>(breaker, std::move(classify), std::move(on_exception));
}

}  // namespace keel
