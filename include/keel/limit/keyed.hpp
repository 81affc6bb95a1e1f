// keel/limit/keyed.hpp — one rate limit per tenant, API key or model, in bounded memory.
//
// keyed_limiter holds one GCRA state (see gcra.hpp) per key in a sharded hash
// table. Each key's quota comes from a user function, so tiers are one lookup
// away; a key seen for the first time starts rested (its full burst).
//
//   keel::keyed_limiter<std::string> tpm{[&](const std::string& tenant) {
//     return plans.at(tenant) == plan::pro ? keel::rate_limit::per_minute(400'000)
//                                          : keel::rate_limit::per_minute(40'000);
//   }};
//   auto permit = tpm.reserve(req.tenant, req.prompt_tokens + req.max_tokens);
//   if (!permit) return permit.error();     // rate_limited + retry_after, per tenant
//   ...
//   permit->settle(usage.total_tokens);
//
// Memory is bounded two ways. A key whose TAT is at or before now is at rest:
// its state equals a fresh one and carries no information, so it is dropped
// (lazily, when a shard is full and about an eighth of it — at most 32 keys —
// may have come to rest since its last sweep; or at once by sweep()). And the
// table never holds more than max_keys keys (max_keys / shards per shard,
// rounded up): when a shard is full of keys that are not at rest, a new key
// is refused with errc::overloaded rather than evicting a key in debt —
// evicting it would hand that tenant a fresh burst. A key with an unsettled
// reservation is never dropped. 37 to 73 bytes per std::uint64_t key: a
// 32-byte slot in a table 7/16 to 7/8 full (docs/rate-limiting.md).
//
// Concurrency: each shard is a mutex (detail/shard_mutex.hpp: a futex mutex
// inlined, a few instructions uncontended) around an open-addressing table that
// holds keys and states inline (detail/key_table.hpp: one cache line per
// lookup), padded to its own cache lines; calls for keys in different shards
// do not contend. With many keys, that line is a cache miss (the tables
// outgrow L2): a call prefetches it before reading the clock, which is
// serialising (rdtscp / lfence in the vDSO) while a prefetch is not, so the
// miss and the clock read overlap instead of adding up.
// The quota function is called outside every lock, only for keys not yet in
// the table; it may throw (the table is left unchanged). A quota that fails
// validation is a configuration error (keel::config_error).
#pragma once

#include <keel/core/clock.hpp>
#include <keel/core/detail/cache_line.hpp>
#include <keel/core/detail/fatal.hpp>
#include <keel/core/permit.hpp>
#include <keel/core/result.hpp>
#include <keel/limit/detail/gcra_math.hpp>
#include <keel/limit/detail/key_table.hpp>
#include <keel/limit/detail/shard_mutex.hpp>
#include <keel/limit/detail/tier_table.hpp>
#include <keel/limit/gcra.hpp>
#include <keel/limit/rate_limit.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>

namespace keel {

struct keyed_config {
  std::size_t max_keys = std::size_t{1} << 20;  ///< most keys held at once (rounded up to a multiple of shards)
  std::size_t shards = 64;                      ///< a power of two; more shards, less contention
};

struct keyed_stats {
  std::size_t keys = 0;       ///< keys held now
  std::size_t max_keys = 0;   ///< the bound (shards × keys per shard)
  std::uint64_t dropped = 0;  ///< keys dropped because they came to rest
  std::uint64_t refused = 0;  ///< new keys refused because their shard was full of keys in use
};

template <class Key, clock Clock = std::chrono::steady_clock, class Hash = std::hash<Key>,
          class KeyEqual = std::equal_to<Key>, class Allocator = std::allocator<Key>>
class keyed_limiter {
  static_assert(std::is_nothrow_move_constructible_v<Key>,
                "keel::keyed_limiter: the key type must be nothrow move constructible (integers and std::string are); "
                "wrap other keys in std::unique_ptr or use an id");
  using table = detail::key_table<Key, Hash, KeyEqual, Allocator>;
  using slot = typename table::slot;

  // The table's header (slot array, capacity) sits on its own line, read by
  // every call and written only when the table grows: a call from another
  // core finds it without waiting for the line that the mutex writes.
  struct alignas(detail::cache_line) shard {
    explicit shard(const Hash& h, const KeyEqual& eq, const Allocator& a) : tiers(a), entries(h, eq, a) {}
    mutable detail::shard_mutex mutex;
    detail::tier_table<Allocator> tiers;
    std::int64_t next_sweep = detail::i64_min;  ///< a sweep before this time would free little
    std::size_t hinted = 0;                     ///< keys whose rest time next_sweep accounts for
    std::uint64_t dropped = 0;
    std::uint64_t refused = 0;
    alignas(detail::cache_line) table entries;
  };

