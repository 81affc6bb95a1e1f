#include <keel/core/clock.hpp>
#include <keel/core/pipeline.hpp>
#include <keel/limit/all_of.hpp>
#include <keel/limit/bulkhead.hpp>
#include <keel/limit/gcra.hpp>
#include <keel/limit/keyed.hpp>
#include <keel/limit/layer.hpp>

#include <catch.hpp>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;

namespace {
struct request {
  std::string tenant;
  std::int64_t max_tokens = 0;
  bool fail = false;
  bool explode = false;
};
struct reply {
  std::int64_t tokens_used = 0;
};
keel::result<reply> model(request& r) {
  if (r.explode) throw std::runtime_error("model crashed");
  if (r.fail) return keel::reject(keel::errc::upstream_failure);
  return reply{r.max_tokens / 4};  // uses a quarter of what it may
}
}  // namespace

TEST_CASE("limit layer: per-tenant token budget reserved by estimate and settled by actual use", "[limit][layer]") {
  keel::manual_clock clock;
  keel::keyed_limiter<std::string, keel::manual_clock> tpm{keel::rate_limit::per_minute(60'000, 1'000), {}, clock};
  auto service =
      keel::pipeline(keel::limit(tpm, &request::tenant, &request::max_tokens, &reply::tokens_used)).bind(model);
  request big{"acme", 800};
  REQUIRE(service(big));         // reserves 800, settles 200
  CHECK(tpm.peek("acme", 800));  // the unused 600 came back
  CHECK_FALSE(tpm.peek("acme", 801));

  request failing{"acme", 400, true};
  const auto f = service(failing);
  REQUIRE_FALSE(f);
  CHECK(f.error().code == keel::errc::upstream_failure);
  CHECK_FALSE(tpm.peek("acme", 401));  // on a failure the estimate stays charged
  CHECK(tpm.peek("acme", 400));

  request boom{"acme", 400, false, true};
  CHECK_THROWS_AS(service(boom), std::runtime_error);
  CHECK(tpm.peek("acme", 0));  // an exception below drops the permit: estimate kept, key unpinned
  CHECK_FALSE(tpm.peek("acme", 1));
  clock.advance(500ms);
  CHECK(tpm.sweep() == 0);  // acme still owes 500 ms
  clock.advance(500ms);
  CHECK(tpm.sweep() == 1);  // and is dropped once at rest: nothing stayed pinned

  request over{"globex", 1'001};
  const auto o = service(over);
  REQUIRE_FALSE(o);
  CHECK(o.error().code == keel::errc::invalid_argument);
}

TEST_CASE("limit layer on one shared limiter, cost 1 per request by default", "[limit][layer]") {
  keel::manual_clock clock;
  keel::gcra_limiter<keel::manual_clock> rps{keel::rate_limit::per_second(10, 2), clock};
  int calls = 0;
  auto service = keel::pipeline(keel::limit(rps)).bind([&](request&) -> keel::result<int> { return ++calls; });
  request r{"x"};
  CHECK(service(r));
  CHECK(service(r));
  const auto third = service(r);
  REQUIRE_FALSE(third);
  CHECK(third.error().code == keel::errc::rate_limited);
  CHECK(*third.error().retry_after == 100ms);
  CHECK(calls == 2);  // the refused request never reached the terminal

  // Token counts are often std::size_t: any integer cost works.
  keel::gcra_limiter<keel::manual_clock> tokens{keel::rate_limit::per_second(100, 100), clock};
  auto by_size = keel::pipeline(keel::limit(tokens, [](request& q) {
                   return q.tenant.size() * std::size_t{10};
                 })).bind([](request&) -> keel::result<int> { return 0; });
  request five{"abcde"};
  CHECK(by_size(five));
  CHECK(tokens.stats().available == 50);
}

TEST_CASE("limit layer settling from the whole result refunds failures", "[limit][layer]") {
  keel::manual_clock clock;
  keel::gcra_limiter<keel::manual_clock> tpm{keel::rate_limit::per_second(100, 100), clock};
  auto by_result = [](const keel::result<reply>& r) { return r ? r->tokens_used : 0; };
  auto service = keel::pipeline(keel::limit(tpm, &request::max_tokens, by_result)).bind(model);
  request failing{"a", 100, true};
  CHECK_FALSE(service(failing));
  CHECK(tpm.stats().available == 100);  // refunded
}

TEST_CASE("limit_with: RPM and TPM per tenant, all or nothing", "[limit][layer][all_of]") {
  keel::manual_clock clock;
  keel::keyed_limiter<std::string, keel::manual_clock> rpm{keel::rate_limit::per_minute(60, 5), {}, clock};
  keel::keyed_limiter<std::string, keel::manual_clock> tpm{keel::rate_limit::per_minute(60'000, 1'000), {}, clock};
  auto both = keel::limit_with(
      [&](request& r) {
        return keel::reserve_all(keel::charge(rpm[r.tenant], 1), keel::charge(tpm[r.tenant], r.max_tokens));
      },
      [](auto& permit, const reply& used) { permit.settle(1, used.tokens_used); });
  auto service = keel::pipeline(both).bind(model);
  request r{"acme", 1'000};
  REQUIRE(service(r));           // charges 1 request and 250 tokens after settling
  request too_big{"acme", 900};  // 750 tokens left
  REQUIRE_FALSE(service(too_big));
  CHECK(rpm.peek("acme", 4));  // the refused request was not counted
}

TEST_CASE("concurrency layer holds a slot while the call runs", "[limit][layer][bulkhead]") {
  keel::bulkhead slots{1};
  keel::result<int> inner{0};
  auto stack = keel::pipeline(keel::limit_concurrency(slots));
  auto service = stack.bind([&](request& r) -> keel::result<int> {
    CHECK(slots.in_flight() == 1);
    if (r.tenant == "nested") inner = stack(r, [](request&) -> keel::result<int> { return 1; });
    return 0;
  });
  request nested{"nested"};
  CHECK(service(nested));
  REQUIRE_FALSE(inner);  // the only slot was taken by the outer call
  CHECK(inner.error().code == keel::errc::overloaded);
  CHECK(slots.in_flight() == 0);
}
