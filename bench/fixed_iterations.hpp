// Fixed iteration counts for instruction counting.
//
// Google Benchmark picks its iteration count from timing, so a callgrind run
// cannot divide by a known number. With KEEL_BENCH_ITERATIONS=N in the
// environment, benchmarks registered with ->Apply(keel_bench::fixed_iterations)
// run exactly N iterations once, and instructions/op = Ir(function) / N:
//
//   KEEL_BENCH_ITERATIONS=1000000 valgrind --tool=callgrind
//       --toggle-collect='*pipeline_keel_4_layers*' keel_bench_pipeline --benchmark_filter=pipeline/keel/
#pragma once

#include <benchmark/benchmark.h>

#include <cstdlib>

namespace keel_bench {

inline void fixed_iterations(benchmark::internal::Benchmark* b) {
  if (const char* n = std::getenv("KEEL_BENCH_ITERATIONS")) {
    const long long iterations = std::atoll(n);
    if (iterations > 0) b->Iterations(static_cast<benchmark::IterationCount>(iterations));
  }
}

}  // namespace keel_bench
