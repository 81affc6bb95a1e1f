// keel/core/fallback.hpp — answer something useful when the call is refused or fails.
//
// fallback(handler) wraps the rest of the stack; when it returns a rejection
// (rate limited, circuit open, upstream failure, ...) the layer returns
// handler(ctx, rejection) instead: a cached answer, a smaller model, a
// degraded reply. An exception thrown below the layer is treated as
// errc::upstream_failure with reason "exception"; if the handler does not take
// it, the exception propagates unchanged.
//
// fallback(handler, when) handles only rejections for which when(rejection)
// is true.
//
//   auto degrade = keel::fallback(
//       [&](request& r, const keel::rejection&) -> keel::result<reply> { return small_model(r); },
//       [](const keel::rejection& why) { return why.code == keel::errc::circuit_open; });
#pragma once

#include <keel/core/config.hpp>
#include <keel/core/pipeline.hpp>

#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

namespace keel {

namespace detail {
struct any_rejection {
  constexpr bool operator()(const rejection&) const noexcept { return true; }
};
}  // namespace detail

template <class Handler, class When>
class fallback_layer {
 public:
  constexpr fallback_layer(Handler handler, When when) : handler_(std::move(handler)), when_(std::move(when)) {}

  template <class Ctx, class Next>
  constexpr next_result_t<Next, Ctx> operator()(Ctx& ctx, Next&& next) {
    using R = next_result_t<Next, Ctx>;
    static_assert(is_result_v<R>, "keel::fallback: the stack below must return keel::result<T>");
    static_assert(std::is_invocable_v<Handler&, Ctx&, const rejection&>,
                  "keel::fallback: the handler must be callable as handler(ctx, const keel::rejection&)");
    static_assert(std::is_invocable_r_v<bool, When&, const rejection&>,
                  "keel::fallback: the filter must be callable as when(const keel::rejection&) -> bool");
    rejection why{errc::upstream_failure};
#if KEEL_HAS_EXCEPTIONS
    // The handler runs outside the try block: an exception it throws is its
    // caller's business, not a second failure to fall back from.
    try {
      R r = next(ctx);
      if (r.has_value() || !std::invoke(when_, r.error())) return r;
      why = r.error();
    } catch (...) {
      why = rejection{errc::upstream_failure, std::nullopt, "exception"};
      if (!std::invoke(when_, why)) throw;
    }
#else
    R r = next(ctx);
    if (r.has_value() || !std::invoke(when_, r.error())) return r;
    why = r.error();
#endif
    return R(std::invoke(handler_, ctx, std::as_const(why)));
  }

 private:
  Handler handler_;
  When when_;
};

/// A layer that replaces every rejection from below with handler(ctx, rejection).
template <class Handler>
constexpr auto fallback(Handler&& handler) {
  return fallback_layer<std::decay_t<Handler>, detail::any_rejection>(std::forward<Handler>(handler), {});
}

/// A layer that replaces the rejections for which when(rejection) is true.
template <class Handler, class When>
constexpr auto fallback(Handler&& handler, When&& when) {
  return fallback_layer<std::decay_t<Handler>, std::decay_t<When>>(std::forward<Handler>(handler),
                                                                   std::forward<When>(when));
}

}  // namespace keel
