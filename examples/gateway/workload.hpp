// The demo's workload: a seeded, deterministic trace of requests over a few
// minutes of simulated time, the same for the naive gateway and keel's.
//
//  * 20 ordinary tenants call /embed, /generate and /batch/summarize at a
//    steady base rate, with a traffic spike (×2.5) in the middle of the run;
//  * one greedy tenant tries to spend far past its token budget (many
//    /generate calls with large max_tokens, all used);
//  * /embed texts follow a Zipf law, and at one moment 200 requests for
//    "reset my password" arrive together;
//  * a few calls carry an invalid API key.
#pragma once

#include "simulation.hpp"

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace demo {

enum class route { embed, generate, summarize };
inline const char* route_name(route r) {
  switch (r) {
    case route::embed: return "/embed";
    case route::generate: return "/generate";
    case route::summarize: return "/batch/summarize";
  }
  return "?";
}

/// The text of the embedding stampede.
inline const std::string stampede_text = "reset my password";

struct request {
  std::uint64_t id = 0;
  route path = route::embed;
  std::string api_key;
  std::string text;  // embedding input, or the prompt's identity
  int prompt_tokens = 0;
  int max_tokens = 0;     // what the caller asks for: the admission estimate
  int output_tokens = 0;  // what the model will actually produce (unknown to the gateway)
  time_point arrival;
  time_point deadline;
  std::string tenant;  // set by authentication
};

struct scenario {
  std::uint64_t seed = 42;
  duration length = 600s;
  time_point spike_start = time_point(200s), spike_end = time_point(290s);
  double spike_factor = 2.5;
  time_point outage_start = time_point(330s), outage_end = time_point(420s);
  time_point stampede_at = time_point(150s);  // 200 identical embedding requests
  int tenants = 20;
  double embed_per_s = 30, generate_per_s = 9, summarize_per_s = 0.4;  // base rates, all tenants
  double greedy_generate_per_s = 1.5;
  std::int64_t tenant_tokens_per_minute = 60'000;  // every tenant's budget
  std::string greedy_tenant = "tenant-greedy";
};

/// Generates the whole trace up front, sorted by arrival.
inline std::vector<request> make_trace(const scenario& s) {
  std::mt19937_64 rng(s.seed);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<request> out;
  std::uint64_t id = 0;
  auto exp_gap = [&](double rate) { return -std::log(1 - unit(rng)) / rate; };
  auto rate_at = [&](double base, double t) {
    const bool spiking = t >= seconds(s.spike_start.time_since_epoch()) && t < seconds(s.spike_end.time_since_epoch());
    return spiking ? base * s.spike_factor : base;
  };
  auto tenant_key = [&](int t) { return "key-" + std::to_string(t); };
  // Zipf(1.0) over 20 000 distinct embedding texts, by inverse CDF on a table.
  constexpr int distinct_texts = 20'000;
  std::vector<double> cdf(distinct_texts);
  double acc = 0;
  for (int i = 0; i < distinct_texts; ++i) cdf[static_cast<std::size_t>(i)] = acc += 1.0 / (i + 1);
  auto zipf_text = [&] {
    const double u = unit(rng) * acc;
    const auto rank = std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin();
    return "text-" + std::to_string(rank);
  };
  const double end = seconds(s.length);

  auto add = [&](route r, double t, std::string key, std::string text, int prompt, int max_tokens, int output) {
    request q;
    q.id = id++;
    q.path = r;
    q.api_key = std::move(key);
    q.text = std::move(text);
    q.prompt_tokens = prompt;
    q.max_tokens = max_tokens;
    q.output_tokens = output;
    q.arrival = time_point(from_seconds(t));
    q.deadline = q.arrival + (r == route::embed ? 2s : r == route::generate ? 30s : 600s);
    out.push_back(std::move(q));
  };
  auto ordinary_key = [&] {
    // 1 in 200 calls presents a key nobody issued.
    if (unit(rng) < 0.005) return std::string("key-stolen");
    return tenant_key(static_cast<int>(unit(rng) * s.tenants));
  };
  for (double t = exp_gap(s.embed_per_s); t < end; t += exp_gap(rate_at(s.embed_per_s, t))) {
    add(route::embed, t, ordinary_key(), zipf_text(), 0, 0, 0);
  }
  for (double t = exp_gap(s.generate_per_s); t < end; t += exp_gap(rate_at(s.generate_per_s, t))) {
    const int prompt = 300 + static_cast<int>(unit(rng) * 400);
    const int max_tokens = 256;
    const int output = 60 + static_cast<int>(unit(rng) * 196);
    add(route::generate, t, ordinary_key(), "prompt-" + std::to_string(id), prompt, max_tokens, output);
  }
  for (double t = exp_gap(s.summarize_per_s); t < end; t += exp_gap(rate_at(s.summarize_per_s, t))) {
    add(route::summarize, t, ordinary_key(), "doc-" + std::to_string(id), 3000, 300, 250);
  }
  // The greedy tenant: long prompts, maximum output, every token used.
  for (double t = exp_gap(s.greedy_generate_per_s); t < end; t += exp_gap(s.greedy_generate_per_s)) {
    add(route::generate, t, "key-greedy", "greedy-" + std::to_string(id), 1500, 1024, 1024);
  }
  // The stampede: 200 identical embedding requests within 50 ms.
  const double stampede = seconds(s.stampede_at.time_since_epoch());
  for (int i = 0; i < 200; ++i) {
    add(route::embed, stampede + 0.05 * unit(rng), tenant_key(i % s.tenants), stampede_text, 0, 0, 0);
  }
  std::stable_sort(out.begin(), out.end(), [](const request& a, const request& b) { return a.arrival < b.arrival; });
  return out;
}

/// API keys the gateway accepts, and whose tenant each is.
inline std::vector<std::pair<std::string, std::string>> api_keys(const scenario& s) {
  std::vector<std::pair<std::string, std::string>> keys;
  for (int t = 0; t < s.tenants; ++t) keys.emplace_back("key-" + std::to_string(t), "tenant-" + std::to_string(t));
  keys.emplace_back("key-greedy", s.greedy_tenant);
  return keys;
}

/// GPU work of a request in A10-seconds: prefill ~0.1 ms per prompt token,
/// decode ~20 ms per output token (50 tokens/s per sequence), embeddings 20 ms.
inline double gpu_work(route r, int prompt_tokens, int output_tokens) {
  if (r == route::embed) return 0.02;
  return 0.0001 * prompt_tokens + 0.02 * output_tokens;
}

}  // namespace demo
