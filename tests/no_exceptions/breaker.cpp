// The circuit breaker without exceptions: rejections are values, permits and the layer work.
#include "check.hpp"

#include <keel/breaker/circuit_breaker.hpp>
#include <keel/breaker/layer.hpp>
#include <keel/core/pipeline.hpp>

#include <chrono>

using keel_noexcept::check;

KEEL_NOEXCEPT_TEST("breaker: trip, fail fast, probe, recover; layer") {
  using namespace std::chrono_literals;
  keel::manual_clock clock;
  keel::breaker_config cfg;
  cfg.minimum_calls = 2;
  cfg.half_open_probes = 1;
  cfg.open_duration = 1s;
  keel::circuit_breaker<keel::count_window, keel::manual_clock> b{cfg, keel::count_window{2}, clock};
  for (int i = 0; i < 2; ++i) {
    auto p = b.try_acquire();
    check(static_cast<bool>(p), "closed admits");
    if (p) p->failure(1ms);
  }
  check(b.state() == keel::breaker_state::open, "two failures of two trip it");
  auto r = b.try_acquire();
  check(!r && r.error().code == keel::errc::circuit_open && r.error().retry_after == std::chrono::nanoseconds(1s),
        "open rejects with retry_after");
  clock.advance(1s);
  {
    auto probe = b.try_acquire();
    check(static_cast<bool>(probe), "half-open admits a probe");
  }  // dropped: the slot returns
  auto service = keel::pipeline(keel::circuit_break(b)).bind([](int& x) -> keel::result<int> { return x; });
  int x = 7;
  auto v = service(x);
  check(v && *v == 7, "the layer passes the probe through");
  check(b.state() == keel::breaker_state::closed, "a good probe closes it");
}
