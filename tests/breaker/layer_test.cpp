// breaker_layer in a pipeline: admission, default and custom classification,
// exceptions, latency measured with the breaker's clock.
#include <keel/breaker/layer.hpp>
#include <keel/core/fallback.hpp>
#include <keel/core/pipeline.hpp>

#include <catch.hpp>

#include <chrono>
#include <stdexcept>

using namespace std::chrono_literals;
using keel::breaker_state;

namespace {

using breaker = keel::circuit_breaker<keel::count_window, keel::manual_clock>;

struct request {
  int mode = 0;  // 0 ok, 1 upstream failure, 2 deadline, 3 rate limited below, 4 throw, 5 slow, 6 empty
};

keel::breaker_config config() {
  keel::breaker_config c;
  c.minimum_calls = 2;
  c.failure_rate_threshold = 100;
  c.slow_call_rate_threshold = 100;
  c.slow_call_duration = 50ms;
  c.open_duration = 5s;
  c.half_open_probes = 1;
  c.jitter = 0;
  return c;
}

struct backend {
  keel::manual_clock clock;
  int calls = 0;
  keel::result<int> operator()(request& r) {
    ++calls;
    switch (r.mode) {
      case 1: return keel::reject(keel::errc::upstream_failure);
      case 2: return keel::reject(keel::errc::deadline_exceeded);
      case 3: return keel::reject(keel::errc::rate_limited);
      case 4: throw std::runtime_error("connection reset");
      case 5: clock.advance(51ms); return 5;
      case 6: return 0;
      default: return 1;
    }
  }
};

}  // namespace

TEST_CASE("by default upstream failures and deadlines fail, other rejections are ignored", "[breaker][layer]") {
  keel::manual_clock clock;
  breaker b{config(), keel::count_window{4}, clock};
  backend be{clock};
  auto service = keel::pipeline(keel::circuit_break(b)).bind(std::ref(be));
  request ok{0}, upstream{1}, deadline{2}, limited{3};
  CHECK(service(ok));
  CHECK(b.stats().calls == 1);
  CHECK_FALSE(service(limited));  // says nothing about the dependency
  CHECK(b.stats().calls == 1);
  CHECK_FALSE(service(upstream));
  CHECK(b.stats().failures == 1);
  b.reset();
  CHECK_FALSE(service(upstream));
  CHECK_FALSE(service(deadline));
  CHECK(b.state() == breaker_state::open);
  const int before = be.calls;
  auto r = service(ok);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == keel::errc::circuit_open);
  CHECK(r.error().retry_after == std::chrono::nanoseconds(5s));
  CHECK(be.calls == before);  // fails fast: nothing below ran
}

TEST_CASE("latency is measured with the breaker's clock, so slow successes count", "[breaker][layer]") {
  keel::manual_clock clock;
  breaker b{config(), keel::count_window{4}, clock};
  backend be{clock};
  auto service = keel::pipeline(keel::circuit_break(b)).bind(std::ref(be));
  request slow{5};
  CHECK(service(slow));
  CHECK(b.stats().slow_calls == 1);
  CHECK(service(slow));
  CHECK(b.state() == breaker_state::open);
}

TEST_CASE("a custom classifier decides: bool or outcome", "[breaker][layer]") {
  keel::manual_clock clock;
  breaker b{config(), keel::count_window{4}, clock};
  backend be{clock};
  auto empty_is_failure = keel::circuit_break(b, [](const keel::result<int>& r) { return !r || *r == 0; });
  auto service = keel::pipeline(empty_is_failure).bind(std::ref(be));
  request empty{6};
  CHECK(service(empty));           // the value passes through...
  CHECK(b.stats().failures == 1);  // ...and counts as a failure
  b.reset();
  auto all_ignored = keel::circuit_break(b, [](const keel::result<int>&) { return keel::outcome::ignored; });
  auto quiet = keel::pipeline(all_ignored).bind(std::ref(be));
  request upstream{1};
  CHECK_FALSE(quiet(upstream));
  CHECK(b.stats().calls == 0);
}

TEST_CASE("exceptions are recorded (failure by default, or as classified) and rethrown", "[breaker][layer]") {
  keel::manual_clock clock;
  breaker b{config(), keel::count_window{4}, clock};
  backend be{clock};
  request boom{4};
  auto service = keel::pipeline(keel::circuit_break(b)).bind(std::ref(be));
  CHECK_THROWS_AS(service(boom), std::runtime_error);
  CHECK(b.stats().failures == 1);

  b.reset();
  auto lenient = keel::circuit_break(b, keel::breaker_failures{},
                                     [](const std::exception_ptr&) { return keel::outcome::ignored; });
  auto service2 = keel::pipeline(lenient).bind(std::ref(be));
  CHECK_THROWS_AS(service2(boom), std::runtime_error);
  CHECK(b.stats().calls == 0);

  // A probe that throws still reports: the breaker is never stuck half-open.
  for (int i = 0; i < 2; ++i) CHECK_THROWS_AS(service(boom), std::runtime_error);
  REQUIRE(b.state() == breaker_state::open);
  clock.advance(5s);
  CHECK_THROWS_AS(service(boom), std::runtime_error);
  CHECK(b.state() == breaker_state::open);
  CHECK(b.stats().consecutive_opens == 2);
}

TEST_CASE("with a fallback in front, an open circuit answers the degraded reply", "[breaker][layer]") {
  keel::manual_clock clock;
  breaker b{config(), keel::count_window{4}, clock};
  backend be{clock};
  auto service =
      keel::pipeline(keel::fallback([](request&, const keel::rejection&) -> keel::result<int> { return -1; },
                                    [](const keel::rejection& r) { return r.code == keel::errc::circuit_open; }),
                     keel::circuit_break(b))
          .bind(std::ref(be));
  b.force_open();
  request ok{0};
  auto r = service(ok);
  REQUIRE(r);
  CHECK(*r == -1);
  CHECK(be.calls == 0);
}
