#include <keel/core/authenticate.hpp>
#include <keel/core/clock.hpp>
#include <keel/core/deadline.hpp>
#include <keel/core/fallback.hpp>
#include <keel/core/pipeline.hpp>

#include <catch.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

using namespace std::chrono_literals;

namespace {
struct request {
  explicit request(std::string key = {}, std::string who = {}, keel::manual_clock::time_point by = {})
      : api_key(std::move(key)), tenant(std::move(who)), deadline(by) {}
  std::string api_key;
  std::string tenant;
  keel::manual_clock::time_point deadline;
  int calls = 0;
};

keel::result<std::string> echo_tenant(request& r) {
  ++r.calls;
  return r.tenant;
}
}  // namespace

TEST_CASE("authenticate admits verified callers and lets the verifier fill the context", "[core][authenticate]") {
  auto auth = keel::authenticate([](request& r) {
    if (r.api_key != "k-123") return false;
    r.tenant = "acme";
    return true;
  });
  auto service = keel::pipeline(auth).bind(echo_tenant);

  request good{"k-123"};
  const auto ok = service(good);
  REQUIRE(ok);
  CHECK(*ok == "acme");

  request bad{"nope"};
  const auto no = service(bad);
  REQUIRE_FALSE(no);
  CHECK(no.error().code == keel::errc::unauthenticated);
  CHECK(bad.calls == 0);
}

TEST_CASE("authenticate passes on a verifier's own rejection", "[core][authenticate]") {
  auto auth = keel::authenticate([](request& r) -> keel::result<void> {
    if (r.api_key.empty()) return keel::reject(keel::errc::unauthenticated, "missing API key");
    if (r.api_key == "suspended") return keel::reject(keel::errc::rate_limited, 1h);
    return {};
  });
  auto service = keel::pipeline(auth).bind(echo_tenant);
  request anonymous;
  request suspended{"suspended"};
  request fine{"ok"};
  CHECK(std::string(service(anonymous).error().reason) == "missing API key");
  CHECK(service(suspended).error().retry_after == std::chrono::nanoseconds(1h));
  CHECK(service(fine).has_value());
}

TEST_CASE("deadline refuses requests that cannot finish in time", "[core][deadline]") {
  keel::manual_clock clock(keel::manual_clock::time_point(100s));
  auto service = keel::pipeline(keel::deadline(50ms, clock)).bind(echo_tenant);

  request roomy{"", "t", clock.now() + 51ms};
  CHECK(service(roomy).has_value());
  request exact{"", "t", clock.now() + 50ms};  // exactly the expected time still fits
  CHECK(service(exact).has_value());

  request tight{"", "t", clock.now() + 49ms};
  const auto r = service(tight);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == keel::errc::deadline_exceeded);
  CHECK(std::string(r.error().reason) == "deadline closer than expected service time");
  CHECK(tight.calls == 0);

  request passed{"", "t", clock.now() - 1ms};
  CHECK(std::string(service(passed).error().reason) == "deadline already passed");
  request now{"", "t", clock.now()};
  CHECK_FALSE(service(now).has_value());
}

TEST_CASE("deadline survives extreme deadlines without overflow", "[core][deadline]") {
  keel::manual_clock clock(keel::manual_clock::time_point(1s));
  auto service = keel::pipeline(keel::deadline(1ms, clock)).bind(echo_tenant);
  request far_future{"", "t", keel::manual_clock::time_point::max()};
  CHECK(service(far_future).has_value());
  request far_past{"", "t", keel::manual_clock::time_point::min()};
  CHECK(service(far_past).error().code == keel::errc::deadline_exceeded);
}

