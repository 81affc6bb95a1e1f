// keel_sim cache/hit_ratio — how many requests each eviction policy serves
// from cache on deterministic synthetic traces, at capacities of 1% and 10% of
// the trace's distinct keys.
//
// Policies: keel::cache with keel::w_tinylfu (the default) and with keel::lru,
// both with default sharding (what a user gets), used cache-aside (get, and
// put on a miss); and Belady's offline optimum (evict the key whose next use is
// farthest away), the ceiling no policy can pass. On the traces drawn
// independently from a fixed popularity (zipf_*, embedding) the ceiling for an
// *online* policy is lower: the "A0" oracle that knows the true ranking and
// keeps the C most popular keys (optimal for independent requests; Aho,
// Denning & Ullman 1971). Belady beats it only by seeing the future.
//
// Traces (seeded, 1M distinct keys unless noted; --quick uses 100K):
//   zipf_0.8, zipf_1.0   skewed popularity (s = 0.8 / 1.0), key ids scattered
//   zipf_scans           Zipf 0.9, and every 10% of the trace a one-shot scan of
//                        fresh keys as long as 2% of the trace
//   shifting             Zipf 0.9 whose ranking is re-drawn 4 times (yesterday's
//                        hot keys go cold)
//   loop                 a cyclic loop over all keys (100K keys)
//   embedding            an embedding service: 5,000 hot phrases (Zipf 1.0) are
//                        70% of requests, the rest a tail of unique prompts
//   sliding              a working set (1% of keys) read in order and sliding
//                        forward: recency is everything, and the keys that were
//                        most frequent are exactly the ones that never return —
//                        the trace where frequency misleads W-TinyLFU
#include "sim/sim.hpp"

#include <keel/cache/cache.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace {

using trace = std::vector<std::uint64_t>;

// Zipf(s) over n ranks by inverse CDF: deterministic with the seeded engine.
class zipf {
 public:
  zipf(std::size_t n, double s) : cdf_(n) {
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) cdf_[i] = (sum += 1.0 / std::pow(static_cast<double>(i + 1), s));
    for (auto& c : cdf_) c /= sum;
  }
  std::size_t operator()(std::mt19937_64& rng) const {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    return static_cast<std::size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

// Rank -> key id, scattered so that popular keys are not neighbours.
std::uint64_t key_of(std::uint64_t rank, std::uint64_t salt) { return keel::detail::mix_hash(rank * 0x9E37 + salt); }

trace make_zipf(std::size_t keys, std::size_t length, double s, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const zipf z(keys, s);
  trace t(length);
  for (auto& k : t) k = key_of(z(rng), 0);
  return t;
}

trace make_zipf_scans(std::size_t keys, std::size_t length, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const zipf z(keys, 0.9);
  trace t;
  t.reserve(length + length / 5);
  std::uint64_t fresh = 1ULL << 62;
  const std::size_t period = length / 10;
  const std::size_t scan = length / 50;
  for (std::size_t i = 0; i < length; ++i) {
    if (i % period == period / 2)
      for (std::size_t j = 0; j < scan; ++j) t.push_back(fresh++);
    t.push_back(key_of(z(rng), 0));
  }
  return t;
}

trace make_shifting(std::size_t keys, std::size_t length, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const zipf z(keys, 0.9);
  trace t(length);
  for (std::size_t i = 0; i < length; ++i) t[i] = key_of(z(rng), 1 + i / (length / 4));  // new ranking each quarter
  return t;
}

trace make_loop(std::size_t keys, std::size_t length) {
  trace t(length);
  for (std::size_t i = 0; i < length; ++i) t[i] = key_of(i % keys, 7);
  return t;
}

trace make_embedding(std::size_t length, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const zipf hot(5000, 1.0);
  trace t(length);
  std::uint64_t unique = 1ULL << 61;
  for (auto& k : t) k = (rng() % 100 < 70) ? key_of(hot(rng), 3) : unique++;
  return t;
}

// A working set of `window` keys read in order, sliding forward by `window/18`
// keys per pass: the just-used keys come back, the oldest never do.
trace make_sliding(std::size_t window, std::size_t length) {
  trace t;
  t.reserve(length);
  const std::size_t shift = std::max<std::size_t>(window / 18, 1);
  for (std::size_t base = 0; t.size() < length; base += shift)
    for (std::size_t i = 0; i < window && t.size() < length; ++i) t.push_back(key_of(base + i, 11));
  return t;
}

// A0: a hit when the key is one of the `capacity` most popular ranks (drawn
// with key_of(rank, salt)) and has been seen before (the first request of any
// key misses).
double a0_hit_ratio(const trace& t, std::size_t capacity, std::uint64_t salt) {
  std::unordered_set<std::uint64_t> top;
  top.reserve(capacity);
  for (std::uint64_t r = 0; r < capacity; ++r) top.insert(key_of(r, salt));
  std::unordered_set<std::uint64_t> seen;
  std::size_t hits = 0;
  for (const auto k : t)
    if (top.count(k) != 0 && !seen.insert(k).second) ++hits;
  return static_cast<double>(hits) / static_cast<double>(t.size());
}

std::size_t distinct(const trace& t) { return std::unordered_set<std::uint64_t>(t.begin(), t.end()).size(); }

template <class Policy>
double keel_hit_ratio(const trace& t, std::size_t capacity) {
  keel::cache<std::uint64_t, std::uint32_t, Policy> c({.capacity = capacity});
  for (const auto k : t)
    if (!c.get(k)) c.put(k, 0);
  return c.stats().hit_ratio();
}

// Belady's MIN: on a miss with a full cache, evict the resident key whose next
// use is farthest in the future (or never).
double belady_hit_ratio(const trace& t, std::size_t capacity) {
  constexpr std::size_t never = std::numeric_limits<std::size_t>::max();
  std::vector<std::size_t> next(t.size());
  std::unordered_map<std::uint64_t, std::size_t> seen;
  seen.reserve(t.size());
  for (std::size_t i = t.size(); i-- > 0;) {
    const auto it = seen.find(t[i]);
    next[i] = it == seen.end() ? never : it->second;
    seen[t[i]] = i;
  }
  std::unordered_map<std::uint64_t, std::size_t> resident;              // key -> its next use
  std::priority_queue<std::pair<std::size_t, std::uint64_t>> farthest;  // lazy: stale pairs skipped
  std::size_t hits = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    const auto it = resident.find(t[i]);
    if (it != resident.end()) {
      ++hits;
      it->second = next[i];
      farthest.emplace(next[i], t[i]);
      continue;
    }
    if (next[i] == never) continue;  // never used again: MIN does not keep it
    if (resident.size() == capacity) {
      for (;;) {
        const auto [when, key] = farthest.top();
        farthest.pop();
        const auto r = resident.find(key);
        if (r != resident.end() && r->second == when) {
          if (when <= next[i]) {  // every resident is needed sooner than this key: bypass
            farthest.emplace(when, key);
            goto next_access;
          }
          resident.erase(r);
          break;
        }
      }
    }
    resident[t[i]] = next[i];
    farthest.emplace(next[i], t[i]);
  next_access:;
  }
  return static_cast<double>(hits) / static_cast<double>(t.size());
}

