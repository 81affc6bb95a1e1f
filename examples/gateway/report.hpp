// Prints two gateway runs side by side ({fmt}), or as JSON with --json.
#pragma once

#include "metrics.hpp"
#include "workload.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

namespace demo {

struct report_input {
  const scenario* s;
  const run_metrics* runs[2];  // naive, keel
  double wall_seconds;
};

inline std::int64_t budget_over_run(const scenario& s) {
  // What a tenant may spend over the run: the per-minute budget for every
  // minute, plus one burst of the same size (the limiter's starting allowance).
  return static_cast<std::int64_t>(static_cast<double>(s.tenant_tokens_per_minute) * (seconds(s.length) / 60.0 + 1.0));
}

inline void print_report(const report_input& in) {
  const auto& a = *in.runs[0];
  const auto& b = *in.runs[1];
  const scenario& s = *in.s;
  fmt::print("keel inference gateway demo: {:.0f} s of simulated traffic, seed {}, {:.2f} s wall time\n",
             seconds(s.length), s.seed, in.wall_seconds);
  fmt::print(
      "(traffic spike x{} at {:.0f}-{:.0f} s, vector store outage at {:.0f}-{:.0f} s, "
      "200-request embedding stampede at {:.0f} s)\n\n",
      s.spike_factor, seconds(s.spike_start.time_since_epoch()), seconds(s.spike_end.time_since_epoch()),
      seconds(s.outage_start.time_since_epoch()), seconds(s.outage_end.time_since_epoch()),
      seconds(s.stampede_at.time_since_epoch()));

  const int w = 30;
  fmt::print("{:<46}{:>{}}{:>{}}\n", "", a.gateway, w, b.gateway, w);
  auto row = [&](const std::string& label, const std::string& x, const std::string& y) {
    fmt::print("{:<46}{:>{}}{:>{}}\n", label, x, w, y, w);
  };
  auto lat = [](const std::vector<double>& v) {
    return v.empty() ? std::string("-") : fmt::format("{:.0f} / {:.0f}", percentile(v, 50), percentile(v, 99));
  };
  for (route r : {route::embed, route::generate, route::summarize}) {
    const auto& ra = a.routes.count(r) ? a.routes.at(r) : route_metrics{};
    const auto& rb = b.routes.count(r) ? b.routes.at(r) : route_metrics{};
    row(fmt::format("{} p50 / p99 latency (ms)", route_name(r)), lat(ra.latency_ms), lat(rb.latency_ms));
    if (r == route::summarize) row("  summary ready p50 / p99 (ms)", lat(ra.completion_ms), lat(rb.completion_ms));
    row("  served / rejected", fmt::format("{} / {}", ra.served, ra.rejected),
        fmt::format("{} / {}", rb.served, rb.rejected));
    if (r != route::summarize)
      row("  served after the caller's deadline", fmt::format("{}", ra.late), fmt::format("{}", rb.late));
    std::set<std::string> reasons;
    for (const auto& [k, v] : ra.outcomes) reasons.insert(k);
    for (const auto& [k, v] : rb.outcomes) reasons.insert(k);
    for (const auto& k : reasons) {
      auto count = [&](const route_metrics& m) { return m.outcomes.count(k) ? m.outcomes.at(k) : 0; };
      row(fmt::format("    {}", k), fmt::format("{}", count(ra)), fmt::format("{}", count(rb)));
    }
  }
  const std::int64_t budget = budget_over_run(s);
  auto greedy = [&](const run_metrics& m) {
    const auto it = m.tokens_billed.find(s.greedy_tenant);
    const std::int64_t t = it == m.tokens_billed.end() ? 0 : it->second;
    return fmt::format("{} ({:.1f}x)", t, static_cast<double>(t) / static_cast<double>(budget));
  };
  fmt::print("\n");
  row(fmt::format("tokens billed to greedy tenant (budget {})", budget), greedy(a), greedy(b));
  row("GPU calls", fmt::format("{}", a.gpu_calls), fmt::format("{}", b.gpu_calls));
  row("  saved by the embedding cache (hits)", fmt::format("{}", a.cache_hits), fmt::format("{}", b.cache_hits));
  row("  saved by coalescing concurrent misses", fmt::format("{}", a.coalesced), fmt::format("{}", b.coalesced));
  row("  spent on the 200-request embedding stampede", fmt::format("{}", a.stampede_gpu_calls),
      fmt::format("{}", b.stampede_gpu_calls));
  row("vector store calls / failed", fmt::format("{} / {}", a.vector_store_calls, a.vector_store_failures),
      fmt::format("{} / {}", b.vector_store_calls, b.vector_store_failures));
  row("  caller time waiting on failed calls (s)", fmt::format("{:.0f}", a.vector_store_wait_s),
      fmt::format("{:.0f}", b.vector_store_wait_s));
  row("GPU-hours", fmt::format("{:.2f}", a.gpu_hours), fmt::format("{:.2f}", b.gpu_hours));
  fmt::print("\nreplicas over time (one sample per 30 s; provisioned, including loading):\n");
  for (const run_metrics* m : in.runs) {
    std::string counts;
    for (const auto& r : m->replicas) counts += fmt::format("{:>3}", r.provisioned);
    fmt::print("  {:<8}{}\n", m->gateway, counts);
  }
}

inline void print_json(const report_input& in) {
  std::string out = "{\"runs\":[";
  for (int i = 0; i < 2; ++i) {
    const run_metrics& m = *in.runs[i];
    out += fmt::format(
        "{}{{\"gateway\":\"{}\",\"gpu_calls\":{},\"cache_hits\":{},\"coalesced\":{},\"stampede_gpu_calls\":{},"
        "\"vector_store_calls\":{},\"vector_store_failures\":{},\"vector_store_wait_s\":{:.3f},"
        "\"gpu_hours\":{:.4f},\"tokens_billed\":{{",
        i ? "," : "", m.gateway, m.gpu_calls, m.cache_hits, m.coalesced, m.stampede_gpu_calls, m.vector_store_calls,
        m.vector_store_failures, m.vector_store_wait_s, m.gpu_hours);
    bool first = true;
    for (const auto& [tenant, t] : m.tokens_billed) {
      out += fmt::format("{}\"{}\":{}", first ? "" : ",", tenant, t);
      first = false;
    }
    out += "},\"routes\":{";
    first = true;
    for (const auto& [r, rm] : m.routes) {
      out += fmt::format(
          "{}\"{}\":{{\"served\":{},\"rejected\":{},\"degraded\":{},\"late\":{},\"p50_ms\":{:.3f},\"p99_ms\":{:.3f},"
          "\"completion_p50_ms\":{:.3f},\"completion_p99_ms\":{:.3f},\"outcomes\":{{",
          first ? "" : ",", route_name(r), rm.served, rm.rejected, rm.degraded, rm.late, percentile(rm.latency_ms, 50),
          percentile(rm.latency_ms, 99), percentile(rm.completion_ms, 50), percentile(rm.completion_ms, 99));
      bool first_outcome = true;
      for (const auto& [k, v] : rm.outcomes) {
        out += fmt::format("{}\"{}\":{}", first_outcome ? "" : ",", k, v);
        first_outcome = false;
      }
      out += "}}";
      first = false;
    }
    out += "},\"replicas\":[";
    for (std::size_t j = 0; j < m.replicas.size(); ++j)
      out += fmt::format("{}{{\"t_s\":{:.0f},\"ready\":{},\"provisioned\":{}}}", j ? "," : "", m.replicas[j].t_s,
                         m.replicas[j].ready, m.replicas[j].provisioned);
    out += "]}";
  }
  out += fmt::format("],\"greedy_budget_tokens\":{},\"seed\":{}}}\n", budget_over_run(*in.s), in.s->seed);
  std::fputs(out.c_str(), stdout);
}

/// The claims docs/gateway.md makes, checked on a run: 0 if all hold.
inline int check_claims(const scenario& s, const run_metrics& naive, const run_metrics& keel) {
  int failed = 0;
  auto claim = [&](bool ok, const char* what) {
    if (!ok) {
      std::fprintf(stderr, "claim failed: %s\n", what);
      ++failed;
    }
  };
  auto tokens = [&](const run_metrics& m) {
    const auto it = m.tokens_billed.find(s.greedy_tenant);
    return it == m.tokens_billed.end() ? std::int64_t{0} : it->second;
  };
  auto late = [](const run_metrics& m, route r) { return m.routes.count(r) ? m.routes.at(r).late : 0; };
  claim(tokens(keel) <= budget_over_run(s), "keel holds the greedy tenant to its token budget");
  claim(tokens(naive) > 2 * budget_over_run(s), "the naive gateway lets the greedy tenant overspend");
  claim(keel.stampede_gpu_calls == 1, "keel computes the stampede's embedding once");
  claim(naive.stampede_gpu_calls == 200, "the naive gateway computes it 200 times");
  claim(keel.vector_store_wait_s < naive.vector_store_wait_s / 5,
        "keel's breaker cuts time spent on the failing store");
  claim(late(keel, route::generate) * 100 < late(naive, route::generate),
        "keel serves under 1% as many generations late as the naive gateway");
  claim(late(keel, route::embed) < late(naive, route::embed) / 5, "keel serves far fewer embeddings late");
  claim(keel.gpu_calls < naive.gpu_calls, "keel makes fewer GPU calls");
  return failed == 0 ? 0 : 1;
}

}  // namespace demo
