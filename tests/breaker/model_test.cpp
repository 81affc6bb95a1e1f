// The whole breaker against a plain single-threaded reference state machine
// on seeded random sequences of admissions, records, drops, clock steps and
// operator commands: same admissions, same states, same window counts.
#include <keel/breaker/circuit_breaker.hpp>

#include <catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using keel::breaker_state;

namespace {

// The reference: the documented rules, written the obvious way.
struct reference {
  keel::breaker_config cfg;
  std::size_t n;
  breaker_state state = breaker_state::closed;
  std::deque<std::pair<bool, bool>> window{};  // (failed, slow)
  std::uint64_t gen = 0;
  std::int64_t open_until = 0;
  std::uint32_t opens = 0;
  std::uint32_t issued = 0, recorded = 0, failed = 0, slow = 0;

  struct ticket {
    std::uint64_t gen;
    bool probe;
  };

  bool over(std::size_t calls, std::size_t f, std::size_t s) const {
    return static_cast<double>(f) * 100 >= cfg.failure_rate_threshold * static_cast<double>(calls) ||
           static_cast<double>(s) * 100 >= cfg.slow_call_rate_threshold * static_cast<double>(calls);
  }
  void enter(breaker_state to, std::int64_t now) {
    if (to == breaker_state::open) {
      opens = state == breaker_state::half_open ? opens + 1 : 1;
      const double d = std::min(static_cast<double>(cfg.max_open_duration.count()),
                                static_cast<double>(cfg.open_duration.count()) *
                                    std::pow(cfg.backoff_multiplier, static_cast<double>(opens - 1)));
      open_until = now + static_cast<std::int64_t>(d);
    } else if (to == breaker_state::half_open) {
      issued = recorded = failed = slow = 0;
    } else if (to == breaker_state::closed || to == breaker_state::disabled) {
      window.clear();
      opens = 0;
    }
    state = to;
    ++gen;
  }
  std::optional<ticket> acquire(std::int64_t now) {
    if (state == breaker_state::closed || state == breaker_state::disabled) return ticket{gen, false};
    if (state == breaker_state::forced_open) return std::nullopt;
    if (state == breaker_state::open) {
      if (now < open_until) return std::nullopt;
      enter(breaker_state::half_open, now);
    }
    if (issued >= cfg.half_open_probes) return std::nullopt;
    ++issued;
    return ticket{gen, true};
  }
  void record(const ticket& t, bool f, std::chrono::nanoseconds latency, std::int64_t now) {
    if (t.gen != gen) return;
    const bool s = latency > cfg.slow_call_duration;
    if (t.probe) {
      ++recorded, failed += f ? 1 : 0, slow += s ? 1 : 0;
      if (recorded == cfg.half_open_probes)
        enter(over(recorded, failed, slow) ? breaker_state::open : breaker_state::closed, now);
      return;
    }
    window.emplace_back(f, s);
    if (window.size() > n) window.pop_front();
    const auto fails =
        static_cast<std::size_t>(std::count_if(window.begin(), window.end(), [](auto& c) { return c.first; }));
    const auto slows =
        static_cast<std::size_t>(std::count_if(window.begin(), window.end(), [](auto& c) { return c.second; }));
    if (state == breaker_state::closed && window.size() >= cfg.minimum_calls && over(window.size(), fails, slows))
      enter(breaker_state::open, now);
  }
  void ignore(const ticket& t) {
    if (t.probe && t.gen == gen && state == breaker_state::half_open && issued > 0) --issued;
  }
  void command(breaker_state to, std::int64_t now) {
    if (state == to && to != breaker_state::closed) return;
    enter(to, now);
  }
};

}  // namespace

TEST_CASE("the breaker agrees with the reference state machine on random sequences", "[breaker][model]") {
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    std::mt19937_64 rng(seed);
    keel::breaker_config cfg;
    cfg.failure_rate_threshold = static_cast<double>(20 + rng() % 70);
    cfg.slow_call_rate_threshold = static_cast<double>(30 + rng() % 70);
    cfg.slow_call_duration = 100ms;
    const auto n = static_cast<std::uint32_t>(2 + rng() % 12);
    cfg.minimum_calls = static_cast<std::uint32_t>(1 + rng() % n);
    cfg.open_duration = 1s;
    cfg.half_open_probes = static_cast<std::uint32_t>(1 + rng() % 4);
    cfg.backoff_multiplier = 1.5;
    cfg.max_open_duration = 5s;
    cfg.jitter = 0;
    keel::manual_clock clock;
    keel::circuit_breaker<keel::count_window, keel::manual_clock> b{cfg, keel::count_window{n}, clock};
    reference ref{cfg, n};

    using permit = decltype(b)::permit;
    std::vector<std::pair<permit, reference::ticket>> held;
    const int fail_in_100 = static_cast<int>(rng() % 60);
    for (int op = 0; op < 3000; ++op) {
      const auto now = keel::detail::now_ns(clock);
      const auto k = rng() % 100;
      INFO("seed " << seed << " op " << op << " kind " << k);
      if (k < 45) {
        auto p = b.try_acquire();
        auto t = ref.acquire(now);
        REQUIRE(static_cast<bool>(p) == t.has_value());
        if (p) held.emplace_back(std::move(*p), *t);
      } else if (k < 80 && !held.empty()) {
        const auto i = static_cast<std::size_t>(rng() % held.size());
        const bool f = static_cast<int>(rng() % 100) < fail_in_100;
        const auto latency = rng() % 4 == 0 ? 150ms : 10ms;
        f ? held[i].first.failure(latency) : held[i].first.success(latency);
        ref.record(held[i].second, f, latency, now);
        held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
      } else if (k < 88 && !held.empty()) {
        const auto i = static_cast<std::size_t>(rng() % held.size());
        ref.ignore(held[i].second);
        if (rng() % 2) held[i].first.ignore();
        held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));  // else dropped unrecorded
      } else if (k < 98) {
        clock.advance(std::chrono::milliseconds(rng() % 1500));
      } else {
        const breaker_state cmds[] = {breaker_state::closed, breaker_state::forced_open, breaker_state::disabled};
        const breaker_state to = cmds[rng() % 3];
        to == breaker_state::closed ? b.reset() : to == breaker_state::forced_open ? b.force_open() : b.disable();
        ref.command(to, now);
      }
      REQUIRE(b.state() == ref.state);
      const auto s = b.stats();
      REQUIRE(s.calls == ref.window.size());
      REQUIRE(s.consecutive_opens == ref.opens);
    }
  }
}