 public:
  using key_type = Key;
  using clock_type = Clock;
  using quota_function = std::function<rate_limit(const Key&)>;
  class reservation;
  class key_ref;

  /// Every key gets `limit`.
  explicit keyed_limiter(rate_limit limit, keyed_config cfg = {}, Clock clk = Clock(), Hash hash = Hash(),
                         KeyEqual eq = KeyEqual(), Allocator alloc = Allocator())
      : keyed_limiter([limit](const Key&) { return limit; }, cfg, std::move(clk), std::move(hash), std::move(eq),
                      std::move(alloc)) {
    (void)detail::to_gcra(limit);  // refuse an invalid limit now, not at the first key
  }

  /// Each new key gets quota(key).
  explicit keyed_limiter(quota_function quota, keyed_config cfg = {}, Clock clk = Clock(), Hash hash = Hash(),
                         KeyEqual eq = KeyEqual(), Allocator alloc = Allocator())
      : quota_(std::move(quota)), hash_(std::move(hash)), clock_(std::move(clk)) {
    detail::require_config(static_cast<bool>(quota_), "keel::keyed_limiter: quota must be a callable");
    detail::require_config(cfg.shards >= 1 && std::has_single_bit(cfg.shards),
                           "keel::keyed_limiter: shards must be a power of two");
    detail::require_config(cfg.max_keys >= 1, "keel::keyed_limiter: max_keys must be at least 1");
    shard_count_ = cfg.shards;
    shift_ = 64 - std::countr_zero(cfg.shards);
    per_shard_ = (cfg.max_keys + cfg.shards - 1) / cfg.shards;
    shards_ = std::make_unique<std::unique_ptr<shard>[]>(shard_count_);
    for (std::size_t i = 0; i < shard_count_; ++i) shards_[i] = std::make_unique<shard>(hash_, eq, alloc);
  }

  keyed_limiter(const keyed_limiter&) = delete;
  keyed_limiter& operator=(const keyed_limiter&) = delete;

  /// Admits `cost` for `key` now, or rejects (rate_limited with retry_after;
  /// invalid_argument for a negative cost or one above the key's burst;
  /// overloaded when the key is new and the table is full).
  result<void> try_acquire(const Key& key, std::int64_t cost = 1) {
    if (auto r = admit(key, cost, false); !r) return r.error();
    return {};
  }

  /// Admits `estimated_cost` for `key` and returns a permit to settle with the actual cost.
  result<reservation> reserve(const Key& key, std::int64_t estimated_cost) {
    auto r = admit(key, estimated_cost, true);
    if (!r) return r.error();
    return reservation(this, *r, estimated_cost);
  }

  /// What try_acquire(key, cost) would answer now, charging nothing and adding no key.
  result<void> peek(const Key& key, std::int64_t cost = 1) const {
    if (cost < 0) return reject(errc::invalid_argument, detail::negative_cost);
    const std::size_t h = hash_(key);
    shard& s = shard_for(h);
    const std::int64_t now = detail::now_ns(clock_);
    {
      std::lock_guard lock(s.mutex);
      if (const slot* found = s.entries.find(key, h)) {
        return verdict(detail::gcra_decide(found->state.tat, now, now, cost, s.tiers[found->state.tier]));
      }
    }
    return verdict(detail::gcra_decide(detail::rested_tat, now, now, cost, detail::to_gcra(quota_(key))));
  }

  /// A handle to one key, usable wherever a limiter is (e.g. keel::reserve_all).
  /// It refers to `key`, which must outlive it.
  key_ref operator[](const Key& key) noexcept { return key_ref(this, &key); }

  /// Drops every key at rest now; returns how many. Optional: full shards sweep themselves.
  std::size_t sweep() {
    const std::int64_t now = detail::now_ns(clock_);
    std::size_t n = 0;
    for (std::size_t i = 0; i < shard_count_; ++i) {
      std::lock_guard lock(shards_[i]->mutex);
      n += sweep_locked(*shards_[i], now);
    }
    return n;
  }

  std::size_t size() const {
    std::size_t n = 0;
    for (std::size_t i = 0; i < shard_count_; ++i) {
      std::lock_guard lock(shards_[i]->mutex);
      n += shards_[i]->entries.size();
    }
    return n;
  }

