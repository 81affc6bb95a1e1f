// The simulated world the gateway demo runs in: an event loop over simulated
// time, a heterogeneous GPU fleet and a vector store that fails midway.
//
// Nothing here is keel: it is the stand-in for the network, the GPUs and the
// dependencies a real gateway talks to. Time is a keel::manual_clock that the
// event loop moves from event to event, so the keel components under test see
// exactly the simulated time, and a run is deterministic for a given seed.
#pragma once

#include <keel/core/clock.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace demo {

using sim_clock = keel::manual_clock;
using time_point = sim_clock::time_point;
using duration = sim_clock::duration;
using namespace std::chrono_literals;

inline double seconds(duration d) { return std::chrono::duration<double>(d).count(); }
inline duration from_seconds(double s) {
  return std::chrono::duration_cast<duration>(std::chrono::duration<double>(s));
}

/// A discrete-event loop: callbacks scheduled at simulated times, run in time
/// order (ties in scheduling order), each seeing the clock at its own time.
class event_loop {
 public:
  explicit event_loop(sim_clock c) : clock_(std::move(c)) {}

  const sim_clock& time() const { return clock_; }
  time_point now() const { return clock_.now(); }

  void at(time_point t, std::function<void()> fn) {
    events_.push(event{std::max(t, now()), next_seq_++, std::move(fn)});
  }
  void after(duration d, std::function<void()> fn) { at(now() + d, std::move(fn)); }

  /// Runs every event up to and including `end`, then leaves the clock at `end`.
  void run_until(time_point end) {
    while (!events_.empty() && events_.top().when <= end) {
      event e = events_.top();
      events_.pop();
      clock_.set(e.when);
      e.fn();
    }
    clock_.set(end);
  }

 private:
  struct event {
    time_point when;
    std::uint64_t seq;
    std::function<void()> fn;
    bool operator>(const event& o) const { return when != o.when ? when > o.when : seq > o.seq; }
  };
  sim_clock clock_;
  std::priority_queue<event, std::vector<event>, std::greater<>> events_;
  std::uint64_t next_seq_ = 0;
};

/// One GPU replica: `slots` requests run at once (continuous batching); more
/// wait in the node's own FIFO. Work is in "A10-seconds": a node of speed 3
/// finishes 3 A10-seconds of work per second.
struct gpu_node {
  std::string name;
  double speed = 1;
  int slots = 8;
  time_point provisioned;  // billing starts here (a loading GPU is paid for)
  time_point ready_at;     // serves from here
  std::optional<time_point> retired;
  int running = 0;
  std::deque<std::pair<double, std::function<void(time_point)>>> waiting;
  std::uint64_t calls = 0;

  bool ready(time_point now) const { return !retired && now >= ready_at; }
};

/// The GPU fleet. Nodes are only ever appended (ids stay valid); a retired node
/// finishes what it has and takes nothing new.
class gpu_fleet {
 public:
  explicit gpu_fleet(event_loop& loop) : loop_(&loop) {}

  std::size_t add(std::string name, double speed, int slots, duration startup) {
    auto n = std::make_unique<gpu_node>();
    n->name = std::move(name);
    n->speed = speed;
    n->slots = slots;
    n->provisioned = loop_->now();
    n->ready_at = loop_->now() + startup;
    nodes_.push_back(std::move(n));
    return nodes_.size() - 1;
  }

  void retire(std::size_t id) {
    if (!nodes_[id]->retired) nodes_[id]->retired = loop_->now();
  }

  /// Runs `work` A10-seconds on node `id`; `done(finish_time)` is called when it completes.
  void run(std::size_t id, double work, std::function<void(time_point)> done) {
    gpu_node& n = *nodes_[id];
    ++n.calls;
    ++calls_;
    if (n.running < n.slots) {
      start(id, work, std::move(done));
    } else {
      n.waiting.emplace_back(work, std::move(done));
    }
  }

  gpu_node& node(std::size_t id) { return *nodes_[id]; }
  const gpu_node& node(std::size_t id) const { return *nodes_[id]; }
  std::size_t size() const { return nodes_.size(); }
  std::uint64_t calls() const { return calls_; }

  std::size_t ready_count() const {
    return static_cast<std::size_t>(
        std::count_if(nodes_.begin(), nodes_.end(), [&](const auto& n) { return n->ready(loop_->now()); }));
  }
  std::size_t provisioned_count() const {
    return static_cast<std::size_t>(
        std::count_if(nodes_.begin(), nodes_.end(), [](const auto& n) { return !n->retired; }));
  }

  /// GPU-hours billed so far: every node from provisioning to retirement (or now).
  double gpu_hours() const {
    double total = 0;
    for (const auto& n : nodes_) total += seconds(n->retired.value_or(loop_->now()) - n->provisioned);
    return total / 3600.0;
  }

 private:
  void start(std::size_t id, double work, std::function<void(time_point)> done) {
    gpu_node& n = *nodes_[id];
    ++n.running;
    loop_->after(from_seconds(work / n.speed), [this, id, done = std::move(done)] {
      gpu_node& node = *nodes_[id];
      --node.running;
      done(loop_->now());
      if (!node.waiting.empty() && node.running < node.slots) {
        auto next = std::move(node.waiting.front());
        node.waiting.pop_front();
        start(id, next.first, std::move(next.second));
      }
    });
  }

  event_loop* loop_;
  std::vector<std::unique_ptr<gpu_node>> nodes_;
  std::uint64_t calls_ = 0;
};

/// The vector store that /generate retrieves context from. Normally it answers
/// in `latency`; during the outage window every call hangs until the caller's
/// timeout and fails — the way a saturated store looks from outside.
class vector_store {
 public:
  vector_store(event_loop& loop, time_point outage_start, time_point outage_end)
      : loop_(&loop), outage_start_(outage_start), outage_end_(outage_end) {}

  /// Calls `done(ok)` after the store answers or the timeout passes.
  void query(duration timeout, std::function<void(bool ok)> done) {
    const time_point now = loop_->now();
    const bool failing = now >= outage_start_ && now < outage_end_;
    ++calls_;
    if (failing) {
      ++failed_;
      waited_on_failures_ += timeout;
      loop_->after(timeout, [done = std::move(done)] { done(false); });
    } else {
      loop_->after(latency, [done = std::move(done)] { done(true); });
    }
  }

  static constexpr duration latency = 15ms;

  std::uint64_t calls() const { return calls_; }
  std::uint64_t failed() const { return failed_; }
  /// Caller time spent waiting on calls that then failed.
  duration waited_on_failures() const { return waited_on_failures_; }

 private:
  event_loop* loop_;
  time_point outage_start_, outage_end_;
  std::uint64_t calls_ = 0, failed_ = 0;
  duration waited_on_failures_{};
};

}  // namespace demo
