#include <keel/fmt.hpp>

#include <catch.hpp>

#include <chrono>
#include <string>

using namespace std::chrono_literals;

TEST_CASE("errc, rejection and result format with {fmt}", "[fmt]") {
  CHECK(fmt::format("{}", keel::errc::rate_limited) == "rate_limited");
  CHECK(fmt::format("{:>14}", keel::errc::queue_full) == "    queue_full");
  CHECK(fmt::format("{}", keel::reject(keel::errc::rate_limited, 250ms)) == "rate_limited (retry after 250ms)");
  CHECK(fmt::format("{}", keel::reject(keel::errc::invalid_argument, "cost above burst")) ==
        "invalid_argument: cost above burst");
  CHECK(fmt::format("{}", keel::result<int>(7)) == "ok(7)");
  CHECK(fmt::format("{}", keel::result<std::string>("hi")) == "ok(hi)");
  CHECK(fmt::format("{}", keel::result<void>{}) == "ok");
  CHECK(fmt::format("{}", keel::result<int>(keel::reject(keel::errc::circuit_open, 1500us))) ==
        "rejected(circuit_open (retry after 1.5ms))");
}

TEST_CASE("component enums format by name", "[fmt]") {
  CHECK(fmt::format("{}", keel::breaker_state::half_open) == "half_open");
  CHECK(fmt::format("{:>9}", keel::breaker_state::open) == "     open");
  CHECK(fmt::format("{}", keel::scale_reason::panic) == "panic");
  CHECK(fmt::format("{}", keel::removal_cause::expired) == "expired");
}

TEST_CASE("stats snapshots format as logfmt key=value pairs", "[fmt]") {
  keel::breaker_stats b;
  b.state = keel::breaker_state::open;
  b.calls = 40;
  b.failures = 30;
  b.failure_rate = 75;
  b.rejected = 12;
  b.time_in_state = std::chrono::milliseconds(1500);
  b.consecutive_opens = 1;
  CHECK(fmt::format("{}", b) ==
        "state=open calls=40 failures=30 (75.0%) slow=0 (0.0%) rejected=12 time_in_state=1500ms consecutive_opens=1");

  keel::cache_stats c;
  c.hits = 3;
  c.misses = 1;
  c.coalesced_waits = 1;
  c.size = c.weight = 2;
  CHECK(fmt::format("{}", c) ==
        "hits=3 misses=1 hit_ratio=75.0% evictions=0 expirations=0 loads=0 load_failures=0 coalesced_waits=1 size=2 "
        "weight=2");

  keel::scale_decision d;
  d.replicas = 6;
  d.current = 4;
  d.recommended = 6;
  d.reason = keel::scale_reason::metrics;
  d.metric = 0;
  d.usage_ratio = 1.5;
  CHECK(fmt::format("{}", d) ==
        "replicas=6 current=4 recommended=6 reason=metrics metric=0 usage_ratio=1.50 panicking=false");

  keel::balancer_stats lb;
  lb.nodes = 3;
  lb.outstanding = 7;
  CHECK(fmt::format("{}", lb) == "nodes=3 draining=0 ejected=0 outstanding=7 panic=false");

  keel::queue_stats q;
  q.capacity = 8;
  q.size = 5;
  CHECK(fmt::format("{}", q) == "size=5/8 waiting_consumers=0 waiting_producers=0 closed=false");

  keel::keyed_stats k;
  k.keys = 2;
  k.max_keys = 64;
  CHECK(fmt::format("{}", k) == "keys=2 max_keys=64 dropped=0 refused=0");

  keel::bulkhead_stats h;
  h.max_in_flight = 4;
  h.in_flight = 1;
  CHECK(fmt::format("{}", h) == "in_flight=1/4 waiting=0");
}

TEST_CASE("a live limiter's stats format", "[fmt]") {
  keel::manual_clock clock;
  keel::gcra_limiter<keel::manual_clock> limiter(keel::rate_limit::per_second(10, 5), clock);
  REQUIRE(limiter.try_acquire(2));
  CHECK(fmt::format("{}", limiter.stats()) == "rate=10/1000ms burst=5 available=3");
}