  keyed_stats stats() const {
    keyed_stats st{0, per_shard_ * shard_count_, 0, 0};
    for (std::size_t i = 0; i < shard_count_; ++i) {
      std::lock_guard lock(shards_[i]->mutex);
      st.keys += shards_[i]->entries.size();
      st.dropped += shards_[i]->dropped;
      st.refused += shards_[i]->refused;
    }
    return st;
  }

 private:
  static result<void> verdict(const detail::gcra_decision& d) noexcept {
    if (d.verdict != detail::gcra_verdict::admit) return detail::gcra_rejection(d);
    return {};
  }

  shard& shard_for(std::size_t h) const noexcept {
    // The high bits of the table's spread hash pick the shard, its low bits
    // the slot: one mix, two independent indices, and keys whose hashes
    // differ only in high bits (std::hash of integers is the identity) spread.
    const std::uint64_t spread = table::spread(h);
    return *shards_[shard_count_ == 1 ? 0 : static_cast<std::size_t>(spread >> shift_)];
  }

  // Where an admitted key lives: enough for a reservation to find it again.
  struct admitted {
    shard* in;
    std::size_t hash;
    std::uint64_t id;
  };

  // Admits, pinning the key if `pin`.
  result<admitted> admit(const Key& key, std::int64_t cost, bool pin) {
    if (cost < 0) return reject(errc::invalid_argument, detail::negative_cost);
    const std::size_t h = hash_(key);
    shard& s = shard_for(h);
    s.entries.prefetch(h);  // before the clock read, so the miss and the read overlap
    const std::int64_t now = detail::now_ns(clock_);
    {
      std::lock_guard lock(s.mutex);
      if (slot* found = s.entries.find(key, h)) return charge(s, h, *found, now, cost, pin);
    }
    // A new key: ask for its quota outside the lock (it may be slow or throw),
    // and add the key only once the call is admitted.
    const detail::gcra_params params = detail::to_gcra(quota_(key));
    const auto fresh = detail::gcra_decide(detail::rested_tat, now, now, cost, params);
    if (fresh.verdict != detail::gcra_verdict::admit) return detail::gcra_rejection(fresh);
    std::lock_guard lock(s.mutex);
    if (slot* found = s.entries.find(key, h)) return charge(s, h, *found, now, cost, pin);
    if (!has_room(s, now)) {
      ++s.refused;
      return reject(errc::overloaded, "keel::keyed_limiter: key table full");
    }
    const std::uint32_t tier = s.tiers.acquire(params);  // may throw: nothing changed yet
    const slot* added = nullptr;
    {
      struct undo_tier {  // the insert may throw (a key copy, the table's growth)
        shard& s;
        std::uint32_t tier;
        bool done = false;
        ~undo_tier() {
          if (!done) s.tiers.release(tier);
        }
      } guard{s, tier};
      added = &s.entries.insert(key, h, detail::key_state{fresh.new_tat, tier, pin ? 1u : 0u});
      guard.done = true;
    }
    if (!pin) note_resting(s, added->state.tat);
    return admitted{&s, h, added->id};
  }

  static result<admitted> charge(shard& s, std::size_t h, slot& sl, std::int64_t now, std::int64_t cost, bool pin) {
    const auto d = detail::gcra_decide(sl.state.tat, now, now, cost, s.tiers[sl.state.tier]);
    if (d.verdict != detail::gcra_verdict::admit) return detail::gcra_rejection(d);
    sl.state.tat = d.new_tat;
    if (pin) ++sl.state.pins;
    return admitted{&s, h, sl.id};
  }

  // A full shard sweeps only once enough of its keys may have come to rest:
  // the sweep notes when the k-th earliest key will rest (k = 1/8 of a shard,
  // at most 32), so each scan of n keys frees about k slots, and a flood of
  // new keys against a shard of busy keys costs no scan per refusal.
  bool has_room(shard& s, std::int64_t now) const {
    if (s.entries.size() < per_shard_) return true;
    if (now >= s.next_sweep) sweep_locked(s, now);
    return s.entries.size() < per_shard_;
  }

