// limit/denial_of_wallet — can a greedy tenant spend more than its token budget?
//
// Six tenants share an LLM gateway, each with a budget of B tokens per minute.
// Five are honest: Poisson arrivals using about 60% of the budget, actual
// output uniform in [100, 1 000]; three send max_tokens = 1 000 (a tight
// estimate), two send 4 000 (a loose client default: reserve-then-settle holds
// four to forty times the actual use while a call runs). One is greedy: it keeps up to
// 256 streams open, each asking for and generating max_tokens = 4 000. Output
// streams at 50 tokens/s, so a call lasts actual/50 seconds and its usage is
// known only when it ends. Three ways to enforce the budget:
//
//  (a) post-hoc fixed window — what LiteLLM and Envoy AI Gateway do: admit
//      while this minute's recorded usage is under B; add the actual tokens to
//      the usage when the response completes.
//  (b) post-hoc GCRA — keel's limiter fed the same way (reserve 0, settle the
//      actual): debt is remembered across minutes, but admission still ignores
//      what is in flight.
//  (c) keel reserve-then-settle — reserve max_tokens at admission, settle the
//      actual at completion (refund the unused part).
//
// Tokens billed are the actual tokens of every admitted call. The budget over
// the run is B × minutes; GCRA also allows its burst (B) once. Deterministic:
// everything derives from --seed.
#include "sim/sim.hpp"

#include <keel/core/clock.hpp>
#include <keel/limit/keyed.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace {

using namespace std::chrono_literals;
using ns = std::chrono::nanoseconds;

constexpr std::int64_t budget = 100'000;  // tokens per minute, per tenant
constexpr int honest_tenants = 5;
constexpr int greedy = honest_tenants;  // tenant id of the greedy one
constexpr std::int64_t greedy_streams = 256;
constexpr std::int64_t greedy_tokens = 4'000;
constexpr std::int64_t honest_max_tokens = 1'000;
constexpr double tokens_per_second = 50;
constexpr ns tick = 100ms;

enum class scheme { fixed_window, post_hoc_gcra, reserve_settle };

const char* name(scheme s) {
  switch (s) {
    case scheme::fixed_window: return "post-hoc fixed window (LiteLLM, Envoy AI GW)";
    case scheme::post_hoc_gcra: return "post-hoc GCRA (keel, settle only)";
    case scheme::reserve_settle: return "keel reserve-then-settle GCRA";
  }
  return "";
}

constexpr int loose_from = 3;  // honest tenants 3 and 4 send the loose max_tokens
constexpr std::int64_t loose_max_tokens = 4'000;

struct honest_group {
  std::int64_t requests = 0;
  std::int64_t rejected = 0;
  std::int64_t billed = 0;
};

struct outcome {
  std::int64_t greedy_billed = 0;
  std::int64_t greedy_worst_minute = 0;  ///< most tokens completed in any 60 s window
  honest_group tight;                    ///< max_tokens 1 000
  honest_group loose;                    ///< max_tokens 4 000
};

// The budget enforcement under test, behind one interface.
class enforcer {
 public:
  virtual ~enforcer() = default;
  virtual bool admit(int tenant, std::int64_t max_tokens, std::size_t call) = 0;
  virtual void complete(int tenant, std::int64_t actual, std::size_t call) = 0;
};

class fixed_window final : public enforcer {
 public:
  explicit fixed_window(const keel::manual_clock& c) : clock_(c) {}
  bool admit(int tenant, std::int64_t, std::size_t) override { return usage_[{tenant, minute()}] < budget; }
  void complete(int tenant, std::int64_t actual, std::size_t) override { usage_[{tenant, minute()}] += actual; }

 private:
  std::int64_t minute() const { return clock_.now().time_since_epoch() / 1min; }
  keel::manual_clock clock_;
  std::map<std::pair<int, std::int64_t>, std::int64_t> usage_;
};

class keel_gcra final : public enforcer {
 public:
  keel_gcra(const keel::manual_clock& c, bool reserve_ahead)
      : limiter_(keel::rate_limit::per_minute(budget, budget), {}, c), reserve_ahead_(reserve_ahead) {}
  bool admit(int tenant, std::int64_t max_tokens, std::size_t call) override {
    auto p = limiter_.reserve(tenant, reserve_ahead_ ? max_tokens : 0);
    if (!p) return false;
    open_.emplace(call, std::move(*p));
    return true;
  }
  void complete(int, std::int64_t actual, std::size_t call) override {
    auto it = open_.find(call);
    it->second.settle(actual);
    open_.erase(it);
  }

 private:
  keel::keyed_limiter<int, keel::manual_clock> limiter_;
  bool reserve_ahead_;
  std::map<std::size_t, keel::keyed_limiter<int, keel::manual_clock>::reservation> open_;
};

struct completion {
  std::int64_t at_ns;
  int tenant;
  std::int64_t tokens;
  std::size_t call;
  bool operator>(const completion& o) const { return at_ns > o.at_ns || (at_ns == o.at_ns && call > o.call); }
};