bool run(const keel_sim::options& opt, keel_sim::report& out) {
  const std::size_t keys = opt.quick ? 100'000 : 1'000'000;
  const std::size_t length = opt.quick ? 300'000 : 3'000'000;
  const std::uint64_t seed = opt.seed;
  constexpr std::uint64_t not_irm = ~std::uint64_t{0};  // no fixed popularity: no A0
  struct named {
    std::string name;
    trace accesses;
    std::uint64_t a0_salt;  // the key_of salt of its popularity ranking, or not_irm
  };
  std::vector<named> traces;
  traces.push_back({"zipf_0.8", make_zipf(keys, length, 0.8, seed), 0});
  traces.push_back({"zipf_1.0", make_zipf(keys, length, 1.0, seed + 1), 0});
  traces.push_back({"zipf_scans", make_zipf_scans(keys, length, seed + 2), 0});
  traces.push_back({"shifting", make_shifting(keys, length, seed + 3), not_irm});
  traces.push_back({"loop", make_loop(keys / 10, length), not_irm});
  traces.push_back({"embedding", make_embedding(length, seed + 4), 3});
  traces.push_back({"sliding", make_sliding(keys / 100, length), not_irm});

  // Filled locally and added at the end: report::add returns a reference that
  // a second add() would invalidate.
  keel_sim::table wide{"cache hit ratio (cache-aside; capacity = % of distinct keys)",
                       {"trace", "capacity", "entries", "w_tinylfu", "lru", "belady", "a0 (online)",
                        "tinylfu-lru (points)", "a0-lru (points)"},
                       {},
                       {}};
  keel_sim::table results{"results", {"trace", "capacity", "policy", "hit_ratio"}, {}, {}};
  bool ok = true;
  for (const auto& [name, accesses, a0_salt] : traces) {
    const std::size_t d = distinct(accesses);
    for (const double share : {0.01, 0.10}) {
      const std::size_t capacity = std::max<std::size_t>(1, static_cast<std::size_t>(static_cast<double>(d) * share));
      const double tiny = keel_hit_ratio<keel::w_tinylfu>(accesses, capacity);
      const double lru = keel_hit_ratio<keel::lru>(accesses, capacity);
      const double opt_ratio = belady_hit_ratio(accesses, capacity);
      // The optimum bounds every online policy: anything else is a bug here.
      ok = ok && opt_ratio + 1e-9 >= tiny && opt_ratio + 1e-9 >= lru && tiny >= 0 && lru >= 0;
      const std::string cap = share == 0.01 ? "1%" : "10%";
      const bool irm = a0_salt != not_irm;
      const double a0 = irm ? a0_hit_ratio(accesses, capacity, a0_salt) : 0;
      ok = ok && opt_ratio + 1e-9 >= a0;
      wide.row({name, cap, static_cast<std::int64_t>(capacity), tiny, lru, opt_ratio,
                irm ? keel_sim::cell{a0} : keel_sim::cell{std::string("-")}, 100 * (tiny - lru),
                irm ? keel_sim::cell{100 * (a0 - lru)} : keel_sim::cell{std::string("-")}});
      results.row({name, static_cast<std::int64_t>(capacity), std::string("keel_w_tinylfu"), tiny});
      results.row({name, static_cast<std::int64_t>(capacity), std::string("keel_lru"), lru});
      results.row({name, static_cast<std::int64_t>(capacity), std::string("belady"), opt_ratio});
      if (irm) results.row({name, static_cast<std::int64_t>(capacity), std::string("a0_oracle"), a0});
    }
  }
  wide.note =
      "w_tinylfu and lru are keel::cache with default shards; belady is the offline optimum (upper bound); a0 keeps "
      "the "
      "truly most popular keys, the ceiling for online policies on traces of independent requests (- where popularity "
      "is not fixed).";
  results.note = "the same figures, one row per policy, for machines (--json)";
  out.tables.push_back(std::move(wide));
  if (opt.json) out.tables.push_back(std::move(results));
  return ok;
}

const keel_sim::registration reg{"cache/hit_ratio",
                                 "keel W-TinyLFU vs LRU vs Belady's optimum on synthetic traces at 1% and 10%", run};

}  // namespace
