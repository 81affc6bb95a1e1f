// Node-set changes while other threads pick, run under ThreadSanitizer in CI.
//
// What the balancer guarantees, and what these tests check on every pick:
//  1. a pick that starts after remove(id) or drain(id) returned never yields id;
//  2. a lease stays usable (node(), record) after its node was removed;
//  3. every node's outstanding count equals its live leases: when all leases
//     are gone, every count (and the stats total) is exactly zero;
//  4. a snapshot is never freed while a reader holds it (ASan/TSan would see it).
#include <keel/balance/affinity.hpp>
#include <keel/balance/balancer.hpp>
#include <keel/balance/detail/snapshot_cell.hpp>
#include <keel/balance/least_request.hpp>
#include <keel/balance/load_report.hpp>
#include <keel/balance/peak_ewma.hpp>
#include <keel/balance/round_robin.hpp>

#include <catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct node {
  std::uint64_t serial = 0;
};

struct request {
  std::uint64_t key = 0;
};

struct key_of_request {
  std::uint64_t operator()(const request& r) const noexcept { return r.key; }
};

constexpr int max_nodes = 4096;

// Writer-side log of completed removals and drains: index[id] is the
// sequence number at which the change completed (0 = never).
struct change_log {
  std::vector<std::atomic<std::uint64_t>> removed = std::vector<std::atomic<std::uint64_t>>(max_nodes);
  std::vector<std::atomic<std::uint64_t>> drained = std::vector<std::atomic<std::uint64_t>>(max_nodes);
  std::atomic<std::uint64_t> completed{0};

  void mark(std::vector<std::atomic<std::uint64_t>>& which, keel::node_id id) {
    const std::uint64_t seq = completed.load(std::memory_order_relaxed) + 1;
    which[id.value].store(seq, std::memory_order_relaxed);
    completed.store(seq, std::memory_order_release);
  }
};

template <class Strategy>
Strategy make_strategy() {
  if constexpr (std::is_same_v<Strategy, keel::bounded_load_hash<key_of_request>>) {
    return Strategy(key_of_request{});
  } else {
    return Strategy();
  }
}

