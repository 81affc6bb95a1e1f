// Concurrency: threads hammer one gcra_limiter while another moves a manual
// clock. Whatever the interleaving, the cost charged never exceeds what the
// limit allows over the time that passed, burst + rate × elapsed — and since
// the clock only moves once the limiter is saturated, no refill is lost, so a
// final drain brings the total to exactly that. Run under ThreadSanitizer in
// CI (the tsan preset).
#include <keel/core/clock.hpp>
#include <keel/limit/gcra.hpp>

#include <catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("concurrent callers never get more than burst + rate x elapsed", "[limit][gcra][stress]") {
  constexpr int workers = 4;
  constexpr std::int64_t burst = 64;
  constexpr std::int64_t interval_ns = 1'000'000;  // 1000 per second
  keel::manual_clock clock;
  keel::gcra_limiter<keel::manual_clock> limiter{keel::rate_limit::per_second(1000, burst), clock};

  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> admitted_cost{0};
  std::atomic<std::int64_t> rejected{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937 rng(static_cast<unsigned>(w + 1));
      std::uniform_int_distribution<std::int64_t> cost(1, 8);
      while (!stop.load(std::memory_order_relaxed)) {
        const std::int64_t c = cost(rng);
        if (w % 2 == 0) {
          if (limiter.try_acquire(c)) {
            admitted_cost.fetch_add(c, std::memory_order_relaxed);
          } else {
            rejected.fetch_add(1, std::memory_order_relaxed);
            std::this_thread::yield();  // let the clock thread run (2-core machines)
          }
        } else if (auto p = limiter.reserve(c)) {  // reserve, then settle at or under the estimate
          const std::int64_t actual = c / 2;
          p->settle(actual);
          admitted_cost.fetch_add(actual, std::memory_order_relaxed);
        } else {
          rejected.fetch_add(1, std::memory_order_relaxed);
          std::this_thread::yield();
        }
      }
    });
  }
  // The clock advances in uneven steps (sometimes standing still), each once
  // the workers have hit the limit again.
  std::mt19937 rng(99);
  std::uniform_int_distribution<std::int64_t> step(0, 3 * interval_ns);
  std::int64_t elapsed = 0;
  for (int i = 0; i < 3000; ++i) {
    const std::int64_t seen = rejected.load();
    while (rejected.load() == seen) std::this_thread::yield();
    const std::int64_t dt = step(rng);
    clock.advance(std::chrono::nanoseconds(dt));
    elapsed += dt;
  }
  stop = true;
  for (auto& t : threads) t.join();

  const std::int64_t allowed = burst + elapsed / interval_ns;
  INFO("charged " << admitted_cost.load() << " of " << allowed << " allowed; " << rejected.load() << " rejections");
  CHECK(admitted_cost.load() <= allowed);
  std::int64_t rest = 0;
  while (limiter.try_acquire()) ++rest;
  CHECK(admitted_cost.load() + rest == allowed);
}
