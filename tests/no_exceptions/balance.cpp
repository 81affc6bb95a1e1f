// The balancer without exceptions: no_backend is a value, leases record, node-set changes work.
#include "check.hpp"

#include <keel/balance/balanced.hpp>
#include <keel/balance/balancer.hpp>
#include <keel/balance/round_robin.hpp>

#include <string>

using keel_noexcept::check;

namespace {
struct gpu {
  std::string name;
};
struct request {
  int id = 0;
};
}  // namespace

KEEL_NOEXCEPT_TEST("balance: pick, record, drain, no_backend, balanced terminal") {
  keel::balancer<gpu> lb;  // keel::recommended
  auto none = lb.pick();
  check(!none && none.error().code == keel::errc::no_backend, "an empty balancer has no backend");
  const auto h100 = lb.add(gpu{"h100"}, 4);
  const auto l4 = lb.add(gpu{"l4"}, 1);
  {
    auto lease = lb.pick();
    check(lease.has_value(), "a node is picked");
    check(lb.stats().outstanding == 1, "the lease counts as outstanding");
    lease->success();
  }
  check(lb.stats().outstanding == 0, "recorded: released");
  lb.drain(h100);
  for (int i = 0; i < 4; ++i) check(lb.pick()->id() == l4, "a drained node is not picked");
  lb.remove(l4);
  auto nothing = lb.pick();
  check(!nothing && nothing.error().code == keel::errc::no_backend, "only a draining node left: no backend");

  keel::balancer<gpu, keel::edf_round_robin> wrr;
  wrr.add(gpu{"a"}, 2);
  wrr.add(gpu{"b"}, 1);
  auto call = keel::balanced(wrr, [](request& r, const gpu& g) -> keel::result<int> {
    if (r.id < 0) return keel::reject(keel::errc::upstream_failure);
    return static_cast<int>(g.name.size());
  });
  request ok{1}, bad{-1};
  check(call(ok).value_or(0) == 1, "the terminal runs against the picked node");
  check(!call(bad), "a failing call is passed on");
}
