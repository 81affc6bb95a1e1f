// breaker/<impl>/<scenario>: the closed-state cost of admitting a call and
// recording its outcome, keel vs the breaker a user would write without it.
//
//   keel       circuit_breaker<count_window>: admission is one atomic load, the
//              record a lock-free ring update
//   keel_time  circuit_breaker<time_window>: the record takes the window's mutex
//              and reads steady_clock
//   keel_time_cached  the same with a clock that reads a time cached in an atomic
//              (what an event loop that stamps time once per iteration provides):
//              separates the window's lock from the cost of reading steady_clock,
//              which is a slow path on some VMs
//   mutex      the straightforward implementation: one std::mutex around a
//              Resilience4j-style state machine and ring buffer, taken to admit
//              and again to record
//
// Scenarios: closed_acquire_record — every call succeeds fast (a healthy
// dependency, the common case); closed_mixed — one call in eight fails (below
// the 50% threshold, so the circuit stays closed, but the window's totals
// change on most records). Target: keel ≥ 3× mutex at 2 threads.
//
//   keel_bench_breaker --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
//   KEEL_BENCH_ITERATIONS=1000000 valgrind --tool=callgrind --toggle-collect='*keel_closed*'
//       keel_bench_breaker --benchmark_filter='breaker/keel/closed_acquire_record$'
#include <keel/breaker/circuit_breaker.hpp>

#include "fixed_iterations.hpp"

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <vector>

namespace {

using namespace std::chrono_literals;

// What a user writes without keel: Resilience4j's CLOSED/OPEN/HALF_OPEN
// machine and a ring of the last N outcomes with running counts, all under
// one mutex.
class mutex_breaker {
 public:
  enum class state { closed, open, half_open };

  explicit mutex_breaker(std::size_t size) : ring_(size, 0) {}

  bool try_acquire() {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (state_ == state::closed) return true;
    const auto now = std::chrono::steady_clock::now();
    if (state_ == state::open && now >= open_until_) state_ = state::half_open, probes_ = 0;
    if (state_ == state::half_open && probes_ < half_open_probes) return ++probes_, true;
    return false;
  }

  void record(bool failed, std::chrono::nanoseconds latency) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const std::uint8_t code = static_cast<std::uint8_t>(1 | (failed ? 2 : 0) | (latency > slow_ ? 4 : 0));
    std::uint8_t& slot = ring_[head_];
    head_ = (head_ + 1) % ring_.size();
    if (slot != 0) {
      --calls_;
      failures_ -= (slot >> 1) & 1;
      slow_calls_ -= (slot >> 2) & 1;
    }
    slot = code;
    ++calls_;
    failures_ += (code >> 1) & 1;
    slow_calls_ += (code >> 2) & 1;
    if (state_ == state::closed && calls_ >= minimum_calls &&
        (failures_ * 100 >= 50 * calls_ || slow_calls_ * 100 >= 80 * calls_)) {
      state_ = state::open;
      open_until_ = std::chrono::steady_clock::now() + 10s;
    }
  }

 private:
  static constexpr std::size_t minimum_calls = 20;
  static constexpr int half_open_probes = 5;
  static constexpr std::chrono::nanoseconds slow_ = 10s;

  std::mutex mutex_;
  state state_ = state::closed;
  std::vector<std::uint8_t> ring_;
  std::size_t head_ = 0;
  std::size_t calls_ = 0, failures_ = 0, slow_calls_ = 0;
  int probes_ = 0;
  std::chrono::steady_clock::time_point open_until_{};
};

constexpr auto latency = 3ms;  // a fast vector-store call

// A clock an event loop ticks once per iteration; here it is never ticked.
struct cached_clock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<cached_clock, duration>;
  static std::atomic<std::int64_t>& now_ns() {
    static std::atomic<std::int64_t> t{0};
    return t;
  }
  time_point now() const noexcept { return time_point(duration(now_ns().load(std::memory_order_relaxed))); }
};
using cached_time_breaker = keel::circuit_breaker<keel::time_window, cached_clock>;