TEST_CASE("deadline reads optional deadlines and custom projections", "[core][deadline]") {
  keel::manual_clock clock;
  struct optional_request {
    std::optional<keel::manual_clock::time_point> deadline;
  };
  auto service =
      keel::pipeline(keel::deadline(10ms, clock)).bind([](optional_request&) -> keel::result<int> { return 1; });
  optional_request none;
  CHECK(service(none).has_value());  // no deadline: nothing to enforce
  optional_request late{clock.now()};
  CHECK_FALSE(service(late).has_value());

  struct renamed {
    keel::manual_clock::time_point expires_at;
  };
  auto custom = keel::pipeline(keel::deadline(
                                   0ms, [](renamed& r) { return r.expires_at; }, clock))
                    .bind([](renamed&) -> keel::result<int> { return 2; });
  renamed fresh{clock.now() + 1s};
  CHECK(custom(fresh).has_value());
}

TEST_CASE("deadline rejects a negative expected service time at construction", "[core][deadline]") {
  keel::manual_clock clock;
  CHECK_THROWS_WITH(keel::deadline(-1ms, clock), "keel::deadline: expected_service_time must not be negative");
  CHECK_THROWS_AS(keel::deadline(-1ms, clock), keel::config_error);
}

TEST_CASE("fallback replaces rejections from below", "[core][fallback]") {
  int fallbacks = 0;
  auto degrade = keel::fallback([&](request&, const keel::rejection& why) -> keel::result<std::string> {
    ++fallbacks;
    return std::string("cached:") + keel::to_string(why.code);
  });
  auto service = keel::pipeline(degrade).bind([](request& r) -> keel::result<std::string> {
    if (r.tenant.empty()) return keel::reject(keel::errc::circuit_open);
    return r.tenant;
  });
  request served{"", "acme"};
  CHECK(*service(served) == "acme");
  CHECK(fallbacks == 0);
  request refused;
  CHECK(*service(refused) == "cached:circuit_open");
  CHECK(fallbacks == 1);
}

TEST_CASE("fallback with a filter handles only the rejections it names", "[core][fallback]") {
  auto only_open = keel::fallback([](request&, const keel::rejection&) -> keel::result<int> { return 0; },
                                  [](const keel::rejection& r) { return r.code == keel::errc::circuit_open; });
  keel::errc next_code = keel::errc::circuit_open;
  auto service = keel::pipeline(only_open).bind([&](request&) -> keel::result<int> { return keel::reject(next_code); });
  request req;
  CHECK(*service(req) == 0);
  next_code = keel::errc::rate_limited;
  CHECK(service(req).error().code == keel::errc::rate_limited);
}

TEST_CASE("fallback treats an exception as an upstream failure", "[core][fallback]") {
  std::string seen;
  auto catch_all = keel::fallback([&](request&, const keel::rejection& why) -> keel::result<int> {
    seen = std::string(keel::to_string(why.code)) + "/" + why.reason;
    return -1;
  });
  auto service =
      keel::pipeline(catch_all).bind([](request&) -> keel::result<int> { throw std::runtime_error("boom"); });
  request req;
  CHECK(*service(req) == -1);
  CHECK(seen == "upstream_failure/exception");

  // A filter that declines exceptions lets them through unchanged.
  auto declining = keel::fallback([](request&, const keel::rejection&) -> keel::result<int> { return -1; },
                                  [](const keel::rejection& r) { return r.code == keel::errc::circuit_open; });
  auto strict = keel::pipeline(declining).bind([](request&) -> keel::result<int> { throw std::runtime_error("boom"); });
  CHECK_THROWS_WITH(strict(req), "boom");
}

TEST_CASE("an exception thrown by the fallback handler is not caught again", "[core][fallback]") {
  int handler_calls = 0;
  auto throwing = keel::fallback([&](request&, const keel::rejection&) -> keel::result<int> {
    ++handler_calls;
    throw std::logic_error("handler failed");
  });
  auto service =
      keel::pipeline(throwing).bind([](request&) -> keel::result<int> { return keel::reject(keel::errc::overloaded); });
  request req;
  CHECK_THROWS_WITH(service(req), "handler failed");
  CHECK(handler_calls == 1);
}
