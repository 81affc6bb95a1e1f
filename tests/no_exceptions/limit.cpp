// Rate limiting without exceptions: every rejection is a value.
#include "check.hpp"

#include <keel/core/clock.hpp>
#include <keel/core/pipeline.hpp>
#include <keel/limit/all_of.hpp>
#include <keel/limit/bulkhead.hpp>
#include <keel/limit/gcra.hpp>
#include <keel/limit/keyed.hpp>
#include <keel/limit/layer.hpp>

#include <chrono>
#include <cstdint>

using keel_noexcept::check;

KEEL_NOEXCEPT_TEST("limit: gcra, reserve/settle, keyed, reserve_all, bulkhead, layers") {
  keel::manual_clock clock;
  keel::gcra_limiter<keel::manual_clock> rps{keel::rate_limit::per_second(10, 2), clock};
  check(rps.try_acquire() && rps.try_acquire(), "the burst is admitted");
  const auto refused = rps.try_acquire();
  check(!refused && refused.error().code == keel::errc::rate_limited &&
            *refused.error().retry_after == std::chrono::milliseconds(100),
        "rate_limited with an exact retry_after");
  check(rps.try_acquire(3).error().code == keel::errc::invalid_argument, "a cost above the burst is invalid");

  keel::gcra_limiter<keel::manual_clock> tpm{keel::rate_limit::per_second(1000, 1000), clock};
  auto p = tpm.reserve(800);
  check(p.has_value(), "reserve admits");
  p->settle(200);
  check(tpm.stats().available == 800, "settle refunds");

  keel::keyed_limiter<int, keel::manual_clock> per_tenant{keel::rate_limit::per_second(10, 1), {}, clock};
  check(per_tenant.try_acquire(1) && per_tenant.try_acquire(2), "keys are independent");
  check(!per_tenant.try_acquire(1), "each key is limited");
  check(!keel::reserve_all(keel::charge(per_tenant[3], 1), keel::charge(rps, 1)), "reserve_all refuses");
  check(per_tenant.try_acquire(3).has_value(), "and leaves no partial charge");

  keel::bulkhead slots{1};
  auto held = slots.try_acquire();
  check(held && !slots.try_acquire(), "a bulkhead holds its limit");

  struct request {
    std::int64_t tokens = 0;
  };
  auto service =
      keel::pipeline(keel::limit(tpm, &request::tokens)).bind([](request&) -> keel::result<int> { return 1; });
  request small{100};
  request huge{5'000};
  check(service(small).has_value(), "the limit layer admits");
  check(service(huge).error().code == keel::errc::invalid_argument, "the limit layer refuses as a value");
}
