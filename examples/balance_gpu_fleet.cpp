// Spreading LLM completions over GPU nodes of unequal speed with keel::balancer.
//
// Two H100-class nodes serve about three times what each of four older nodes
// does. The balancer (keel::recommended: peak-EWMA latency over four
// candidates drawn by weight, with outlier ejection) learns each node's
// latency from the leases; when one node starts failing fast, it is ejected
// after five consecutive failures instead of attracting traffic by looking
// quick. A session-affinity balancer keeps a conversation on the node that
// holds its KV cache, within 25 % of the average load.
#include <keel/balance/affinity.hpp>
#include <keel/balance/balanced.hpp>
#include <keel/balance/balancer.hpp>
#include <keel/core/pipeline.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>

using namespace std::chrono_literals;

struct gpu_node {
  std::string address;
  double speed;  // relative throughput, what the weight says
  bool broken = false;
};

struct completion_request {
  std::string session;
  std::string prompt;
};

int main() {
  keel::manual_clock clock;  // a simulated clock keeps the example fast and repeatable
  keel::balancer<gpu_node, keel::recommended, keel::outlier_detector, keel::manual_clock> fleet({}, {}, {}, clock);
  fleet.add({"h100-a:8000", 3.0}, 3.0);
  fleet.add({"h100-b:8000", 3.0}, 3.0);
  const auto flaky = fleet.add({"a10-a:8000", 1.0, true}, 1.0);  // fails every call, in 1 ms
  fleet.add({"a10-b:8000", 1.0}, 1.0);
  fleet.add({"a10-c:8000", 1.0}, 1.0);
  fleet.add({"a10-d:8000", 1.0}, 1.0);

  // The call to a node: a fake model server whose latency is 300 ms / speed.
  auto complete = [&](completion_request&, const gpu_node& node) -> keel::result<std::string> {
    if (node.broken) {
      clock.advance(1ms);
      return keel::reject(keel::errc::upstream_failure);
    }
    clock.advance(std::chrono::duration_cast<std::chrono::nanoseconds>(300ms / node.speed));
    return "completion from " + node.address;
  };
  auto service = keel::pipeline().bind(keel::balanced(fleet, complete));

  std::map<std::string, int> served;
  int failed = 0;
  for (int i = 0; i < 600; ++i) {
    completion_request req{"user-" + std::to_string(i % 40), "hello"};
    auto reply = service(req);
    if (reply) {
      ++served[reply->substr(16)];
    } else {
      ++failed;
    }
  }
  // The broken node fails in 1 ms; each failure counts as a 1 s latency
  // (failure_penalty), so after a few failures it is the costliest node.
  std::printf("600 sequential calls, %d failed (all on the broken node)\n", failed);
  for (const auto& [node, n] : served) std::printf("  %-12s %3d\n", node.c_str(), n);
  std::printf("  broken node: %lld calls outstanding, ejected: %s\n", static_cast<long long>(fleet.outstanding(flaky)),
              fleet.stats().ejected ? "yes" : "no (it stopped being picked before 5 failures in a row)");

  // Affinity: same session → same node (its KV cache), within a load bound.
  auto session_key = [](const completion_request& r) { return keel::affinity_key(r.session); };
  keel::balancer<gpu_node, keel::bounded_load_hash<decltype(session_key)>> sticky({},
                                                                                  keel::bounded_load_hash(session_key));
  for (int i = 0; i < 4; ++i) sticky.add({"node-" + std::to_string(i), 1.0});
  completion_request alice{"alice", "and then?"};
  const std::string first = sticky.pick(alice)->node().address;
  bool stable = true;
  for (int turn = 0; turn < 5; ++turn) stable = stable && sticky.pick(alice)->node().address == first;
  std::printf("session alice stays on %s: %s\n", first.c_str(), stable ? "yes" : "no");
  return failed <= 10 && stable ? 0 : 1;
}
