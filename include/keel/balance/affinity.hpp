// keel/balance/affinity.hpp — same key, same node (KV-cache reuse), within a load bound.
//
// An LLM node that served a session or a prompt prefix holds its KV cache;
// sending the next turn there skips recomputing the prefix. Plain consistent
// hashing does that but lets one hot session overload its node. Bounded-load
// consistent hashing (Mirrokni, Thorup and Zadimoghaddam, "Consistent Hashing
// with Bounded Loads", SODA 2018; HAProxy's hash-balance-factor) keeps the
// affinity only while the node's outstanding calls stay within
// (1 + epsilon) × its weighted share of all outstanding calls; otherwise the
// call walks on along the ring to the next node with room.
//
// The ring places points_per_node × (weight / mean weight) points per node,
// hashed from the node id, so adding one node to N moves about 1/(N+1) of
// the keys and removing one moves only that node's keys.
//
// key_of(ctx) returns the 64-bit key (hash your session id or prompt prefix;
// keel::affinity_key(std::string_view) is FNV-1a).
//
//   auto key = [](const request& r) { return keel::affinity_key(r.session); };
//   keel::balancer<gpu, keel::bounded_load_hash<decltype(key)>> lb({}, keel::bounded_load_hash(key));
//   auto lease = lb.pick(req);
#pragma once

#include <keel/balance/detail/random.hpp>
#include <keel/balance/detail/sampling.hpp>
#include <keel/core/detail/fatal.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace keel {

/// FNV-1a of the bytes of s: a stable key for sessions and prompt prefixes.
constexpr std::uint64_t affinity_key(std::string_view s) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

struct bounded_load_hash_config {
  double epsilon = 0.25;              ///< load bound factor: at most (1 + epsilon) × the weighted average
  std::size_t points_per_node = 100;  ///< ring points of a node of mean weight

  void validate() const {
    detail::require_config(std::isfinite(epsilon) && epsilon > 0,
                           "keel::bounded_load_hash: epsilon must be positive and finite");
    detail::require_config(points_per_node >= 1 && points_per_node <= 100000,
                           "keel::bounded_load_hash: points_per_node must be in [1, 100000]");
  }
};

template <class KeyOf>
class bounded_load_hash {
 public:
  using config = bounded_load_hash_config;
  struct node_state {};
  static constexpr bool tracks_total_outstanding = true;

  class table {
   public:
    template <class View>
    table(const bounded_load_hash& s, const View& v) {
      const std::size_t n = v.size();
      if (n == 0) return;
      const double mean = v.total_weight() / static_cast<double>(n);
      for (std::size_t i = 0; i < n; ++i) {
        const double share = v.configured_weight(i) / mean;
        const auto points = std::max<std::size_t>(
            1, static_cast<std::size_t>(std::lround(share * static_cast<double>(s.config_.points_per_node))));
        for (std::size_t p = 0; p < points; ++p)
          ring_.push_back({detail::mix64(v.id(i).value * detail::weyl_step + p), static_cast<std::uint32_t>(i)});
      }
      std::sort(ring_.begin(), ring_.end(), [](const point& a, const point& b) {
        return a.hash < b.hash || (a.hash == b.hash && a.index < b.index);
      });
    }

   private:
    friend class bounded_load_hash;
    struct point {
      std::uint64_t hash;
      std::uint32_t index;
    };
    std::vector<point> ring_;
  };

  explicit bounded_load_hash(KeyOf key_of, const config& c = {}) : key_of_(std::move(key_of)), config_(c) {
    c.validate();
  }

  template <class View>
  std::size_t pick(table& t, const View& v) const {
    using ctx_t = std::remove_reference_t<decltype(v.context())>;
    static_assert(std::is_invocable_r_v<std::uint64_t, const KeyOf&, ctx_t&>,
                  "keel::bounded_load_hash: call pick(ctx) with a request the key function accepts "
                  "(pick() without a context has no key to hash)");
    const auto& ring = t.ring_;
    if (ring.empty()) return detail::no_node;
    const std::uint64_t h = detail::mix64(static_cast<std::uint64_t>(std::invoke(key_of_, v.context())));
    auto it = std::lower_bound(ring.begin(), ring.end(), h, [](const auto& p, std::uint64_t x) { return p.hash < x; });
    std::size_t pos = static_cast<std::size_t>(it - ring.begin());
    // The bound uses the load after this call is placed: total + 1.
    const double average = static_cast<double>(v.total_outstanding() + 1) / v.total_weight();
    for (std::size_t step = 0; step < ring.size(); ++step, ++pos) {
      const std::size_t i = ring[pos % ring.size()].index;
      if (!v.usable(i)) continue;
      const double bound = std::ceil((1.0 + config_.epsilon) * average * v.configured_weight(i));
      if (static_cast<double>(v.outstanding(i) + 1) <= bound) return i;
    }
    // Every usable node is at its bound (possible only while some are
    // ejected): the least loaded relative to weight takes it.
    std::size_t best = detail::no_node;
    double best_load = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!v.usable(i)) continue;
      const double load = static_cast<double>(v.outstanding(i) + 1) / v.configured_weight(i);
      if (best == detail::no_node || load < best_load) {
        best = i;
        best_load = load;
      }
    }
    return best;
  }

  const config& settings() const noexcept { return config_; }

 private:
  [[no_unique_address]] KeyOf key_of_;
  config config_;
};

}  // namespace keel
