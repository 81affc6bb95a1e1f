// An embedding cache: 200 concurrent requests for "reset my password" arrive
// while the phrase is not cached. keel::cache_by coalesces them into one model
// call; every request gets the same vector, and later requests are hits.
#include <keel/cache/cache.hpp>
#include <keel/cache/cache_layer.hpp>
#include <keel/core/pipeline.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <latch>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

struct request {
  std::string tenant;
  std::string prompt;
};

// Large values are shared, not copied: a hit hands out a pointer to the vector.
using embedding = std::shared_ptr<const std::vector<float>>;

int main() {
  // Bounded by bytes of embeddings, not by entry count.
  auto bytes = [](const std::string& prompt, const embedding& e) { return prompt.size() + e->size() * sizeof(float); };
  keel::cache<std::string, embedding, keel::w_tinylfu, std::chrono::steady_clock, keel::string_hash, std::equal_to<>,
              decltype(bytes)>
      embeddings({.capacity = 64 << 20, .expire_after_write = 24h, .negative_ttl = 2s}, {}, bytes);

  std::atomic<int> model_calls{0};
  auto embed = [&](request& r) -> keel::result<embedding> {
    ++model_calls;
    std::this_thread::sleep_for(50ms);  // the GPU at work
    auto v = std::make_shared<std::vector<float>>(768);
    for (std::size_t i = 0; i < v->size(); ++i) (*v)[i] = static_cast<float>(r.prompt.size() + i) * 0.001f;
    return embedding(std::move(v));
  };
  auto service =
      keel::pipeline(keel::cache_by(embeddings, [](request& r) { return std::string_view(r.prompt); })).bind(embed);

  constexpr int concurrent = 200;
  std::vector<embedding> answers(concurrent);
  std::latch arrive(concurrent);
  std::vector<std::thread> clients;
  for (int i = 0; i < concurrent; ++i) {
    clients.emplace_back([&, i] {
      request r{"tenant-" + std::to_string(i % 7), "reset my password"};
      arrive.arrive_and_wait();
      if (auto e = service(r)) answers[static_cast<std::size_t>(i)] = *e;
    });
  }
  for (auto& c : clients) c.join();

  bool same = true;
  for (const auto& a : answers) same = same && a && a == answers[0];
  const auto st = embeddings.stats();
  std::printf("%d requests -> %d model call(s); all got the same vector: %s\n", concurrent, model_calls.load(),
              same ? "yes" : "no");
  std::printf("hits %llu, misses %llu, coalesced waits %llu, cached bytes %zu\n",
              static_cast<unsigned long long>(st.hits), static_cast<unsigned long long>(st.misses),
              static_cast<unsigned long long>(st.coalesced_waits), st.weight);
  return model_calls == 1 && same ? 0 : 1;
}
