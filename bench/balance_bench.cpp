// balance/keel/<strategy>/pick_<n>: one pick plus one record (the whole life
// of a call as the balancer sees it) over n nodes, beside what a user writes
// without keel: a std::mutex around a std::vector with a round-robin index
// (balance/mutex_vector/round_robin/pick_<n>) or a least-connections scan
// (balance/mutex_vector/least_conn/pick_<n>). Run at 1 and 2 threads sharing
// one balancer. Target: under 100 ns per pick+record. The balancer runs on its
// default clock, keel::tsc_clock; balance/keel_steady_clock/*: the
// latency-aware strategies on std::chrono::steady_clock instead.
//
// balance/keel/snapshot_read vs balance/atomic_shared_ptr/snapshot_read: what
// it costs a reader to hold the current node-set snapshot, keel's striped
// epoch cell against std::atomic<std::shared_ptr> (libstdc++ 12: a lock bit
// and a reference count on one shared word).
#include <keel/balance/affinity.hpp>
#include <keel/balance/balancer.hpp>
#include <keel/balance/detail/snapshot_cell.hpp>
#include <keel/balance/least_request.hpp>
#include <keel/balance/load_report.hpp>
#include <keel/balance/peak_ewma.hpp>
#include <keel/balance/recommended.hpp>
#include <keel/balance/round_robin.hpp>
#include <keel/core/tsc_clock.hpp>

#include "fixed_iterations.hpp"

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct gpu {
  std::uint32_t index = 0;
};

struct request {
  std::uint64_t key = 0;
};

struct key_of {
  std::uint64_t operator()(const request& r) const noexcept { return r.key; }
};

template <class Strategy>
Strategy make_strategy() {
  if constexpr (std::is_same_v<Strategy, keel::bounded_load_hash<key_of>>) {
    return Strategy(key_of{});
  } else {
    return Strategy();
  }
}

template <class Strategy, int Nodes, class Clock>
keel::balancer<gpu, Strategy, keel::outlier_detector, Clock>& shared_balancer() {
  static auto* lb = [] {
    auto* b = new keel::balancer<gpu, Strategy, keel::outlier_detector, Clock>({}, make_strategy<Strategy>());
    for (int i = 0; i < Nodes; ++i) b->add(gpu{static_cast<std::uint32_t>(i)}, 1.0 + i % 4);
    return b;
  }();
  return *lb;
}

