// keel/cache/cache_layer.hpp — a pipeline layer that answers from a keel::cache.
//
// cache_by(cache, key_of) looks the request up by key_of(ctx); on a hit the
// rest of the stack does not run. On a miss the rest of the stack runs once
// for all concurrent requests with the same key (single flight): the others
// wait and receive the same result. A value is cached; a rejection from below
// is returned to every waiter and not cached (unless the cache's negative_ttl
// says to remember it); an exception from below propagates to every waiter.
//
//   keel::cache<std::string, embedding, keel::w_tinylfu, steady_clock, keel::string_hash, std::equal_to<>>
//       embeddings({.capacity = 100'000, .expire_after_write = std::chrono::hours(24)});
//   auto service = keel::pipeline(limit_layer, keel::cache_by(embeddings, [](request& r) {
//                                   return std::string_view(r.prompt);
//                                 })).bind(call_model);
//
// The cache is held by reference: it must outlive the layer, and one cache can
// serve several pipelines.
#pragma once

#include <keel/core/pipeline.hpp>
#include <keel/core/result.hpp>

#include <functional>
#include <type_traits>
#include <utility>

namespace keel {

template <class Cache, class KeyOf>
class cache_layer {
 public:
  constexpr cache_layer(Cache& cache, KeyOf key_of) : cache_(&cache), key_of_(std::move(key_of)) {}

  template <class Ctx, class Next>
  next_result_t<Next, Ctx> operator()(Ctx& ctx, Next&& next) {
    using R = next_result_t<Next, Ctx>;
    static_assert(std::is_same_v<R, result<typename Cache::mapped_type>>,
                  "keel::cache_by: the stack below must return keel::result<V>, where V is the cache's Value type");
    static_assert(std::is_invocable_v<KeyOf&, Ctx&>,
                  "keel::cache_by: the key projection must be callable as key_of(ctx) and return the cache key "
                  "(or a type the cache's transparent hash accepts)");
    return cache_->get_or_load(std::invoke(key_of_, ctx), [&] { return next(ctx); });
  }

  Cache& cache() const noexcept { return *cache_; }

 private:
  Cache* cache_;
  KeyOf key_of_;
};

/// A layer that serves requests from `cache` by key_of(ctx) and coalesces misses.
template <class Cache, class KeyOf>
constexpr auto cache_by(Cache& cache, KeyOf&& key_of) {
  return cache_layer<Cache, std::decay_t<KeyOf>>(cache, std::forward<KeyOf>(key_of));
}

}  // namespace keel
