// A vector store starts timing out. The breaker sees the slow calls, opens,
// fails fast (the service answers from a cache meanwhile), probes after
// open_duration, backs off while the store is still sick, and closes once
// the probes come back healthy.
//
// Time is simulated with keel::manual_clock so the run is instant and always
// tells the same story; in a service, drop the clock arguments and the
// breaker uses std::chrono::steady_clock.
#include <keel/breaker/circuit_breaker.hpp>
#include <keel/breaker/layer.hpp>
#include <keel/core/fallback.hpp>
#include <keel/core/pipeline.hpp>

#include <chrono>
#include <cstdio>
#include <string>

using namespace std::chrono_literals;

namespace {

struct query {
  std::string text;
};

// The vector store: healthy answers in 15 ms; sick, it hangs until the
// client's 2 s timeout fires.
struct vector_store {
  keel::manual_clock clock;
  bool sick = false;
  int calls = 0;
  keel::result<std::string> operator()(query& q) {
    ++calls;
    if (sick) {
      clock.advance(2s);
      return keel::reject(keel::errc::deadline_exceeded);
    }
    clock.advance(15ms);
    return "hits for '" + q.text + "'";
  }
};

}  // namespace

int main() {
  keel::manual_clock clock;

  keel::breaker_config cfg;
  cfg.slow_call_duration = 500ms;  // a vector search over 500 ms is a timeout in the making
  cfg.minimum_calls = 10;
  cfg.open_duration = 5s;
  cfg.half_open_probes = 3;
  cfg.jitter_seed = 7;  // a fixed seed: the same backoff every run
  int transitions = 0;
  cfg.on_state_change = [&](keel::breaker_state from, keel::breaker_state to) {
    ++transitions;
    std::printf("  [t=%6.1fs] breaker %s -> %s\n",
                std::chrono::duration<double>(clock.now().time_since_epoch()).count(), keel::to_string(from),
                keel::to_string(to));
  };
  keel::circuit_breaker<keel::count_window, keel::manual_clock> breaker{cfg, keel::count_window{20}, clock};

  vector_store store{clock};
  int cached = 0;
  auto search = keel::pipeline(keel::fallback([&](query&, const keel::rejection& why) -> keel::result<std::string> {
                                 if (why.code != keel::errc::circuit_open) return why;  // a timeout is passed on
                                 ++cached;
                                 return std::string("cached hits");
                               }),
                               keel::circuit_break(breaker))
                    .bind(std::ref(store));

  auto traffic = [&](const char* phase, int n, std::chrono::milliseconds gap) {
    const int before_calls = store.calls, before_cached = cached;
    for (int i = 0; i < n; ++i) {
      query q{"reset my password"};
      (void)search(q);
      clock.advance(gap);
    }
    const auto s = breaker.stats();
    std::printf(
        "%-34s %3d requests: %3d reached the store, %3d answered from cache; %s, %u calls in window "
        "(%.0f%% failed, %.0f%% slow)\n",
        phase, n, store.calls - before_calls, cached - before_cached, keel::to_string(s.state), s.calls, s.failure_rate,
        s.slow_call_rate);
  };

  traffic("healthy", 40, 50ms);
  store.sick = true;
  traffic("store starts timing out", 40, 50ms);
  const auto r = breaker.try_acquire();
  if (!r && r.error().retry_after)
    std::printf("  fail fast: circuit_open, Retry-After %lld s\n",
                static_cast<long long>(*keel::retry_after_seconds(r.error())));
  traffic("still sick (probes fail, backoff)", 100, 100ms);
  store.sick = false;
  traffic("store recovers", 200, 100ms);

  const bool ok = breaker.state() == keel::breaker_state::closed && transitions >= 5 && cached > 0;
  std::printf("%s: %d transitions, %d requests answered from cache, final state %s\n", ok ? "ok" : "UNEXPECTED",
              transitions, cached, keel::to_string(breaker.state()));
  return ok ? 0 : 1;
}