  // Drops the keys at rest and notes when the next sweep is worth doing.
  std::size_t sweep_locked(shard& s, std::int64_t now) const {
    const std::size_t batch = std::clamp<std::size_t>(per_shard_ / 8, 1, max_batch);
    std::array<std::int64_t, max_batch> earliest{};  // the `batch` smallest TATs left, ascending
    std::size_t found = 0;
    const std::size_t n = s.entries.erase_if([&](const slot& sl) {
      const detail::key_state& st = sl.state;
      if (st.pins != 0) return false;
      if (st.tat <= now) {  // dropped: its tier has one user less
        s.tiers.release(st.tier);
        return true;
      }
      if (found < batch || st.tat < earliest[found - 1]) {
        std::size_t i = found < batch ? found++ : found - 1;
        for (; i > 0 && earliest[i - 1] > st.tat; --i) earliest[i] = earliest[i - 1];
        earliest[i] = st.tat;
      }
      return false;
    });
    s.next_sweep = found == 0 ? detail::i64_max : earliest[found - 1];
    s.hinted = found;
    s.dropped += n;
    return n;
  }

  // A key that may rest at `tat` and that the last sweep did not see: while
  // that sweep saw fewer than a batch, let it bring the next sweep forward.
  void note_resting(shard& s, std::int64_t tat) const noexcept {
    if (s.hinted >= std::clamp<std::size_t>(per_shard_ / 8, 1, max_batch)) return;
    s.next_sweep = std::min(s.next_sweep, tat);
    ++s.hinted;
  }

  // Settles or drops a reservation: charge `delta` (if settled) and unpin.
  void release(const admitted& where, std::int64_t delta) noexcept {
    const std::int64_t now = detail::now_ns(clock_);
    shard& s = *where.in;
    std::lock_guard lock(s.mutex);
    detail::key_state& st = s.entries.find_id(where.hash, where.id).state;
    st.tat = detail::gcra_adjust(st.tat, now, delta, s.tiers[st.tier]);
    if (--st.pins == 0) note_resting(s, st.tat);
  }

  static constexpr std::size_t max_batch = 32;

  quota_function quota_;
  [[no_unique_address]] Hash hash_;
  [[no_unique_address]] Clock clock_;
  std::size_t shard_count_ = 1;
  int shift_ = 64;
  std::size_t per_shard_ = 1;
  std::unique_ptr<std::unique_ptr<shard>[]> shards_;
};

/// An admitted estimate for one key. settle(actual) charges actual − estimate
/// to that key (refund or debt); dropped unsettled, the estimate stays
/// charged. While it is active, its key is never dropped.
template <class Key, clock Clock, class Hash, class KeyEqual, class Allocator>
class keyed_limiter<Key, Clock, Hash, KeyEqual, Allocator>::reservation {
 public:
  reservation(reservation&& other) noexcept = default;
  reservation& operator=(reservation&& other) noexcept { return detail::replace_permit(*this, std::move(other)); }
  ~reservation() { drop(); }

  bool active() const noexcept { return link_.active(); }
  std::int64_t estimate() const noexcept { return estimate_; }

  /// Records the actual cost (negative counts as 0); later calls are ignored.
  void settle(std::int64_t actual_cost) noexcept {
    if (keyed_limiter* owner = link_.take())
      owner->release(where_, detail::sat_sub(std::max<std::int64_t>(actual_cost, 0), estimate_));
  }

 private:
  friend class keyed_limiter;
  reservation(keyed_limiter* owner, admitted where, std::int64_t estimate) noexcept
      : link_(owner), where_(where), estimate_(estimate) {}
  void drop() noexcept {
    if (keyed_limiter* owner = link_.take()) owner->release(where_, 0);
  }

  detail::permit_link<keyed_limiter> link_;
  admitted where_{};
  std::int64_t estimate_ = 0;
};

/// One key of a keyed_limiter, with the single-limiter interface.
template <class Key, clock Clock, class Hash, class KeyEqual, class Allocator>
class keyed_limiter<Key, Clock, Hash, KeyEqual, Allocator>::key_ref {
 public:
  using reservation = keyed_limiter::reservation;
  result<void> try_acquire(std::int64_t cost = 1) const { return limiter_->try_acquire(*key_, cost); }
  result<reservation> reserve(std::int64_t estimated_cost) const { return limiter_->reserve(*key_, estimated_cost); }
  result<void> peek(std::int64_t cost = 1) const { return limiter_->peek(*key_, cost); }

 private:
  friend class keyed_limiter;
  key_ref(keyed_limiter* l, const Key* k) noexcept : limiter_(l), key_(k) {}
  keyed_limiter* limiter_;
  const Key* key_;
};

}  // namespace keel
