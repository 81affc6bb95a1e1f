// keel/limit/layer.hpp — rate and concurrency limits as pipeline layers.
//
// limit(...) admits a request against a limiter before the rest of the stack
// runs, with a cost projected from the request context, and — when given an
// `actual` projection — settles the reservation with the cost the terminal
// reports. The terminal reports it in its result value: actual(const T&)
// reads it (e.g. the usage field of an LLM reply). On a rejection from below,
// the estimate stays charged; to decide for failures too, make actual take
// the whole `const keel::result<T>&`.
//
//   auto tokens = keel::limit(tpm_by_tenant,
//                             &request::tenant,                                     // key
//                             [](request& r) { return r.prompt_tokens + r.max_tokens; },  // estimate
//                             [](const reply& a) { return a.usage.total_tokens; });   // actual
//   auto slots = keel::limit_concurrency(gpu_slots, std::chrono::milliseconds(20));
//   auto service = keel::pipeline(auth, tokens, slots).bind(model);
//
// Forms: limit(limiter[, cost[, actual]]) for a gcra_limiter;
// limit(keyed, key[, cost[, actual]]) for a keyed_limiter; limit_with(admit,
// settle) for anything else, e.g. RPM + TPM all-or-nothing with reserve_all.
// Projections are anything std::invoke takes (lambdas, member pointers). The
// cost defaults to 1 per request. A layer refers to its limiter, which must
// outlive it (limiters are shared by every pipeline that uses them).
#pragma once

#include <keel/core/pipeline.hpp>
#include <keel/core/result.hpp>
#include <keel/limit/bulkhead.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <utility>

namespace keel {

namespace detail {
struct unit_cost {
  template <class Ctx>
  constexpr std::int64_t operator()(const Ctx&) const noexcept {
    return 1;
  }
};
/// cost_of(ctx) as a cost: any integer type (token counts are often std::size_t).
template <class CostOf, class Ctx>
constexpr std::int64_t cost(CostOf& cost_of, Ctx& ctx) {
  static_assert(std::is_integral_v<std::remove_cvref_t<std::invoke_result_t<CostOf&, Ctx&>>>,
                "keel::limit: the cost projection must return an integer cost (tokens, requests, bytes)");
  return static_cast<std::int64_t>(std::invoke(cost_of, ctx));
}

/// "The terminal reports no cost": nothing is settled, the estimate stands.
struct no_settle {};

template <class L>
concept keyed = requires {
  typename L::key_type;
};
}  // namespace detail

/// A layer that runs admit(ctx) → result<Permit> before the rest of the stack
/// and settle(permit, value) after it succeeds.
template <class Admit, class Settle>
class limit_layer {
 public:
  constexpr limit_layer(Admit admit, Settle settle) : admit_(std::move(admit)), settle_(std::move(settle)) {}

  template <class Ctx, class Next>
  next_result_t<Next, Ctx> operator()(Ctx& ctx, Next&& next) {
    using R = next_result_t<Next, Ctx>;
    static_assert(is_result_v<R>, "keel::limit: the stack below must return keel::result<T>");
    auto permit = std::invoke(admit_, ctx);
    static_assert(is_result_v<decltype(permit)>, "keel::limit_with: admit(ctx) must return keel::result<Permit>");
    if (!permit) return permit.error();
    R r = next(ctx);
    if constexpr (!std::is_same_v<Settle, detail::no_settle>) {
      if constexpr (std::is_invocable_v<Settle&, decltype(*permit)&, const R&>) {
        std::invoke(settle_, *permit, std::as_const(r));
      } else if (r.has_value()) {
        std::invoke(settle_, *permit, std::as_const(*r));
      }
    }
    return r;
  }

 private:
  Admit admit_;
  [[no_unique_address]] Settle settle_;
};

/// limit_with(admit, settle): admit(ctx) → result<Permit>; settle(permit&, const T&) on success
/// (or settle(permit&, const result<T>&) always).
template <class Admit, class Settle>
constexpr auto limit_with(Admit&& admit, Settle&& settle) {
  return limit_layer<std::decay_t<Admit>, std::decay_t<Settle>>(std::forward<Admit>(admit),
                                                                std::forward<Settle>(settle));
}

namespace detail {
// Settles from an `actual` projection: on the value after a success, or — when
// actual is a callable taking the whole keel::result — after every outcome.
// (A member pointer always reads the value: std::invoke would otherwise
// dereference a failed result.)
template <class Actual>
struct settle_actual {
  Actual actual;
  template <class Permit, class T>
  void operator()(Permit& p, const result<T>& r) {
    if constexpr (!std::is_member_pointer_v<Actual> && std::is_invocable_v<Actual&, const result<T>&>) {
      p.settle(static_cast<std::int64_t>(std::invoke(actual, r)));
    } else {
      static_assert(!std::is_void_v<T>,
                    "keel::limit: a terminal returning keel::result<void> reports no cost; settle from the whole "
                    "result instead (actual(const keel::result<void>&))");
      static_assert(std::is_invocable_v<Actual&, const T&>,
                    "keel::limit: actual must be callable with the terminal's value (const T&) or with the whole "
                    "const keel::result<T>&, and return the actual cost");
      if (r.has_value()) p.settle(static_cast<std::int64_t>(std::invoke(actual, *r)));
    }
  }
};
}  // namespace detail

/// Limits by cost_of(ctx) against `limiter` (one shared limit), settling with actual(value).
template <class L, class CostOf = detail::unit_cost, class Actual = detail::no_settle>
requires(!detail::keyed<L>) constexpr auto limit(L& limiter, CostOf cost_of = {}, Actual actual = {}) {
  if constexpr (std::is_same_v<Actual, detail::no_settle>) {
    return limit_with([&limiter, cost_of](auto& ctx) { return limiter.try_acquire(detail::cost(cost_of, ctx)); },
                      detail::no_settle{});
  } else {
    return limit_with([&limiter, cost_of](auto& ctx) { return limiter.reserve(detail::cost(cost_of, ctx)); },
                      detail::settle_actual<Actual>{std::move(actual)});
  }
}

/// Limits per key_of(ctx) by cost_of(ctx) against a keyed_limiter, settling with actual(value).
template <class L, class KeyOf, class CostOf = detail::unit_cost, class Actual = detail::no_settle>
requires detail::keyed<L>
constexpr auto limit(L& limiter, KeyOf key_of, CostOf cost_of = {}, Actual actual = {}) {
  if constexpr (std::is_same_v<Actual, detail::no_settle>) {
    return limit_with(
        [&limiter, key_of, cost_of](auto& ctx) {
          return limiter.try_acquire(std::invoke(key_of, ctx), detail::cost(cost_of, ctx));
        },
        detail::no_settle{});
  } else {
    return limit_with([&limiter, key_of, cost_of](
                          auto& ctx) { return limiter.reserve(std::invoke(key_of, ctx), detail::cost(cost_of, ctx)); },
                      detail::settle_actual<Actual>{std::move(actual)});
  }
}

/// A layer that holds a bulkhead slot while the rest of the stack runs,
/// waiting at most max_wait for one (0: fail at once with errc::overloaded).
template <class Rep = std::int64_t, class Period = std::nano>
constexpr auto limit_concurrency(bulkhead& slots, std::chrono::duration<Rep, Period> max_wait = {}) {
  return limit_with([&slots, max_wait](auto&) { return slots.acquire_for(max_wait); }, detail::no_settle{});
}

}  // namespace keel
