// keel/core/authenticate.hpp — the gateway's first layer: who is calling?
//
// authenticate(verifier) runs verifier(ctx) before anything else. The verifier
// returns bool (false → errc::unauthenticated) or keel::result<void> (its
// rejection is passed on as is). It usually also writes the caller's identity
// into ctx — the tenant that later layers limit, bill and route by.
//
//   auto auth = keel::authenticate([&](request& r) {
//     auto it = api_keys.find(r.api_key);
//     if (it == api_keys.end()) return false;
//     r.tenant = it->second;
//     return true;
//   });
#pragma once

#include <keel/core/pipeline.hpp>

#include <functional>
#include <type_traits>
#include <utility>

namespace keel {

template <class Verifier>
class authenticate_layer {
 public:
  constexpr explicit authenticate_layer(Verifier verifier) : verifier_(std::move(verifier)) {}

  template <class Ctx, class Next>
  constexpr next_result_t<Next, Ctx> operator()(Ctx& ctx, Next&& next) {
    using verdict = std::invoke_result_t<Verifier&, Ctx&>;
    if constexpr (std::is_same_v<verdict, result<void>>) {
      if (auto ok = std::invoke(verifier_, ctx); !ok) return ok.error();
    } else {
      static_assert(std::is_convertible_v<verdict, bool>,
                    "keel::authenticate: the verifier must return bool or keel::result<void>");
      if (!static_cast<bool>(std::invoke(verifier_, ctx))) return reject(errc::unauthenticated);
    }
    return next(ctx);
  }

 private:
  Verifier verifier_;
};

/// A layer that admits a request only when verifier(ctx) accepts it.
template <class Verifier>
constexpr authenticate_layer<std::decay_t<Verifier>> authenticate(Verifier&& verifier) {
  return authenticate_layer<std::decay_t<Verifier>>(std::forward<Verifier>(verifier));
}

}  // namespace keel
