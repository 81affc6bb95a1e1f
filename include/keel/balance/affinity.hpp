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
#include <bit>
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

  /// The ring, sorted by hash, plus a bucket index on the hashes' top bits:
  /// first_[k] is the first point whose hash starts with k. With about one
  /// point per bucket, finding a key's place is one load and a scan of one
  /// or two points, where a binary search over 100 points per node costs a
  /// dozen dependent, unpredictable steps (~80 ns over 64 nodes).
  class table {
   public:
    template <class View>
    table(const bounded_load_hash& s, const View& v) {
      const std::size_t n = v.size();
      if (n == 0) return;
      struct point {
        std::uint64_t hash;
        std::uint32_t index;
      };
      std::vector<point> ring;
      const double mean = v.total_weight() / static_cast<double>(n);
      for (std::size_t i = 0; i < n; ++i) {
        const double share = v.configured_weight(i) / mean;
        const auto points = std::max<std::size_t>(
            1, static_cast<std::size_t>(std::lround(share * static_cast<double>(s.config_.points_per_node))));
        for (std::size_t p = 0; p < points; ++p)
          ring.push_back({detail::mix64(v.id(i).value * detail::weyl_step + p), static_cast<std::uint32_t>(i)});
      }
      std::sort(ring.begin(), ring.end(), [](const point& a, const point& b) {
        return a.hash < b.hash || (a.hash == b.hash && a.index < b.index);
      });
      for (const point& p : ring) {
        hashes_.push_back(p.hash);
        indices_.push_back(p.index);
      }
      const std::size_t buckets = std::max<std::size_t>(2, std::bit_floor(ring.size()));
      shift_ = 64 - static_cast<unsigned>(std::countr_zero(buckets));
      first_.resize(buckets + 1);
      std::size_t pos = 0;
      for (std::size_t k = 0; k < buckets; ++k) {
        while (pos < hashes_.size() && (hashes_[pos] >> shift_) < k) ++pos;
        first_[k] = static_cast<std::uint32_t>(pos);
      }
      first_[buckets] = static_cast<std::uint32_t>(hashes_.size());
    }

   private:
    friend class bounded_load_hash;
    /// The first ring position whose hash is ≥ h (std::lower_bound), or the ring's size.
    std::size_t lower_bound(std::uint64_t h) const noexcept {
      const std::size_t bucket = static_cast<std::size_t>(h >> shift_);
      std::size_t pos = first_[bucket];
      const std::size_t end = first_[bucket + 1];
      while (pos < end && hashes_[pos] < h) ++pos;
      return pos;
    }

    std::vector<std::uint64_t> hashes_;   ///< ring points, sorted
    std::vector<std::uint32_t> indices_;  ///< the node of each point
    std::vector<std::uint32_t> first_;    ///< bucket index, one entry more than buckets
    unsigned shift_ = 63;
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
    const std::size_t points = t.hashes_.size();
    if (points == 0) return detail::no_node;
    const std::uint64_t h = detail::mix64(static_cast<std::uint64_t>(std::invoke(key_of_, v.context())));
    std::size_t pos = t.lower_bound(h);
    // The bound uses the load after this call is placed: total + 1. A node
    // takes the call while outstanding + 1 ≤ ⌈bound⌉, i.e. outstanding < bound.
    const double average = static_cast<double>(v.total_outstanding() + 1) / v.total_weight();
    const double per_weight = (1.0 + config_.epsilon) * average;
    for (std::size_t step = 0; step < points; ++step, ++pos) {
      if (pos == points) pos = 0;
      const std::size_t i = t.indices_[pos];
      if (!v.usable(i)) continue;
      if (static_cast<double>(v.outstanding(i)) < per_weight * v.configured_weight(i)) return i;
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