template <class Strategy>
void churn(int readers, int picks_per_reader) {
  keel::balancer_config cfg;
  cfg.slow_start_window = 2ms;  // rebuilds of weighted cycles while picks run
  cfg.max_ejection_percent = 50;
  keel::outlier_detector::config h;
  h.consecutive_failures = 3;
  h.base_ejection_time = 200us;  // ejections begin and end during the run
  h.max_ejection_time = 1ms;
  keel::balancer<node, Strategy> lb(cfg, make_strategy<Strategy>(), h);
  change_log log;

  std::vector<keel::node_id> live;
  for (int i = 0; i < 8; ++i) live.push_back(lb.add(node{static_cast<std::uint64_t>(i)}, 1.0 + i % 3));

  std::atomic<bool> stop{false};
  std::atomic<long> violations{0};
  std::atomic<long> served{0};

  auto reader = [&](int seed) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(seed));
    std::deque<typename decltype(lb)::lease> held;
    for (int i = 0; i < picks_per_reader; ++i) {
      const std::uint64_t before = log.completed.load(std::memory_order_acquire);
      request req{rng() % 64};
      auto l = lb.pick(req);
      if (!l) continue;
      const auto id = l->id().value;
      const auto removed = log.removed[id].load(std::memory_order_relaxed);
      const auto drained = log.drained[id].load(std::memory_order_relaxed);
      if ((removed != 0 && removed <= before) || (drained != 0 && drained <= before)) violations.fetch_add(1);
      served.fetch_add(1, std::memory_order_relaxed);
      if constexpr (requires { l->report_load(keel::load_report{}); }) {
        l->report_load(keel::load_report{100.0 + double(id % 5), 0, 0.5});
      }
      held.push_back(std::move(*l));
      if (held.size() > 6 || rng() % 2) {
        auto& oldest = held.front();
        (void)oldest.node().serial;  // valid even if removed meanwhile
        switch (rng() % 4) {
          case 0: oldest.failure(); break;
          case 1: break;  // dropped
          default: oldest.success(std::chrono::microseconds(rng() % 500)); break;
        }
        held.pop_front();
      }
    }
  };

  auto writer = [&] {
    std::mt19937_64 rng(99);
    std::uint64_t serial = 100;
    while (!stop.load(std::memory_order_relaxed)) {
      const auto op = rng() % 6;
      if ((op == 0 || live.size() < 3) && serial < max_nodes - 10) {
        live.push_back(lb.add(node{serial++}, 1.0 + double(rng() % 4)));
      } else if (op == 1 && live.size() > 1) {
        const auto k = rng() % live.size();
        const auto id = live[k];
        if (!lb.remove(id)) violations.fetch_add(1);  // Catch assertions are not thread-safe
        log.mark(log.removed, id);
        live.erase(live.begin() + static_cast<long>(k));
      } else if (op == 2 && live.size() > 2) {
        const auto k = rng() % live.size();
        const auto id = live[k];
        if (!lb.drain(id)) violations.fetch_add(1);
        log.mark(log.drained, id);
        live.erase(live.begin() + static_cast<long>(k));  // drained nodes stay in the set, unpicked
      } else if (op == 3 && !live.empty()) {
        lb.set_weight(live[rng() % live.size()], 0.5 + double(rng() % 4));
      } else {
        std::this_thread::yield();
      }
    }
  };

  std::thread w(writer);
  std::vector<std::thread> rs;
  for (int r = 0; r < readers; ++r) rs.emplace_back(reader, r + 1);
  for (auto& t : rs) t.join();
  stop.store(true);
  w.join();

  CHECK(violations.load() == 0);
  CHECK(served.load() > 0);
  // Every lease is gone: every count is back to zero.
  const auto st = lb.stats();
  CHECK(st.outstanding == 0);
  lb.for_each_node([](const node&, const keel::node_info& i) { CHECK(i.outstanding == 0); });
  CHECK(st.nodes == live.size());
}

struct canary {
  static constexpr std::uint64_t alive = 0x600dcafe;
  std::uint64_t magic = alive;
  std::uint64_t generation = 0;
  ~canary() { magic = 0; }
};

}  // namespace

TEMPLATE_TEST_CASE("node-set changes during concurrent picks keep every guarantee", "[balance][concurrency]",
                   keel::p2c_least_request, keel::peak_ewma, keel::edf_round_robin, keel::smooth_weighted_round_robin,
                   keel::round_robin, keel::load_report_weights<>, keel::bounded_load_hash<key_of_request>) {
  churn<TestType>(3, 6000);
}

TEST_CASE("snapshot cell: readers never see a freed or torn snapshot", "[balance][concurrency]") {
  keel::detail::snapshot_cell<canary> cell(std::make_unique<canary>(), 1);
  std::atomic<bool> stop{false};
  std::atomic<long> bad{0};
  std::atomic<std::uint64_t> published{0};
  auto reader = [&] {
    std::uint64_t last = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      const std::uint64_t at_least = published.load(std::memory_order_acquire);
      const auto g = cell.read();
      if (g->magic != canary::alive) bad.fetch_add(1);
      // Generations only move forward, and a read sees at least what was
      // published before it started.
      if (g->generation < last || g->generation < at_least) bad.fetch_add(1);
      last = g->generation;
    }
  };
  std::vector<std::thread> rs;
  for (int i = 0; i < 3; ++i) rs.emplace_back(reader);
  for (std::uint64_t gen = 1; gen <= 3000; ++gen) {
    auto next = std::make_unique<canary>();
    next->generation = gen;
    auto old = cell.publish(std::move(next));
    published.store(gen, std::memory_order_release);
    REQUIRE(old->magic == canary::alive);
    REQUIRE(old->generation == gen - 1);
  }  // each old snapshot is destroyed here, after its grace period
  stop.store(true);
  for (auto& t : rs) t.join();
  CHECK(bad.load() == 0);
}