keel::circuit_breaker<>& shared_keel() {
  static keel::circuit_breaker<> b{keel::breaker_config{}, keel::count_window{100}};
  return b;
}
keel::circuit_breaker<keel::time_window>& shared_keel_time() {
  static keel::circuit_breaker<keel::time_window> b{keel::breaker_config{}, keel::time_window{60s, 60}};
  return b;
}
cached_time_breaker& shared_keel_cached() {
  static cached_time_breaker b{keel::breaker_config{}, keel::time_window{60s, 60}};
  return b;
}
mutex_breaker& shared_mutex() {
  static mutex_breaker b{100};
  return b;
}

[[gnu::noinline]] void keel_closed(keel::circuit_breaker<>& b, bool failed) {
  auto p = b.try_acquire();
  if (p) failed ? p->failure(latency) : p->success(latency);
}
[[gnu::noinline]] void keel_time_closed(keel::circuit_breaker<keel::time_window>& b, bool failed) {
  auto p = b.try_acquire();
  if (p) failed ? p->failure(latency) : p->success(latency);
}
[[gnu::noinline]] void keel_cached_closed(cached_time_breaker& b, bool failed) {
  auto p = b.try_acquire();
  if (p) failed ? p->failure(latency) : p->success(latency);
}
[[gnu::noinline]] void mutex_closed(mutex_breaker& b, bool failed) {
  if (b.try_acquire()) b.record(failed, latency);
}

// Fails one call in eight when `mixed`, from a per-thread counter.
template <class Breaker, void (*Call)(Breaker&, bool)>
void bench(benchmark::State& state, Breaker& b, bool mixed) {
  std::uint32_t i = 0;
  for (auto _ : state) {
    const bool failed = mixed && (++i & 7) == 0;
    Call(b, failed);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void keel_acquire_record(benchmark::State& s) { bench<keel::circuit_breaker<>, keel_closed>(s, shared_keel(), false); }
void keel_mixed(benchmark::State& s) { bench<keel::circuit_breaker<>, keel_closed>(s, shared_keel(), true); }
void keel_time_acquire_record(benchmark::State& s) {
  bench<keel::circuit_breaker<keel::time_window>, keel_time_closed>(s, shared_keel_time(), false);
}
void keel_time_mixed(benchmark::State& s) {
  bench<keel::circuit_breaker<keel::time_window>, keel_time_closed>(s, shared_keel_time(), true);
}
void keel_cached_acquire_record(benchmark::State& s) {
  bench<cached_time_breaker, keel_cached_closed>(s, shared_keel_cached(), false);
}
void keel_cached_mixed(benchmark::State& s) {
  bench<cached_time_breaker, keel_cached_closed>(s, shared_keel_cached(), true);
}
void mutex_acquire_record(benchmark::State& s) { bench<mutex_breaker, mutex_closed>(s, shared_mutex(), false); }
void mutex_mixed(benchmark::State& s) { bench<mutex_breaker, mutex_closed>(s, shared_mutex(), true); }

}  // namespace

#define KEEL_BREAKER_BENCH(fn, name)                              \
  BENCHMARK(fn)->Name(name)->Apply(keel_bench::fixed_iterations); \
  BENCHMARK(fn)->Name(name)->Threads(2)->UseRealTime()

KEEL_BREAKER_BENCH(keel_acquire_record, "breaker/keel/closed_acquire_record");
KEEL_BREAKER_BENCH(mutex_acquire_record, "breaker/mutex/closed_acquire_record");
KEEL_BREAKER_BENCH(keel_time_acquire_record, "breaker/keel_time/closed_acquire_record");
KEEL_BREAKER_BENCH(keel_cached_acquire_record, "breaker/keel_time_cached/closed_acquire_record");
KEEL_BREAKER_BENCH(keel_mixed, "breaker/keel/closed_mixed");
KEEL_BREAKER_BENCH(mutex_mixed, "breaker/mutex/closed_mixed");
KEEL_BREAKER_BENCH(keel_time_mixed, "breaker/keel_time/closed_mixed");
KEEL_BREAKER_BENCH(keel_cached_mixed, "breaker/keel_time_cached/closed_mixed");
