// keel::cache without exceptions: rejections from loaders are values, single
// flight and the pipeline layer work, bad results are not cached.
#include "check.hpp"

#include <keel/cache/cache.hpp>
#include <keel/cache/cache_layer.hpp>
#include <keel/core/clock.hpp>
#include <keel/core/pipeline.hpp>

#include <chrono>

using keel_noexcept::check;

KEEL_NOEXCEPT_TEST("cache: get/put, get_or_load rejections, negative TTL, begin_load, cache_by layer") {
  keel::manual_clock clock;
  keel::cache<int, int, keel::w_tinylfu, keel::manual_clock> c(
      {.capacity = 8, .expire_after_write = std::chrono::seconds(10), .negative_ttl = std::chrono::seconds(1)}, clock);
  c.put(1, 10);
  check(c.get(1) == 10, "put then get");
  clock.advance(std::chrono::seconds(10));
  check(!c.get(1).has_value(), "expired after write");

  int calls = 0;
  auto failing = [&]() -> keel::result<int> {
    ++calls;
    return keel::reject(keel::errc::upstream_failure);
  };
  check(!c.get_or_load(2, failing), "a rejection is returned");
  check(!c.get_or_load(2, failing) && calls == 1, "and remembered for negative_ttl");
  clock.advance(std::chrono::seconds(1));
  check(c.get_or_load(2, [] { return 20; }) == keel::result<int>(20), "then a value loads");

  auto ticket = c.begin_load(3);
  check(ticket.permit.active(), "begin_load gives a permit on a miss");
  ticket.permit.complete(30);
  check(ticket.result.wait() == keel::result<int>(30) && c.get(3) == 30, "complete() caches and wakes");

  struct request {
    int key;
  };
  int backend_calls = 0;
  auto service = keel::pipeline(keel::cache_by(c, [](request& r) { return r.key; })).bind([&](request& r) {
    ++backend_calls;
    return keel::result<int>(r.key * 100);
  });
  request r{4};
  check(service(r) == keel::result<int>(400) && service(r) == keel::result<int>(400) && backend_calls == 1,
        "cache_by serves the second request from cache");
}
