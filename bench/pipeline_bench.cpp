// pipeline/keel/4_layers vs pipeline/hand_nested/4_layers: what composing four
// pass-through layers with keel::pipeline costs compared with writing the same
// four steps as nested lambdas by hand. Target: within 5%.
#include <keel/core/pipeline.hpp>

#include "fixed_iterations.hpp"

#include <benchmark/benchmark.h>

namespace {

struct request {
  int value = 0;
  int touched = 0;
};

// A pass-through layer that does the smallest observable work: it marks the
// context, so the compiler must run it, and passes the result on.
struct mark {
  template <class Ctx, class Next>
  keel::next_result_t<Next, Ctx> operator()(Ctx& ctx, Next&& next) const {
    ++ctx.touched;
    return next(ctx);
  }
};

keel::result<int> terminal(request& r) {
  if (r.value < 0) return keel::reject(keel::errc::invalid_argument);
  return r.value + r.touched;
}

void pipeline_keel_4_layers(benchmark::State& state) {
  auto service = keel::pipeline(mark{}, mark{}, mark{}, mark{}).bind(terminal);
  request req{1, 0};
  for (auto _ : state) {
    benchmark::DoNotOptimize(req);
    auto r = service(req);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void pipeline_hand_nested_4_layers(benchmark::State& state) {
  // What a user writes without keel: each step calls the next directly.
  auto l4 = [](request& c) {
    ++c.touched;
    return terminal(c);
  };
  auto l3 = [&](request& c) {
    ++c.touched;
    return l4(c);
  };
  auto l2 = [&](request& c) {
    ++c.touched;
    return l3(c);
  };
  auto l1 = [&](request& c) {
    ++c.touched;
    return l2(c);
  };
  request req{1, 0};
  for (auto _ : state) {
    benchmark::DoNotOptimize(req);
    auto r = l1(req);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

}  // namespace

BENCHMARK(pipeline_keel_4_layers)->Name("pipeline/keel/4_layers")->Apply(keel_bench::fixed_iterations);
BENCHMARK(pipeline_hand_nested_4_layers)->Name("pipeline/hand_nested/4_layers")->Apply(keel_bench::fixed_iterations);
