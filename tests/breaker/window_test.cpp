// Sliding windows against simple single-threaded reference models on seeded
// random operation sequences, plus the clock's edge cases and bad sizes.
#include <keel/breaker/window.hpp>
#include <keel/core/detail/fatal.hpp>

#include <catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
#include <random>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using keel::window_totals;
using keel::detail::sample;

namespace {

window_totals sum(const std::vector<sample>& samples) {
  window_totals t;
  for (sample s : samples) {
    t.calls += 1;
    t.failures += keel::detail::failed(s) ? 1 : 0;
    t.slow_calls += keel::detail::slow(s) ? 1 : 0;
  }
  return t;
}

// The last N calls, in a deque.
struct count_reference {
  std::size_t n;
  std::deque<sample> calls{};
  // Returns whether the totals changed: the evicted call (or an empty slot) differs from s.
  bool record(sample s) {
    bool changed = true;
    if (calls.size() == n) {
      changed = calls.front() != s;
      calls.pop_front();
    }
    calls.push_back(s);
    return changed;
  }
  window_totals totals() const { return sum({calls.begin(), calls.end()}); }
};

// Every call with the bucket it landed in; the window is the last B buckets
// up to the newest bucket the clock has reached (a clock going back stays there).
struct time_reference {
  std::int64_t bucket_ns;
  std::int64_t buckets;
  std::vector<std::pair<std::int64_t, sample>> calls{};
  std::int64_t newest = std::numeric_limits<std::int64_t>::min();

  static std::int64_t floor_div(std::int64_t a, std::int64_t b) {
    std::int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
  }
  void advance(std::int64_t now) {
    newest = std::max(newest, floor_div(now, bucket_ns));
    std::erase_if(calls, [&](const auto& c) { return c.first <= newest - buckets; });  // forgotten for good
  }
  void record(sample s, std::int64_t now) {
    advance(now);
    calls.emplace_back(newest, s);
  }
  window_totals totals(std::int64_t now) {
    advance(now);
    std::vector<sample> in;
    for (auto& c : calls) in.push_back(c.second);
    return sum(in);
  }
};

// A call that fails with probability fail_in_1000 / 1000 and is slow with half that.
sample random_sample(std::mt19937_64& rng, int fail_in_1000 = 300) {
  std::uniform_int_distribution<int> d(0, 999);
  return keel::detail::make_sample(d(rng) < fail_in_1000, d(rng) < fail_in_1000 / 2);
}

}  // namespace

TEST_CASE("count_window matches the last-N reference on random sequences", "[breaker][window]") {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    std::mt19937_64 rng(seed);
    // Half the seeds model a mostly healthy dependency, so the window is often
    // all fast successes and the write-free path is taken.
    const int fail_in_1000 = seed % 2 == 0 ? 300 : 5;
    const auto n = static_cast<std::uint32_t>(1 + rng() % 40);
    keel::count_window::recorder w(keel::count_window{n});
    count_reference ref{n};
    for (int op = 0; op < 2000; ++op) {
      if (rng() % 500 == 0) {
        w.clear();
        ref.calls.clear();
        CHECK(w.totals(0) == window_totals{});
        continue;
      }
      const sample s = random_sample(rng, fail_in_1000);
      const auto u = w.record(s, 0);
      const bool changed = ref.record(s);
      INFO("seed " << seed << " op " << op << " n " << n);
      REQUIRE(u.changed == changed);
      if (changed) REQUIRE(u.totals == ref.totals());
      REQUIRE(w.totals(0) == ref.totals());
    }
  }
}

TEST_CASE("a failure after a healthy stretch leaves after exactly N more calls", "[breaker][window]") {
  constexpr std::uint32_t n = 8;
  keel::count_window::recorder w(keel::count_window{n});
  const sample ok = keel::detail::make_sample(false, false);
  for (std::uint32_t i = 0; i < n + 5; ++i) (void)w.record(ok, 0);  // the last 5 write nothing
  CHECK(w.totals(0) == window_totals{n, 0, 0});
  (void)w.record(keel::detail::make_sample(true, false), 0);
  CHECK(w.totals(0) == window_totals{n, 1, 0});
  for (std::uint32_t i = 0; i < n - 1; ++i) (void)w.record(ok, 0);
  CHECK(w.totals(0) == window_totals{n, 1, 0});
  (void)w.record(ok, 0);
  CHECK(w.totals(0) == window_totals{n, 0, 0});
}

