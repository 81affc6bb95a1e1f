// queue/<impl>/<scenario>: keel::mpmc_queue beside the queues a C++ service
// would otherwise use, all bounded at 4096 items of a uint64_t payload
// (trivially copyable, so Boost.Lockfree can take part).
//
//   impl:      keel, moodycamel (ConcurrentQueue, try_enqueue into 4096
//              preallocated slots), boost_lockfree (queue, bounded_push),
//              tbb_bounded (concurrent_bounded_queue), mutex_deque
//              (std::mutex + std::deque, the baseline a user writes).
//   scenario:  spsc       1 producer thread + 1 consumer thread
//              mpmc_2x2   2 threads that each push then pop (2 producers and
//                         2 consumers on a 2-core machine)
//              mpmc_2p2c  4 threads: 2 that only push, 2 that only pop (no
//                         thread finds its own items, so keel's home lanes
//                         give it nothing; 4 threads share the 2 cores)
//              push_pop_1t one thread, push then pop: the uncontended fast
//                         path, for callgrind instructions/op
//              blocking_pingpong  a round trip through two queues with
//                         blocking pops (keel; mutex_condvar as the baseline)
//              idle_pop_cpu       CPU time a consumer burns while blocked for
//                         1 s on an empty queue (keel sleeps; spin_try_pop is
//                         the busy-polling wait of rigtorp/atomic_queue)
//
// Items/s come from SetItemsProcessed with real time. Non-blocking peers are
// driven by the same spin helper (pause, then yield every 64 failures).
#include <keel/queue/mpmc_queue.hpp>

#include "fixed_iterations.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#if KEEL_BENCH_HAVE_MOODYCAMEL
#include <concurrentqueue.h>
#endif
#if KEEL_BENCH_HAVE_BOOST
#include <boost/lockfree/queue.hpp>
#endif
#if KEEL_BENCH_HAVE_TBB
#include <tbb/concurrent_queue.h>
#endif

