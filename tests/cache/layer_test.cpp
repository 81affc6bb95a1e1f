// keel::cache_by: a pipeline layer that serves from a keel::cache by a key
// projection and coalesces concurrent misses.
#include <keel/cache/cache.hpp>
#include <keel/cache/cache_layer.hpp>
#include <keel/core/clock.hpp>
#include <keel/core/pipeline.hpp>

#include <catch.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <latch>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {
struct request {
  std::string prompt;
  int attempt = 0;
};
using prompt_cache =
    keel::cache<std::string, std::string, keel::w_tinylfu, keel::manual_clock, keel::string_hash, std::equal_to<>>;
auto by_prompt = [](request& r) { return std::string_view(r.prompt); };
}  // namespace

TEST_CASE("cache_by answers hits without running the rest of the stack", "[cache][layer]") {
  prompt_cache c({.capacity = 16}, keel::manual_clock{});
  int calls = 0;
  auto service = keel::pipeline(keel::cache_by(c, by_prompt)).bind([&](request& r) -> keel::result<std::string> {
    ++calls;
    return "answer to " + r.prompt;
  });
  request a{"hello"};
  CHECK(service(a) == keel::result<std::string>(std::string("answer to hello")));
  CHECK(service(a) == keel::result<std::string>(std::string("answer to hello")));
  request b{"bye"};
  CHECK(service(b).has_value());
  CHECK(calls == 2);
  CHECK(c.stats().hits == 1);
}

TEST_CASE("cache_by does not cache rejections or exceptions from below", "[cache][layer]") {
  prompt_cache c({.capacity = 16}, keel::manual_clock{});
  int calls = 0;
  auto service = keel::pipeline(keel::cache_by(c, by_prompt)).bind([&](request& r) -> keel::result<std::string> {
    ++calls;
    if (r.attempt == 0) return keel::reject(keel::errc::circuit_open);
    if (r.attempt == 1) throw std::runtime_error("vector store down");
    return std::string("ok");
  });
  request r{"q"};
  const auto first = service(r);
  REQUIRE_FALSE(first);
  CHECK(first.error().code == keel::errc::circuit_open);
  r.attempt = 1;
  CHECK_THROWS_WITH(service(r), "vector store down");
  r.attempt = 2;
  CHECK(service(r) == keel::result<std::string>(std::string("ok")));
  CHECK(calls == 3);
}

TEST_CASE("cache_by coalesces concurrent misses into one call below", "[cache][layer][single_flight]") {
  constexpr int threads = 32;
  prompt_cache c({.capacity = 16}, keel::manual_clock{});
  std::atomic<int> calls{0};
  auto service = keel::pipeline(keel::cache_by(c, by_prompt)).bind([&](request&) -> keel::result<std::string> {
    ++calls;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (c.stats().coalesced_waits < threads - 1 && std::chrono::steady_clock::now() < give_up)
      std::this_thread::yield();
    return std::string("vector");
  });
  std::latch start(threads);
  std::atomic<int> same{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      request r{"reset my password"};
      start.arrive_and_wait();
      if (service(r) == keel::result<std::string>(std::string("vector"))) ++same;
    });
  }
  for (auto& th : pool) th.join();
  CHECK(calls == 1);
  CHECK(same == threads);
  CHECK(c.stats().coalesced_waits == threads - 1);
}
