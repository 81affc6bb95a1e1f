// An in-process worker pool that sizes itself from its own queue: every
// second it reads the queue depth, the busy workers and the arrival rate,
// asks keel::autoscaler how many workers to run, and starts or stops
// workers. New workers take 2 s to start (loading a model, warming a cache).
//
// Time is simulated (keel::manual_clock, 100 ms steps) so the run is
// deterministic and instant; a real pool calls the same recommend() from its
// own timer with std::chrono::steady_clock::now().
#include <keel/core/clock.hpp>
#include <keel/scale/autoscaler.hpp>
#include <keel/scale/metric_source.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>

using namespace std::chrono_literals;

namespace {

constexpr int jobs_per_worker_per_second = 10;  // one job per 100 ms step
constexpr auto startup = 2s;

// Jobs per second offered to the pool: calm, a burst, calm again, idle.
int offered_rate(std::chrono::milliseconds t) {
  if (t < 20s) return 20;
  if (t < 35s) return 90;
  if (t < 60s) return 15;
  return 0;
}

struct worker_pool {
  std::deque<std::int64_t> queue;                  // queued job ids (anything with size() works)
  std::deque<std::chrono::milliseconds> starting;  // when each starting worker is ready
  int ready = 0;
  int busy = 0;  // workers that ran a job in the last step

  int size() const { return ready + static_cast<int>(starting.size()); }

  void resize(int n, std::chrono::milliseconds now) {
    while (size() < n) starting.push_back(now + startup);
    while (size() > n) {
      if (!starting.empty())
        starting.pop_back();  // cancel a start before stopping a worker
      else
        --ready;
    }
  }
};

}  // namespace

int main() {
  keel::autoscaler_config cfg;
  cfg.min_replicas = 0;  // idle → no workers (scale to zero after the cooldown)
  cfg.max_replicas = 16;
  cfg.metrics = {
      // Demand as a rate, at what a worker can do, plus square-root staffing:
      // R + 0.75·√R workers for a load of R (keel's recommended setting; a
      // small pool keeps a larger share in reserve than a large one).
      {.name = "arrival_rate",
       .target = jobs_per_worker_per_second,
       .kind = keel::metric_kind::total,
       .headroom = 0.75},
      // A backlog adds the workers that drain it within 2 s.
      {.name = "queue_depth",
       .target = 2.0 * jobs_per_worker_per_second,
       .kind = keel::metric_kind::total,
       .backlog = true},
  };
  cfg.scale_up.tolerance = 0.05;  // add a worker for 5% more demand, not HPA's 10%
  // An in-process pool reacts in seconds, not minutes: shorter windows and periods.
  cfg.scale_up.policies = {keel::scaling_policy::percent(100, 1s), keel::scaling_policy::pods(4, 1s)};
  cfg.scale_down.stabilization_window = 10s;
  cfg.scale_down.policies = {keel::scaling_policy::percent(50, 1s)};
  cfg.scale_to_zero.cooldown = 10s;
  cfg.panic.enabled = true;
  cfg.cold_start.startup_delay = startup;
  keel::autoscaler<keel::manual_clock> scaler{cfg};
  keel::rate_meter<keel::manual_clock> arrivals;

  worker_pool pool;
  pool.ready = 2;  // warm at the start
  std::int64_t next_job = 0;
  std::int64_t accepted = 0;
  std::int64_t done = 0;

  std::printf("   t  rate  queue  workers(ready)  ->  desired  reason\n");
  for (auto t = 0ms; t <= 80s; t += 100ms) {
    while (!pool.starting.empty() && pool.starting.front() <= t) {
      pool.starting.pop_front();
      ++pool.ready;
    }
    // Arrivals of this step (deterministic: rate / 10 per 100 ms).
    for (int i = 0; i < offered_rate(t) / 10; ++i, ++accepted) pool.queue.push_back(next_job++);
    // Each ready worker runs one job per step.
    pool.busy = 0;
    for (int w = 0; w < pool.ready && !pool.queue.empty(); ++w, ++pool.busy, ++done) pool.queue.pop_front();
    if (t % 1s != 0ms) continue;

    const auto now = keel::manual_clock::time_point(t);
    const std::array<keel::metric_sample, 2> readings{arrivals.sample(now, static_cast<std::uint64_t>(accepted)),
                                                      keel::queue_depth(pool.queue)};
    const keel::scale_decision d =
        scaler.recommend(now, {.current = pool.size(), .ready = pool.ready, .metrics = readings});
    if (d.replicas != pool.size() || t % 10s == 0ms) {
      std::printf("%4llds  %4d  %5zu  %7d(%2d)      ->  %7d  %s%s\n", static_cast<long long>(t / 1s), offered_rate(t),
                  pool.queue.size(), pool.size(), pool.ready, d.replicas, keel::to_string(d.reason),
                  d.panicking ? " (panic)" : "");
    }
    pool.resize(d.replicas, t);
  }
  std::printf("jobs accepted %lld, done %lld, still queued %zu; workers at the end: %d\n",
              static_cast<long long>(accepted), static_cast<long long>(done), pool.queue.size(), pool.size());
  return pool.queue.empty() && done == accepted ? 0 : 1;
}