outcome run(scheme s, std::int64_t minutes, std::uint64_t seed, double honest_load) {
  keel::manual_clock clock;
  std::unique_ptr<enforcer> e;
  if (s == scheme::fixed_window) {
    e = std::make_unique<fixed_window>(clock);
  } else {
    e = std::make_unique<keel_gcra>(clock, s == scheme::reserve_settle);
  }
  std::mt19937_64 rng(seed);
  // Honest arrivals: `honest_load` of the budget at a mean of 550 tokens per call.
  const double honest_per_tick = honest_load * budget / 550.0 / 600.0;
  std::poisson_distribution<int> arrivals(honest_per_tick);
  std::uniform_int_distribution<std::int64_t> honest_tokens(100, honest_max_tokens);

  std::priority_queue<completion, std::vector<completion>, std::greater<>> running;
  std::vector<std::int64_t> greedy_per_second(static_cast<std::size_t>(minutes * 60 + 200), 0);
  std::int64_t greedy_open = 0;
  std::size_t calls = 0;
  outcome out;
  auto start = [&](int tenant, std::int64_t tokens) {
    const auto duration = static_cast<std::int64_t>(static_cast<double>(tokens) / tokens_per_second * 1e9);
    running.push({clock.now().time_since_epoch().count() + duration, tenant, tokens, calls});
  };
  const std::int64_t ticks = minutes * 600;
  for (std::int64_t t = 0; t < ticks; ++t) {
    // Completions due by now are billed (and settled) first.
    while (!running.empty() && running.top().at_ns <= clock.now().time_since_epoch().count()) {
      const completion c = running.top();
      running.pop();
      e->complete(c.tenant, c.tokens, c.call);
      if (c.tenant == greedy) {
        --greedy_open;
        greedy_per_second[static_cast<std::size_t>(c.at_ns / 1'000'000'000)] += c.tokens;
      }
    }
    for (int h = 0; h < honest_tenants; ++h) {
      honest_group& g = h < loose_from ? out.tight : out.loose;
      for (int n = arrivals(rng); n > 0; --n) {
        ++g.requests;
        const std::int64_t tokens = honest_tokens(rng);
        if (e->admit(h, h < loose_from ? honest_max_tokens : loose_max_tokens, ++calls)) {
          g.billed += tokens;
          start(h, tokens);
        } else {
          ++g.rejected;
        }
      }
    }
    while (greedy_open < greedy_streams && e->admit(greedy, greedy_tokens, ++calls)) {
      ++greedy_open;
      out.greedy_billed += greedy_tokens;
      start(greedy, greedy_tokens);
    }
    clock.advance(tick);
  }
  std::int64_t window = 0;
  for (std::size_t i = 0; i < greedy_per_second.size(); ++i) {
    window += greedy_per_second[i];
    if (i >= 60) window -= greedy_per_second[i - 60];
    out.greedy_worst_minute = std::max(out.greedy_worst_minute, window);
  }
  return out;
}

bool denial_of_wallet(const keel_sim::options& opt, keel_sim::report& report) {
  const std::int64_t minutes = opt.quick ? 5 : 30;
  const double allowed = static_cast<double>(budget * minutes);
  char title[128];
  std::snprintf(title, sizeof title, "greedy tenant: tokens billed against a budget of %lld tokens/min over %lld min",
                static_cast<long long>(budget), static_cast<long long>(minutes));
  keel_sim::table greedy_table{
      title, {"scheme", "tokens billed", "budget", "overshoot", "worst minute / budget"}, {}, {}};
  keel_sim::table honest_table{"honest tenants beside the greedy one",
                               {"scheme", "load", "max_tokens", "requests", "rejected", "rejected %", "usage / budget"},
                               {},
                               {}};
  bool ok = true;
  for (scheme s : {scheme::fixed_window, scheme::post_hoc_gcra, scheme::reserve_settle}) {
    const outcome o = run(s, minutes, opt.seed, 0.6);
    greedy_table.row({name(s), o.greedy_billed, budget * minutes, static_cast<double>(o.greedy_billed) / allowed,
                      static_cast<double>(o.greedy_worst_minute) / static_cast<double>(budget)});
    // GCRA with reservations can never bill more than the rate over the run
    // plus one burst: anything else is a bug.
    if (s == scheme::reserve_settle && o.greedy_billed > budget * minutes + budget) ok = false;
  }
  for (double load : {0.6, 0.9}) {
    for (scheme s : {scheme::fixed_window, scheme::post_hoc_gcra, scheme::reserve_settle}) {
      const outcome o = run(s, minutes, opt.seed, load);
      for (const auto& [label, g, tenants] :
           {std::tuple{"1 000", o.tight, loose_from}, std::tuple{"4 000", o.loose, honest_tenants - loose_from}}) {
        honest_table.row({name(s), load, label, g.requests, g.rejected,
                          100.0 * static_cast<double>(g.rejected) / static_cast<double>(g.requests),
                          static_cast<double>(g.billed) / (allowed * tenants)});
      }
    }
  }
  greedy_table.note =
      "overshoot = billed / (budget x minutes); reserve-then-settle is bounded by (minutes + 1) / minutes";
  honest_table.note = "a rejected honest request is the price of a scheme; usage / budget is what got through";
  report.tables.push_back(std::move(greedy_table));
  report.tables.push_back(std::move(honest_table));
  return ok;
}

const keel_sim::registration reg{"limit/denial_of_wallet",
                                 "token budgets: post-hoc fixed window vs post-hoc GCRA vs keel reserve-then-settle",
                                 denial_of_wallet};

}  // namespace
