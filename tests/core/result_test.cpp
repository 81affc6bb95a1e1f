#include <keel/core/error.hpp>
#include <keel/core/result.hpp>

#include <catch.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <system_error>

using namespace std::chrono_literals;

TEST_CASE("errc is a std::error_code enum with a keel category", "[core][error]") {
  std::error_code ec = keel::errc::rate_limited;
  CHECK(ec.category().name() == std::string("keel"));
  CHECK(ec.message() == "rate limited");
  CHECK(ec == keel::errc::rate_limited);
  CHECK(ec != keel::errc::queue_full);
  CHECK(static_cast<bool>(ec));  // no code is zero: every errc reads as an error
  CHECK(std::error_code(keel::errc::upstream_failure).message() == "upstream failure");
  CHECK(keel::error_category().message(999) == "unknown keel error");
}

TEST_CASE("every errc has a name, a message and an HTTP status", "[core][error]") {
  for (int i = 1; i <= static_cast<int>(keel::errc::upstream_failure); ++i) {
    const auto e = static_cast<keel::errc>(i);
    CHECK(std::string(keel::to_string(e)) != "unknown");
    CHECK(keel::error_category().message(i) != "unknown keel error");
    const int status = keel::http_status(e);
    CHECK(status >= 400);
    CHECK(status < 600);
  }
  CHECK(keel::http_status(keel::errc::unauthenticated) == 401);
  CHECK(keel::http_status(keel::errc::rate_limited) == 429);
  CHECK(keel::http_status(keel::errc::circuit_open) == 503);
  CHECK(keel::http_status(keel::errc::queue_full) == 503);
  CHECK(keel::http_status(keel::errc::deadline_exceeded) == 504);
}

TEST_CASE("reject builds rejections with and without retry_after", "[core][error]") {
  const auto plain = keel::reject(keel::errc::queue_full);
  CHECK(plain.code == keel::errc::queue_full);
  CHECK_FALSE(plain.retry_after.has_value());
  CHECK(plain.reason == nullptr);

  const auto timed = keel::reject(keel::errc::rate_limited, 250ms);
  REQUIRE(timed.retry_after.has_value());
  CHECK(*timed.retry_after == 250ms);

  const auto explained = keel::reject(keel::errc::invalid_argument, "cost above burst");
  CHECK(std::string(explained.reason) == "cost above burst");
}

TEST_CASE("retry_after_seconds rounds up for a Retry-After header", "[core][error]") {
  CHECK_FALSE(keel::retry_after_seconds(keel::reject(keel::errc::queue_full)).has_value());
  CHECK(keel::retry_after_seconds(keel::reject(keel::errc::rate_limited, 250ms)) == 1);
  CHECK(keel::retry_after_seconds(keel::reject(keel::errc::rate_limited, 1s)) == 1);
  CHECK(keel::retry_after_seconds(keel::reject(keel::errc::rate_limited, 1001ms)) == 2);
  CHECK(keel::retry_after_seconds(keel::reject(keel::errc::rate_limited, 0ns)) == 1);
  CHECK(keel::retry_after_seconds(keel::reject(keel::errc::rate_limited, std::chrono::nanoseconds::max())) ==
        std::chrono::nanoseconds::max().count() / 1'000'000'000 + 1);
}

TEST_CASE("result holds a value or a rejection", "[core][result]") {
  keel::result<int> ok = 42;
  REQUIRE(ok.has_value());
  CHECK(static_cast<bool>(ok));
  CHECK(*ok == 42);
  CHECK(ok.value() == 42);
  CHECK(ok.value_or(7) == 42);

  keel::result<int> no = keel::reject(keel::errc::circuit_open, 2s);
  REQUIRE_FALSE(no.has_value());
  CHECK(no.error().code == keel::errc::circuit_open);
  CHECK(no.error().retry_after == std::chrono::nanoseconds(2s));
  CHECK(no.value_or(7) == 7);
  CHECK_THROWS_AS(no.value(), keel::rejected_error);
  try {
    (void)no.value();
  } catch (const keel::rejected_error& e) {
    CHECK(e.code() == keel::errc::circuit_open);
    CHECK(e.rejection().retry_after == std::chrono::nanoseconds(2s));
  }
}

TEST_CASE("result works with move-only and non-default-constructible values", "[core][result]") {
  keel::result<std::unique_ptr<int>> owned = std::make_unique<int>(5);
  REQUIRE(owned);
  std::unique_ptr<int> taken = *std::move(owned);
  CHECK(*taken == 5);

  struct no_default {
    explicit no_default(int v) : value(v) {}
    int value;
  };
  keel::result<no_default> r(std::in_place, 3);
  CHECK(r->value == 3);
  keel::result<no_default> rejected = keel::reject(keel::errc::overloaded);
  CHECK_FALSE(rejected);

  keel::result<std::string> s = "text";
  CHECK(*s == "text");
  CHECK(std::move(s).value_or("other") == "text");
}

TEST_CASE("result compares by value and by rejection", "[core][result]") {
  CHECK(keel::result<int>(1) == keel::result<int>(1));
  CHECK(keel::result<int>(1) != keel::result<int>(2));
  CHECK(keel::result<int>(keel::reject(keel::errc::queue_full)) ==
        keel::result<int>(keel::reject(keel::errc::queue_full)));
  CHECK(keel::result<int>(keel::reject(keel::errc::queue_full)) != keel::result<int>(1));
}

TEST_CASE("result<void> is success or a rejection", "[core][result]") {
  keel::result<void> ok;
  CHECK(ok.has_value());
  CHECK_NOTHROW(ok.value());

  keel::result<void> no = keel::reject(keel::errc::unauthenticated);
  CHECK_FALSE(no);
  CHECK(no.error().code == keel::errc::unauthenticated);
  CHECK_THROWS_AS(no.value(), keel::rejected_error);
  CHECK(ok == keel::result<void>{});
  CHECK(no != ok);
}

TEST_CASE("is_result_v recognises results", "[core][result]") {
  STATIC_REQUIRE(keel::is_result_v<keel::result<int>>);
  STATIC_REQUIRE(keel::is_result_v<keel::result<void>>);
  STATIC_REQUIRE_FALSE(keel::is_result_v<int>);
}