TEST_CASE("time_window matches the bucket reference on random sequences, clock jumps included", "[breaker][window]") {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    const auto buckets = static_cast<std::uint32_t>(1 + rng() % 12);
    const std::int64_t bucket_ns = 1 + static_cast<std::int64_t>(rng() % 1000);
    keel::time_window::recorder w(keel::time_window{std::chrono::nanoseconds(bucket_ns * buckets), buckets});
    time_reference ref{bucket_ns, buckets};
    std::int64_t now = static_cast<std::int64_t>(rng() % 100000) - 50000;  // negative times too
    for (int op = 0; op < 3000; ++op) {
      const auto kind = rng() % 100;
      if (kind < 40) {
        now += static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(bucket_ns));  // within a bucket or two
      } else if (kind < 45) {
        now -= static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(3 * bucket_ns));  // backwards
      } else if (kind < 47) {
        now += bucket_ns * buckets * static_cast<std::int64_t>(1 + rng() % 5);  // past the whole window
      }
      INFO("seed " << seed << " op " << op);
      if (kind % 3 == 0) {
        REQUIRE(w.totals(now) == ref.totals(now));
      } else {
        const sample s = random_sample(rng);
        const auto u = w.record(s, now);
        ref.record(s, now);
        REQUIRE(u.changed);
        REQUIRE(u.totals == ref.totals(now));
      }
    }
  }
}

TEST_CASE("time_window survives a clock standing still and jumping years ahead", "[breaker][window]") {
  keel::time_window::recorder w(keel::time_window{10s, 10});
  const std::int64_t t0 = 0;
  for (int i = 0; i < 5; ++i) (void)w.record(keel::detail::make_sample(true, false), t0);
  CHECK(w.totals(t0) == window_totals{5, 5, 0});
  CHECK(w.totals(t0 + 9'999'999'999) == window_totals{5, 5, 0});  // still within the window
  CHECK(w.totals(t0 + 10'000'000'000) == window_totals{});
  const std::int64_t far = std::numeric_limits<std::int64_t>::max() - 1;
  (void)w.record(keel::detail::make_sample(false, true), far);
  CHECK(w.totals(far) == window_totals{1, 0, 1});
  CHECK(w.totals(0) == window_totals{1, 0, 1});  // back in time: the newest bucket stays

  keel::time_window::recorder edge(keel::time_window{10s, 10});
  (void)edge.record(keel::detail::make_sample(true, true), std::numeric_limits<std::int64_t>::min());
  CHECK(edge.totals(std::numeric_limits<std::int64_t>::min()) == window_totals{1, 1, 1});
  CHECK(edge.totals(far) == window_totals{});  // the whole int64 range in one jump
}

TEST_CASE("invalid window sizes are rejected with the field's name", "[breaker][window][config]") {
  using keel::count_window;
  using keel::time_window;
  CHECK_THROWS_WITH(count_window::recorder(count_window{0}), "keel::breaker: count_window size must be in [1, 2^20]");
  CHECK_THROWS_WITH(count_window::recorder(count_window{count_window::max_size + 1}),
                    "keel::breaker: count_window size must be in [1, 2^20]");
  CHECK_NOTHROW(count_window::recorder(count_window{count_window::max_size}));
  CHECK_THROWS_WITH(time_window::recorder(time_window{10s, 0}),
                    "keel::breaker: time_window buckets must be in [1, 4096]");
  CHECK_THROWS_WITH(time_window::recorder(time_window{0s, 10}),
                    "keel::breaker: time_window length must be positive and at least 1 ns per bucket");
  CHECK_THROWS_WITH(time_window::recorder(time_window{-5s, 10}),
                    "keel::breaker: time_window length must be positive and at least 1 ns per bucket");
}
