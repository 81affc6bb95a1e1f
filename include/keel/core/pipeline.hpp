// keel/core/pipeline.hpp — stacking policies around a call.
//
// A layer is any object callable as `layer(ctx, next)`: it receives the
// request context by reference and `next`, a callable that runs the rest of
// the stack (`next(ctx)`). It may inspect or change ctx, call next zero times
// (short-circuit with a rejection), once, or several times (retry, hedge),
// and returns what next returns — normally a keel::result<R>.
//
// pipeline(l1, l2, ..., ln) composes layers outermost first, as Tower's
// ServiceBuilder and Polly's ResiliencePipelineBuilder do: a request passes
// l1, then l2, ..., then the terminal call. The stack is built from templates,
// so the compiler inlines it and a pipeline costs what the same layers cost
// written as nested lambdas (see bench: pipeline/keel vs pipeline/hand_nested).
// A pipeline is itself a layer, so pipelines nest.
//
//   auto stack = keel::pipeline(keel::authenticate(check_key),
//                               limit_layer, breaker_layer);
//   keel::result<reply> r = stack(ctx, [&](request& c) { return backend(c); });
//   auto service = stack.bind(backend);   // or keep the terminal bound
//   r = service(ctx);
//
// Writing a layer: return `keel::next_result_t<Next, Ctx>` so a rejection
// converts to the caller's result type:
//
//   struct log_layer {
//     template <class Ctx, class Next>
//     keel::next_result_t<Next, Ctx> operator()(Ctx& ctx, Next&& next) {
//       auto r = next(ctx);
//       if (!r) log(r.error().code);
//       return r;
//     }
//   };
#pragma once

#include <keel/core/result.hpp>

#include <cstddef>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace keel {

/// The result type of running the rest of the stack: what a layer returns.
template <class Next, class Ctx>
using next_result_t = std::invoke_result_t<Next&, Ctx&>;

namespace detail {
/// Stand-in for "the rest of the stack" when checking a layer in isolation.
template <class Ctx, class R>
struct archetype_next {
  R operator()(Ctx&) const;
};
}  // namespace detail

/// L can sit in a pipeline over context Ctx whose terminal returns R.
template <class L, class Ctx, class R = result<void>>
concept layer = std::invocable<L&, Ctx&, detail::archetype_next<Ctx, R>>;

template <class... Layers>
class pipeline;

namespace detail {

/// `next` as seen by layer I-1: runs layer I (or the terminal) and beyond.
template <std::size_t I, class Pipeline, class Terminal>
class next_step {
 public:
  constexpr next_step(Pipeline& p, Terminal& t) noexcept : pipeline_(&p), terminal_(&t) {}
  template <class Ctx>
  constexpr decltype(auto) operator()(Ctx& ctx) const {
    return pipeline_->template run<I>(ctx, *terminal_);
  }

 private:
  Pipeline* pipeline_;
  Terminal* terminal_;
};

}  // namespace detail

template <class... Layers>
class pipeline {
 public:
  constexpr explicit pipeline(Layers... layers) : layers_(std::move(layers)...) {}

  /// Runs ctx through every layer, outermost first, then through terminal.
  template <class Ctx, class Terminal>
  constexpr decltype(auto) operator()(Ctx& ctx, Terminal&& terminal) {
    static_assert(std::is_invocable_v<Terminal&, Ctx&>,
                  "keel::pipeline: the terminal must be callable as terminal(ctx) with the request context");
    return run<0>(ctx, terminal);
  }

  /// A service: this pipeline with its terminal bound, callable as service(ctx).
  template <class Terminal>
  class service {
   public:
    constexpr service(pipeline p, Terminal t) : pipeline_(std::move(p)), terminal_(std::move(t)) {}
    template <class Ctx>
    constexpr decltype(auto) operator()(Ctx& ctx) {
      return pipeline_(ctx, terminal_);
    }
    template <class Ctx>
    requires(!std::is_lvalue_reference_v<Ctx>) constexpr decltype(auto) operator()(Ctx&& ctx) {
      return pipeline_(ctx, terminal_);
    }

   private:
    pipeline pipeline_;
    Terminal terminal_;
  };

  template <class Terminal>
  constexpr service<std::decay_t<Terminal>> bind(Terminal&& terminal) const& {
    return {*this, std::forward<Terminal>(terminal)};
  }
  template <class Terminal>
  constexpr service<std::decay_t<Terminal>> bind(Terminal&& terminal) && {
    return {std::move(*this), std::forward<Terminal>(terminal)};
  }

  /// Layer I, for configuration or inspection after composition.
  template <std::size_t I>
  constexpr auto& layer() noexcept {
    return std::get<I>(layers_);
  }

  static constexpr std::size_t size() noexcept { return sizeof...(Layers); }

 private:
  template <std::size_t, class, class>
  friend class detail::next_step;

  template <std::size_t I, class Ctx, class Terminal>
  constexpr decltype(auto) run(Ctx& ctx, Terminal& terminal) {
    if constexpr (I == sizeof...(Layers)) {
      return std::invoke(terminal, ctx);
    } else {
      using next_t = detail::next_step<I + 1, pipeline, Terminal>;
      using layer_t = std::tuple_element_t<I, std::tuple<Layers...>>;
      static_assert(std::is_invocable_v<layer_t&, Ctx&, next_t>,
                    "keel::pipeline: a layer must be callable as layer(ctx, next), where next(ctx) runs the "
                    "rest of the stack; see keel/core/pipeline.hpp for how to write one");
      return std::invoke(std::get<I>(layers_), ctx, next_t(*this, terminal));
    }
  }

  std::tuple<Layers...> layers_;
};

template <class... Layers>
pipeline(Layers...) -> pipeline<Layers...>;

}  // namespace keel
