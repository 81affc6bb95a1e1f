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
