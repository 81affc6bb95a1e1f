// keel/balance/balanced.hpp — the balancer as the end of a pipeline.
//
// balanced(lb, call) is a pipeline terminal: for each request it picks a
// node, runs call(ctx, node) against it, and records the outcome and latency
// on the lease. A success is a value; failure or ignored is decided by
// classify (default: keel::default_classify, below). If call throws, the
// lease records a failure and the exception propagates. When no node can
// serve, the terminal returns the no_backend rejection.
//
//   keel::balancer<gpu, keel::peak_ewma> lb;
//   auto service = keel::pipeline(keel::authenticate(check), limiter_layer)
//                      .bind(keel::balanced(lb, [](request& r, const gpu& g) -> keel::result<reply> {
//                        return g.client->complete(r.prompt);
//                      }));
#pragma once

#include <keel/core/config.hpp>
#include <keel/core/error.hpp>
#include <keel/core/permit.hpp>
#include <keel/core/result.hpp>

#include <functional>
#include <type_traits>
#include <utility>

namespace keel {

/// success for a value; failure for what says the node is unwell (it failed,
/// timed out, shed load, is closed); ignored for what says nothing about the
/// node (the caller's own rate limit, a bad request, missing credentials).
struct default_classify {
  template <class T>
  constexpr outcome operator()(const result<T>& r) const noexcept {
    if (r.has_value()) return outcome::success;
    switch (r.error().code) {
      case errc::rate_limited:
      case errc::unauthenticated:
      case errc::invalid_argument: return outcome::ignored;
      default: return outcome::failure;
    }
  }
};

template <class Balancer, class Call, class Classify>
class balanced_terminal {
 public:
  balanced_terminal(Balancer& lb, Call call, Classify classify)
      : lb_(&lb), call_(std::move(call)), classify_(std::move(classify)) {}

  template <class Ctx>
  auto operator()(Ctx& ctx) {
    using node_type = typename Balancer::node_type;
    static_assert(std::is_invocable_v<Call&, Ctx&, const node_type&>,
                  "keel::balanced: the call must be callable as call(ctx, const Node&)");
    using R = std::invoke_result_t<Call&, Ctx&, const node_type&>;
    static_assert(is_result_v<R>, "keel::balanced: the call must return keel::result<T>");
    auto lease = lb_->pick(ctx);
    if (!lease) return R(lease.error());
#if KEEL_HAS_EXCEPTIONS
    try {
      R r = std::invoke(call_, ctx, lease->node());
      lease->record(std::invoke(classify_, std::as_const(r)));
      return r;
    } catch (...) {
      lease->failure();
      throw;
    }
#else
    R r = std::invoke(call_, ctx, lease->node());
    lease->record(std::invoke(classify_, std::as_const(r)));
    return r;
#endif
  }

 private:
  Balancer* lb_;
  Call call_;
  Classify classify_;
};

/// A pipeline terminal that runs call(ctx, node) on a node picked by lb.
template <class Balancer, class Call, class Classify = default_classify>
balanced_terminal<Balancer, std::decay_t<Call>, Classify> balanced(Balancer& lb, Call&& call, Classify classify = {}) {
  return {lb, std::forward<Call>(call), std::move(classify)};
}

}  // namespace keel