template <class Strategy, int Nodes, class Clock = typename keel::balancer<gpu, Strategy>::clock_type>
void keel_pick(benchmark::State& state) {
  auto& lb = shared_balancer<Strategy, Nodes, Clock>();
  request req{static_cast<std::uint64_t>(state.thread_index()) * 7919};
  for (auto _ : state) {
    ++req.key;
    auto lease = lb.pick(req);
    benchmark::DoNotOptimize(lease);
    lease->success(std::chrono::microseconds(900));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// The baseline a user would write: one mutex, one vector.
template <int Nodes>
struct mutex_vector {
  std::mutex m;
  std::vector<gpu> nodes;
  std::vector<int> active;
  std::size_t next = 0;
  mutex_vector() {
    for (int i = 0; i < Nodes; ++i) nodes.push_back(gpu{static_cast<std::uint32_t>(i)});
    active.assign(Nodes, 0);
  }
  static mutex_vector& shared() {
    static mutex_vector instance;
    return instance;
  }
};

template <int Nodes>
void mutex_round_robin(benchmark::State& state) {
  auto& b = mutex_vector<Nodes>::shared();
  for (auto _ : state) {
    std::size_t picked;
    {
      std::lock_guard lock(b.m);
      picked = b.next++ % b.nodes.size();
      ++b.active[picked];
    }
    benchmark::DoNotOptimize(b.nodes[picked]);
    std::lock_guard lock(b.m);  // record: the call is over
    --b.active[picked];
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

template <int Nodes>
void mutex_least_conn(benchmark::State& state) {
  auto& b = mutex_vector<Nodes>::shared();
  for (auto _ : state) {
    std::size_t picked = 0;
    {
      std::lock_guard lock(b.m);
      const std::size_t start = b.next++ % b.nodes.size();  // rotate ties
      picked = start;
      for (std::size_t k = 0; k < b.nodes.size(); ++k) {
        const std::size_t i = (start + k) % b.nodes.size();
        if (b.active[i] < b.active[picked]) picked = i;
      }
      ++b.active[picked];
    }
    benchmark::DoNotOptimize(b.nodes[picked]);
    std::lock_guard lock(b.m);
    --b.active[picked];
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

struct payload {
  std::vector<int> nodes = std::vector<int>(8, 1);
};

void keel_snapshot_read(benchmark::State& state) {
  static keel::detail::snapshot_cell<payload> cell(std::make_unique<payload>(), 1);
  for (auto _ : state) {
    const auto g = cell.read();
    benchmark::DoNotOptimize(g->nodes.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

#if defined(__cpp_lib_atomic_shared_ptr)
void atomic_shared_ptr_snapshot_read(benchmark::State& state) {
  static std::atomic<std::shared_ptr<const payload>> cell{std::make_shared<const payload>()};
  for (auto _ : state) {
    const auto p = cell.load(std::memory_order_acquire);
    benchmark::DoNotOptimize(p->nodes.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
#endif

void both_thread_counts(benchmark::internal::Benchmark* b) {
  keel_bench::fixed_iterations(b);
  b->Threads(1)->Threads(2)->UseRealTime();
}

using affinity = keel::bounded_load_hash<key_of>;

}  // namespace

#define KEEL_BALANCE_BENCH(strategy, name)                                                            \
  BENCHMARK(keel_pick<strategy, 8>)->Name("balance/keel/" name "/pick_8")->Apply(both_thread_counts); \
  BENCHMARK(keel_pick<strategy, 64>)->Name("balance/keel/" name "/pick_64")->Apply(both_thread_counts)

KEEL_BALANCE_BENCH(keel::round_robin, "round_robin");
KEEL_BALANCE_BENCH(keel::smooth_weighted_round_robin, "smooth_wrr");
KEEL_BALANCE_BENCH(keel::edf_round_robin, "edf");
KEEL_BALANCE_BENCH(keel::p2c_least_request, "p2c_least_request");
KEEL_BALANCE_BENCH(keel::peak_ewma, "peak_ewma");
KEEL_BALANCE_BENCH(keel::load_report_weights<>, "load_report");
KEEL_BALANCE_BENCH(affinity, "affinity");
KEEL_BALANCE_BENCH(keel::recommended, "recommended");
// The latency-aware strategies read the clock at every pick: ~10 ns on the
// default keel::tsc_clock, 20-30 ns for steady_clock::now() on a VM.
BENCHMARK(keel_pick<keel::peak_ewma, 64, std::chrono::steady_clock>)
    ->Name("balance/keel_steady_clock/peak_ewma/pick_64")
    ->Apply(both_thread_counts);
BENCHMARK(keel_pick<keel::recommended, 64, std::chrono::steady_clock>)
    ->Name("balance/keel_steady_clock/recommended/pick_64")
    ->Apply(both_thread_counts);
BENCHMARK(mutex_round_robin<8>)->Name("balance/mutex_vector/round_robin/pick_8")->Apply(both_thread_counts);
BENCHMARK(mutex_round_robin<64>)->Name("balance/mutex_vector/round_robin/pick_64")->Apply(both_thread_counts);
BENCHMARK(mutex_least_conn<8>)->Name("balance/mutex_vector/least_conn/pick_8")->Apply(both_thread_counts);
BENCHMARK(mutex_least_conn<64>)->Name("balance/mutex_vector/least_conn/pick_64")->Apply(both_thread_counts);
BENCHMARK(keel_snapshot_read)->Name("balance/keel/snapshot_read")->Apply(both_thread_counts);
#if defined(__cpp_lib_atomic_shared_ptr)
BENCHMARK(atomic_shared_ptr_snapshot_read)->Name("balance/atomic_shared_ptr/snapshot_read")->Apply(both_thread_counts);
#endif
