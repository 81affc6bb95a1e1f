// Invalid breaker configuration is rejected at construction, naming the field.
#include <keel/breaker/circuit_breaker.hpp>

#include <catch.hpp>

#include <chrono>
#include <cmath>
#include <functional>
#include <limits>

using namespace std::chrono_literals;

namespace {
void build(const std::function<void(keel::breaker_config&)>& change, keel::count_window w = {}) {
  keel::breaker_config c;
  change(c);
  keel::circuit_breaker<> b{c, w};
  (void)b;
}
}  // namespace

TEST_CASE("the defaults are valid", "[breaker][config]") {
  CHECK_NOTHROW(keel::circuit_breaker<>{});
  CHECK_NOTHROW(keel::circuit_breaker<keel::time_window>{});
}

TEST_CASE("rates outside (0, 100] are rejected", "[breaker][config]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (double bad : {0.0, -1.0, 100.5, nan}) {
    CHECK_THROWS_WITH(build([&](auto& c) { c.failure_rate_threshold = bad; }),
                      "keel::breaker: failure_rate_threshold must be in (0, 100]");
    CHECK_THROWS_WITH(build([&](auto& c) { c.slow_call_rate_threshold = bad; }),
                      "keel::breaker: slow_call_rate_threshold must be in (0, 100]");
  }
  CHECK_NOTHROW(build([](auto& c) { c.failure_rate_threshold = 100; }));
  CHECK_NOTHROW(build([](auto& c) { c.slow_call_rate_threshold = 0.001; }));
}

TEST_CASE("zero and negative durations, zero calls and zero probes are rejected", "[breaker][config]") {
  CHECK_THROWS_WITH(build([](auto& c) { c.slow_call_duration = 0s; }),
                    "keel::breaker: slow_call_duration must be positive");
  CHECK_THROWS_WITH(build([](auto& c) { c.slow_call_duration = -1ms; }),
                    "keel::breaker: slow_call_duration must be positive");
  CHECK_THROWS_WITH(build([](auto& c) { c.open_duration = -1s; }), "keel::breaker: open_duration must be positive");
  CHECK_THROWS_WITH(build([](auto& c) { c.open_duration = 0s; }), "keel::breaker: open_duration must be positive");
  CHECK_THROWS_WITH(build([](auto& c) { c.minimum_calls = 0; }), "keel::breaker: minimum_calls must be at least 1");
  CHECK_THROWS_WITH(build([](auto& c) { c.half_open_probes = 0; }),
                    "keel::breaker: half_open_probes must be in [1, 255]");
  CHECK_THROWS_WITH(build([](auto& c) { c.half_open_probes = 256; }),
                    "keel::breaker: half_open_probes must be in [1, 255]");
  CHECK_THROWS_WITH(build([](auto& c) { c.backoff_multiplier = 0.5; }),
                    "keel::breaker: backoff_multiplier must be finite and at least 1");
  CHECK_THROWS_WITH(build([](auto& c) { c.backoff_multiplier = std::numeric_limits<double>::infinity(); }),
                    "keel::breaker: backoff_multiplier must be finite and at least 1");
  CHECK_THROWS_WITH(build([](auto& c) { c.max_open_duration = c.open_duration - 1ns; }),
                    "keel::breaker: max_open_duration must not be less than open_duration");
  CHECK_THROWS_WITH(build([](auto& c) { c.jitter = 1.0; }), "keel::breaker: jitter must be in [0, 1)");
  CHECK_THROWS_WITH(build([](auto& c) { c.jitter = -0.1; }), "keel::breaker: jitter must be in [0, 1)");
}

TEST_CASE("minimum_calls cannot exceed what a count window holds", "[breaker][config]") {
  CHECK_THROWS_WITH(build([](auto& c) { c.minimum_calls = 11; }, keel::count_window{10}),
                    "keel::breaker: minimum_calls must not exceed the count_window size");
  CHECK_NOTHROW(build([](auto& c) { c.minimum_calls = 10; }, keel::count_window{10}));
  CHECK_THROWS_WITH(build([](auto&) {}, keel::count_window{0}),
                    "keel::breaker: count_window size must be in [1, 2^20]");
}
