// keel/limit/all_of.hpp — admit against several limits at once, all or nothing.
//
// An LLM provider enforces requests per minute AND tokens per minute (and per
// day); a call must fit every limit, and a call refused by one must not be
// charged by the others. reserve_all charges each limit in order; if one
// refuses, the ones already charged are refunded exactly (settle(0) of their
// reservations), and the rejection carries the longest retry_after among the
// limits that would refuse — waiting any less is pointless.
//
//   auto p = keel::reserve_all(keel::charge(rpm[tenant], 1),
//                              keel::charge(tpm[tenant], prompt_tokens + max_tokens));
//   if (!p) return p.error();             // 429 with Retry-After = the longest wait
//   auto reply = model(request);
//   p->settle(1, reply.usage.total_tokens);
//
// Works with anything that has reserve(cost) → result<R> and peek(cost), R
// having settle(actual): gcra_limiter, and one key of a keyed_limiter
// (keyed[key]). Charging is not one atomic step: between charging a limit and
// refunding it, a concurrent caller of that limit may be refused because of
// the charge. What is guaranteed is that nothing is left behind.
#pragma once

#include <keel/core/result.hpp>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace keel {

/// A limit that can be charged ahead and settled later.
template <class L>
concept reservable = requires(L& l, std::int64_t cost) {
  { l.reserve(cost) } -> std::same_as<result<typename std::remove_cvref_t<L>::reservation>>;
  { l.peek(cost) } -> std::same_as<result<void>>;
  requires requires(typename std::remove_cvref_t<L>::reservation & r) { r.settle(cost); };
};

/// A cost to charge to one limit: charge(limiter, cost). Holds a limiter
/// (an lvalue) by reference and a handle (keyed[key]) by value.
template <class L>
struct charge_of {
  L limiter;
  std::int64_t cost;
};

template <class L>
constexpr charge_of<L> charge(L&& limiter, std::int64_t cost) {
  static_assert(reservable<std::remove_reference_t<L>>,
                "keel::charge: the limit must have reserve(cost) and peek(cost), like keel::gcra_limiter or one "
                "key of a keel::keyed_limiter (keyed[key])");
  return {std::forward<L>(limiter), cost};
}

/// The reservations of one reserve_all: settle them together, or one by one with get<I>().
template <class... R>
class reservations {
 public:
  explicit reservations(R&&... parts) : parts_(std::move(parts)...) {}

  /// True while any part is unsettled.
  bool active() const noexcept {
    return std::apply([](const auto&... p) { return (p.active() || ...); }, parts_);
  }

  /// Settles every part with its actual cost, in the order the limits were given.
  template <class... Costs>
  requires(sizeof...(Costs) == sizeof...(R) &&
           (std::convertible_to<Costs, std::int64_t> && ...)) void settle(Costs... actual) noexcept {
    settle_each(std::index_sequence_for<R...>{}, static_cast<std::int64_t>(actual)...);
  }

  template <std::size_t I>
  auto& get() noexcept {
    return std::get<I>(parts_);
  }

 private:
  template <std::size_t... I, class... Costs>
  void settle_each(std::index_sequence<I...>, Costs... actual) noexcept {
    (std::get<I>(parts_).settle(actual), ...);
  }

  std::tuple<R...> parts_;
};

namespace detail {

// Merges why a later limit would refuse into the rejection so far: a call no
// wait can admit wins; otherwise the longer retry_after.
inline void merge_refusal(rejection& so_far, const result<void>& later) {
  if (later || so_far.code == errc::invalid_argument) return;
  const rejection& r = later.error();
  if (r.code == errc::invalid_argument) {
    so_far = r;
  } else if (r.retry_after && so_far.retry_after && *r.retry_after > *so_far.retry_after) {
    so_far.retry_after = r.retry_after;
  }
}

template <std::size_t I, class Charges, class Slots>
std::optional<rejection> reserve_from(Charges& charges, Slots& slots) {
  if constexpr (I == std::tuple_size_v<Charges>) {
    return std::nullopt;
  } else {
    auto& c = std::get<I>(charges);
    auto r = c.limiter.reserve(c.cost);
    if (!r) {
      rejection why = r.error();
      if (why.code == errc::rate_limited || why.code == errc::invalid_argument) {
        [&]<std::size_t... J>(std::index_sequence<J...>) {
          (merge_refusal(why, std::get<I + 1 + J>(charges).limiter.peek(std::get<I + 1 + J>(charges).cost)), ...);
        }
        (std::make_index_sequence<std::tuple_size_v<Charges> - I - 1>{});
      }
      return why;
    }
    std::get<I>(slots).emplace(std::move(*r));
    auto failed = reserve_from<I + 1>(charges, slots);
    if (failed) std::get<I>(slots)->settle(0);  // exact rollback: refund the whole estimate
    return failed;
  }
}

}  // namespace detail

/// Charges every cost or none. On refusal: the first limit's rejection, with
/// the longest retry_after of all limits that would refuse (invalid_argument
/// if any cost can never be admitted).
template <class... L>
auto reserve_all(charge_of<L>... charges) -> result<reservations<typename std::remove_cvref_t<L>::reservation...>> {
  static_assert(sizeof...(L) >= 1, "keel::reserve_all: give at least one keel::charge(limiter, cost)");
  std::tuple<charge_of<L>...> all(std::move(charges)...);
  std::tuple<std::optional<typename std::remove_cvref_t<L>::reservation>...> slots;
  if (auto failed = detail::reserve_from<0>(all, slots)) return *failed;
  return std::apply([](auto&... s) { return reservations(std::move(*s)...); }, slots);
}

/// reserve_all without settling: every cost stays charged.
template <class... L>
result<void> acquire_all(charge_of<L>... charges) {
  if (auto r = reserve_all(std::move(charges)...); !r) return r.error();
  return {};
}

}  // namespace keel
