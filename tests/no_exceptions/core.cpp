// Core vocabulary without exceptions: rejection paths are values and work.
#include "check.hpp"

#include <keel/keel.hpp>

#include <chrono>

using keel_noexcept::check;

namespace {
struct request {
  int user = 0;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};
}  // namespace

KEEL_NOEXCEPT_TEST("core: pipeline, authenticate, deadline, fallback, result") {
  auto stack = keel::pipeline(
      keel::fallback([](request&, const keel::rejection&) -> keel::result<int> { return -1; },
                     [](const keel::rejection& r) { return r.code == keel::errc::upstream_failure; }),
      keel::authenticate([](request& r) { return r.user != 0; }), keel::deadline(std::chrono::milliseconds(5)));
  auto service = stack.bind([](request& r) -> keel::result<int> {
    if (r.user == 7) return keel::reject(keel::errc::upstream_failure);
    return r.user * 2;
  });

  request anonymous{};
  request alice{21};
  request broken{7};
  request late{3, std::chrono::steady_clock::now()};

  const auto a = service(anonymous);
  check(!a && a.error().code == keel::errc::unauthenticated, "anonymous is unauthenticated");
  const auto b = service(alice);
  check(b && *b == 42, "alice is served");
  const auto c = service(broken);
  check(c && *c == -1, "upstream failure falls back");
  const auto d = service(late);
  check(!d && d.error().code == keel::errc::deadline_exceeded, "late request is refused");
  check(keel::result<int>(keel::reject(keel::errc::queue_full)).value_or(9) == 9, "value_or on a rejection");
}

KEEL_NOEXCEPT_TEST("core: tsc_clock moves forward") {
  const auto start = keel::tsc_clock::now();
  auto later = start;
  while (later == start) later = keel::tsc_clock::now();
  check(later > start, "tsc_clock advances");
}
