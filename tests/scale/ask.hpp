// How the autoscaler tests put a question to keel::autoscaler: readings at an
// exact time on the manual clock.
#pragma once

#include <keel/core/clock.hpp>
#include <keel/scale/autoscaler.hpp>

#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

namespace keel_test {

inline keel::manual_clock::time_point at(std::chrono::nanoseconds t) { return keel::manual_clock::time_point(t); }

/// The decision for `metrics` at time t with `current` replicas (`ready` of
/// them ready; -1: all).
inline keel::scale_decision ask(keel::autoscaler<keel::manual_clock>& a, std::chrono::nanoseconds t,
                                std::int32_t current, std::vector<keel::metric_sample> metrics,
                                std::int32_t ready = -1) {
  return a.recommend(at(t), {.current = current, .ready = ready, .metrics = std::move(metrics)});
}

}  // namespace keel_test
