#include <keel/core/clock.hpp>
#include <keel/limit/all_of.hpp>
#include <keel/limit/gcra.hpp>
#include <keel/limit/keyed.hpp>

#include <catch.hpp>

#include <chrono>
#include <cstdint>
#include <string>

using namespace std::chrono_literals;
using limiter = keel::gcra_limiter<keel::manual_clock>;

namespace {
// Everything observable about a limiter now: what it would admit, and when.
struct snapshot {
  std::int64_t available;
  std::int64_t retry_ns;  // retry_after for one more than available
  friend bool operator==(const snapshot&, const snapshot&) = default;
};
template <class L>
snapshot look(L& l) {
  const auto avail = l.stats().available;
  const auto r = l.peek(avail + 1);
  return {avail, r || !r.error().retry_after ? -1 : r.error().retry_after->count()};
}
}  // namespace

TEST_CASE("reserve_all charges every limit when all admit, and settles each", "[limit][all_of]") {
  keel::manual_clock clock;
  limiter rpm{keel::rate_limit::per_minute(60, 10), clock};         // 1 request/s, burst 10
  limiter tpm{keel::rate_limit::per_minute(60'000, 5'000), clock};  // 1000 tokens/s, burst 5000
  auto p = keel::reserve_all(keel::charge(rpm, 1), keel::charge(tpm, 4'000));
  REQUIRE(p);
  CHECK(p->active());
  CHECK(rpm.stats().available == 9);
  CHECK(tpm.stats().available == 1'000);
  p->settle(1, 1'500);  // the reply used 1 500 tokens
  CHECK_FALSE(p->active());
  CHECK(rpm.stats().available == 9);
  CHECK(tpm.stats().available == 3'500);
}

TEST_CASE("a refusal by any limit leaves no partial charge and reports the longest retry_after", "[limit][all_of]") {
  keel::manual_clock clock;
  limiter rpm{keel::rate_limit::per_minute(60, 10), clock};
  limiter tpm{keel::rate_limit::per_minute(60'000, 5'000), clock};
  limiter tpd{keel::rate_limit{100'000, 6'000, 24h}, clock};  // a daily cap
  REQUIRE(tpm.try_acquire(4'000));                            // 1 000 tokens left this second
  const snapshot rpm0 = look(rpm), tpm0 = look(tpm), tpd0 = look(tpd);

  SECTION("the second limit refuses: the first is refunded") {
    const auto r = keel::reserve_all(keel::charge(rpm, 1), keel::charge(tpm, 3'000));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == keel::errc::rate_limited);
    CHECK(*r.error().retry_after == 2s);  // 2 000 tokens short at 1 000/s
  }
  SECTION("two limits refuse: the longer wait is reported") {
    REQUIRE(tpd.try_acquire(5'000));  // 1 000 left today: 3 000 more needs 2 000 × 864 ms
    const snapshot tpd1 = look(tpd);
    const auto r = keel::reserve_all(keel::charge(rpm, 1), keel::charge(tpm, 3'000), keel::charge(tpd, 3'000));
    REQUIRE_FALSE(r);
    CHECK(*r.error().retry_after == 2'000 * 864ms);
    CHECK(look(tpd) == tpd1);
    CHECK(look(rpm) == rpm0);
    CHECK(look(tpm) == tpm0);
    return;
  }
  SECTION("the last limit refuses: the first two are refunded") {
    const auto r = keel::reserve_all(keel::charge(rpm, 1), keel::charge(tpm, 500), keel::charge(tpd, 6'001));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == keel::errc::invalid_argument);  // above the daily burst: can never pass
  }
  SECTION("a cost that can never pass wins over a wait, whatever the order") {
    const auto r = keel::reserve_all(keel::charge(tpm, 3'000), keel::charge(rpm, 11));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == keel::errc::invalid_argument);
  }
  CHECK(look(rpm) == rpm0);
  CHECK(look(tpm) == tpm0);
  CHECK(look(tpd) == tpd0);
}

TEST_CASE("reserve_all works per tenant with keyed limiters, and acquire_all keeps the charge", "[limit][all_of]") {
  keel::manual_clock clock;
  keel::keyed_limiter<std::string, keel::manual_clock> rpm{keel::rate_limit::per_minute(60, 2), {}, clock};
  keel::keyed_limiter<std::string, keel::manual_clock> tpm{keel::rate_limit::per_minute(60'000, 1'000), {}, clock};
  const std::string acme = "acme";
  REQUIRE(keel::acquire_all(keel::charge(rpm[acme], 1), keel::charge(tpm[acme], 600)));
  // acme has 1 request and 400 tokens left; a 500-token call is refused by TPM
  // and its request is not counted.
  const auto r = keel::reserve_all(keel::charge(rpm[acme], 1), keel::charge(tpm[acme], 500));
  REQUIRE_FALSE(r);
  CHECK(*r.error().retry_after == 100ms);
  auto ok = keel::reserve_all(keel::charge(rpm[acme], 1), keel::charge(tpm[acme], 400));
  REQUIRE(ok);
  ok->get<1>().settle(100);  // parts settle one by one too
  CHECK(tpm.peek(acme, 300));
  CHECK_FALSE(tpm.peek(acme, 301));
  CHECK_FALSE(rpm.peek(acme, 1));  // both of acme's requests are counted
  CHECK(rpm.peek("globex", 2));    // other tenants are untouched
}