namespace {

using payload = std::uint64_t;
constexpr std::size_t capacity = 4096;

// --- one interface over every queue ------------------------------------------

/// Lanes == 0: keel's default (one lane per hardware thread); 1: a single
/// FIFO for every producer.
template <std::size_t Lanes>
struct keel_lanes_queue {
  keel::mpmc_queue<payload> q{capacity, keel::queue_lanes{Lanes}};
  bool try_push(payload v) { return q.try_push(v).has_value(); }
  bool try_pop(payload& v) {
    auto r = q.try_pop();
    if (!r) return false;
    v = *r;
    return true;
  }
};

struct mutex_deque {
  std::mutex m;
  std::deque<payload> d;
  bool try_push(payload v) {
    std::lock_guard<std::mutex> lock(m);
    if (d.size() >= capacity) return false;
    d.push_back(v);
    return true;
  }
  bool try_pop(payload& v) {
    std::lock_guard<std::mutex> lock(m);
    if (d.empty()) return false;
    v = d.front();
    d.pop_front();
    return true;
  }
};

#if KEEL_BENCH_HAVE_MOODYCAMEL
struct moodycamel_queue {
  moodycamel::ConcurrentQueue<payload> q{capacity};
  bool try_push(payload v) { return q.try_enqueue(v); }
  bool try_pop(payload& v) { return q.try_dequeue(v); }
};
#endif

#if KEEL_BENCH_HAVE_BOOST
struct boost_queue {
  boost::lockfree::queue<payload> q{capacity};
  bool try_push(payload v) { return q.bounded_push(v); }
  bool try_pop(payload& v) { return q.pop(v); }
};
#endif

#if KEEL_BENCH_HAVE_TBB
struct tbb_queue {
  tbb::concurrent_bounded_queue<payload> q;
  tbb_queue() { q.set_capacity(static_cast<std::ptrdiff_t>(capacity)); }
  bool try_push(payload v) { return q.try_push(v); }
  bool try_pop(payload& v) { return q.try_pop(v); }
};
#endif

/// Spins politely: pause, and let the other thread run every 64 failures
/// (on a 2-core VM a pure spin can starve the thread it waits for).
inline void backoff(unsigned& failures) {
  if (++failures % 64 == 0) {
    std::this_thread::yield();
  } else {
    keel::detail::cpu_relax();
  }
}

template <class Q>
void push_spin(Q& q, payload v) {
  unsigned failures = 0;
  while (!q.try_push(v)) backoff(failures);
}

template <class Q>
payload pop_spin(Q& q) {
  payload v = 0;
  unsigned failures = 0;
  while (!q.try_pop(v)) backoff(failures);
  return v;
}

/// The queue shared by a multi-threaded benchmark: thread 0 creates it before
/// the timing loop and destroys it after; Google Benchmark's start/stop
/// barriers order that against the other threads.
template <class Q>
std::unique_ptr<Q>& shared_queue() {
  static std::unique_ptr<Q> q;
  return q;
}

// --- scenarios -----------------------------------------------------------------

/// spsc (2 threads) and mpmc_2p2c (4): even threads only push, odd ones only pop.
template <class Q>
void producers_consumers(benchmark::State& state) {
  if (state.thread_index() == 0) shared_queue<Q>() = std::make_unique<Q>();
  const bool producer = state.thread_index() % 2 == 0;
  payload sum = 0;
  for (auto _ : state) {
    Q& q = *shared_queue<Q>();
    if (producer) {
      push_spin(q, 1);
    } else {
      sum += pop_spin(q);
    }
  }
  benchmark::DoNotOptimize(sum);
  if (!producer) state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  if (state.thread_index() == 0) shared_queue<Q>().reset();
}

template <class Q>
void mpmc_2x2(benchmark::State& state) {
  if (state.thread_index() == 0) shared_queue<Q>() = std::make_unique<Q>();
  payload sum = 0;
  for (auto _ : state) {
    Q& q = *shared_queue<Q>();
    push_spin(q, 1);
    sum += pop_spin(q);
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  if (state.thread_index() == 0) shared_queue<Q>().reset();
}

template <class Q>
void push_pop_1t(benchmark::State& state) {
  Q q;
  payload v = 0;
  for (auto _ : state) {
    q.try_push(v);
    q.try_pop(v);
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// Round trip: this thread pushes to `there` and blocks on `back`; an echo
// thread blocks on `there` and pushes to `back`. Both sleep when they wait.
void keel_blocking_pingpong(benchmark::State& state) {
  keel::mpmc_queue<payload> there(capacity);
  keel::mpmc_queue<payload> back(capacity);
  std::thread echo([&] {
    while (auto v = there.pop()) (void)back.push(*v);
  });
  for (auto _ : state) {
    (void)there.push(1);
    benchmark::DoNotOptimize(back.pop());
  }
  there.close();
  echo.join();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

/// The blocking queue a user writes by hand: mutex, deque, condition variable.
struct condvar_queue {
  std::mutex m;
  std::condition_variable cv;
  std::deque<payload> d;
  bool closed = false;
  void push(payload v) {
    {
      std::lock_guard<std::mutex> lock(m);
      d.push_back(v);
    }
    cv.notify_one();
  }
  std::optional<payload> pop() {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return closed || !d.empty(); });
    if (d.empty()) return std::nullopt;
    const payload v = d.front();
    d.pop_front();
    return v;
  }
  void close() {
    {
      std::lock_guard<std::mutex> lock(m);
      closed = true;
    }
    cv.notify_all();
  }
};

void mutex_condvar_blocking_pingpong(benchmark::State& state) {
  condvar_queue there;
  condvar_queue back;
  std::thread echo([&] {
    while (auto v = there.pop()) back.push(*v);
  });
  for (auto _ : state) {
    there.push(1);
    benchmark::DoNotOptimize(back.pop());
  }
  there.close();
  echo.join();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// --- idle CPU ------------------------------------------------------------------

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// Runs `wait_idle` on its own thread against an empty queue for 1 s of wall
/// time and reports that thread's CPU time as the counter cpu_ms.
template <class WaitIdle>
void idle_cpu(benchmark::State& state, WaitIdle wait_idle) {
  for (auto _ : state) {
    double cpu = 0;
    std::thread consumer([&] {
      const double start = thread_cpu_seconds();
      wait_idle(std::chrono::steady_clock::now() + std::chrono::seconds(1));
      cpu = thread_cpu_seconds() - start;
    });
    consumer.join();
    state.counters["cpu_ms"] = cpu * 1e3;
  }
}

void keel_idle_pop_cpu(benchmark::State& state) {
  keel::mpmc_queue<payload> q(capacity);
  idle_cpu(state, [&](std::chrono::steady_clock::time_point deadline) { benchmark::DoNotOptimize(q.pop(deadline)); });
}

void spin_try_pop_idle_pop_cpu(benchmark::State& state) {
  // What a blocking pop of rigtorp::MPMCQueue or atomic_queue does while the
  // queue is empty: poll with a pause instruction, never sleep.
  keel::mpmc_queue<payload> q(capacity);
  idle_cpu(state, [&](std::chrono::steady_clock::time_point deadline) {
    while (std::chrono::steady_clock::now() < deadline) {
      for (int i = 0; i < 64; ++i) {
        if (q.try_pop()) return;
        keel::detail::cpu_relax();
      }
    }
  });
}

void threads2(benchmark::internal::Benchmark* b) { b->Threads(2)->UseRealTime(); }
void threads4(benchmark::internal::Benchmark* b) { b->Threads(4)->UseRealTime(); }

}  // namespace

#define KEEL_QUEUE_BENCH(impl, Q)                                                                \
  BENCHMARK_TEMPLATE(producers_consumers, Q)->Name("queue/" impl "/spsc")->Apply(threads2);      \
  BENCHMARK_TEMPLATE(mpmc_2x2, Q)->Name("queue/" impl "/mpmc_2x2")->Apply(threads2);             \
  BENCHMARK_TEMPLATE(producers_consumers, Q)->Name("queue/" impl "/mpmc_2p2c")->Apply(threads4); \
  BENCHMARK_TEMPLATE(push_pop_1t, Q)->Name("queue/" impl "/push_pop_1t")->Apply(keel_bench::fixed_iterations)

KEEL_QUEUE_BENCH("keel", keel_lanes_queue<0>);
KEEL_QUEUE_BENCH("keel_one_lane", keel_lanes_queue<1>);
#if KEEL_BENCH_HAVE_MOODYCAMEL
KEEL_QUEUE_BENCH("moodycamel", moodycamel_queue);
#endif
#if KEEL_BENCH_HAVE_BOOST
KEEL_QUEUE_BENCH("boost_lockfree", boost_queue);
#endif
#if KEEL_BENCH_HAVE_TBB
KEEL_QUEUE_BENCH("tbb_bounded", tbb_queue);
#endif
KEEL_QUEUE_BENCH("mutex_deque", mutex_deque);

BENCHMARK(keel_blocking_pingpong)->Name("queue/keel/blocking_pingpong")->UseRealTime();
BENCHMARK(mutex_condvar_blocking_pingpong)->Name("queue/mutex_condvar/blocking_pingpong")->UseRealTime();
BENCHMARK(keel_idle_pop_cpu)->Name("queue/keel/idle_pop_cpu")->Iterations(1)->Repetitions(1)->UseRealTime();
BENCHMARK(spin_try_pop_idle_pop_cpu)
    ->Name("queue/spin_try_pop/idle_pop_cpu")
    ->Iterations(1)
    ->Repetitions(1)
    ->UseRealTime();
