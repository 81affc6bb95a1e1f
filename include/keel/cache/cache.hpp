// keel/cache/cache.hpp — a concurrent, bounded cache with expiry and single-flight loading.
//
// keel::cache<Key, Value> holds at most `capacity` units of weight (entries,
// with the default weigher; bytes, with yours), evicts with a pluggable policy
// (keel::w_tinylfu by default, keel::lru), expires entries after write and/or
// access, and loads missing keys once no matter how many callers miss them at
// the same time ("don't compute the same embedding 200 times").
//
//   keel::cache<std::string, embedding> cache({.capacity = 100'000,
//                                              .expire_after_write = std::chrono::hours(1)});
//   keel::result<embedding> e = cache.get_or_load(prompt, [&] { return model.embed(prompt); });
//   cache.put("greeting", e0);
//   if (auto hit = cache.get("greeting")) use(*hit);
//
// Concurrency. The cache is split into N shards (a power of two, chosen by the
// key's hash), each with its own reader-writer lock (detail/shard_lock.hpp),
// share of capacity, hash table (detail/hash_table.hpp), policy and expiry
// heap. A hit takes its shard's lock *shared* and records the access in a
// lossy read buffer (BP-Wrapper, see detail/read_buffer.hpp) instead of
// reordering the policy's lists. The reader side of the lock is striped: a
// thread enters, counts and records through a stripe of its own, so readers
// on different cores do not pass cache lines back and forth, even on one
// shard; the hit that fills its stripe's buffer replays it into the policy
// (if no other reader of the shard is replaying one). Writes take the shard
// lock exclusively, replay buffered reads into the policy, sweep a few
// expired entries, then insert and evict. There is no global lock and no
// background thread. The key is hashed once per operation.
//
// Expiry. An entry expires `expire_after_write` after its last write and/or
// `expire_after_access` after its last read or write, or at a per-entry TTL
// given to put(). Reads check the deadline, so an expired entry is never
// returned; writes sweep expired entries from a per-shard deadline heap
// (at most 16 per write), and a read that finds one removes it. cleanup()
// sweeps everything now, for a caller that wants memory back from an idle cache.
//
// Single flight. get_or_load(key, loader) returns the cached value, or runs
// loader() once for all concurrent callers of that key: the first caller runs
// it, the others wait for and share its outcome (stats().coalesced_waits). A
// value is cached; a rejection (loader returned a keel::rejection) or an
// exception is not — every waiter gets it (the exception is rethrown in each
// waiter) and the next call loads again, unless negative_ttl > 0, which
// remembers rejections that long. begin_load(key) is the non-blocking form: it
// returns a shared_load handle and, to exactly one caller, a load_permit to
// complete when its asynchronous call finishes. An erase(), put() or clear()
// of the key while it loads wins: the loaded value is handed to the waiters
// but not cached.
//
// Removal listener. Called as listener(key, value, cause) for every entry that
// leaves (evicted, expired, erased, replaced), while the shard is locked: keep
// it short and do not call back into the cache. If it throws, the operation
// still completes and leaves the cache consistent; the first exception is then
// rethrown to the caller of the operation that triggered the removal.
#pragma once

#include <keel/cache/cache_config.hpp>
#include <keel/cache/detail/entry_list.hpp>
#include <keel/cache/detail/expiry_heap.hpp>
#include <keel/cache/detail/hash_table.hpp>
#include <keel/cache/detail/shard_lock.hpp>
#include <keel/cache/eviction_policy.hpp>
#include <keel/cache/lru.hpp>
#include <keel/cache/shared_load.hpp>
#include <keel/cache/w_tinylfu.hpp>
#include <keel/core/clock.hpp>
#include <keel/core/config.hpp>
#include <keel/core/detail/cache_line.hpp>
#include <keel/core/detail/fatal.hpp>
#include <keel/core/detail/saturate.hpp>
#include <keel/core/permit.hpp>
#include <keel/core/result.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>

namespace keel {

namespace detail {

inline constexpr std::int64_t no_deadline = i64_max;

/// MurmurHash3's 64-bit finaliser: std::hash of an integer is the identity,
/// which would put consecutive keys in consecutive shards and sketch blocks.
constexpr std::uint64_t mix_hash(std::uint64_t h) noexcept {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  return h ^ (h >> 33);
}

template <class Hash, class KeyEqual>
inline constexpr bool transparent_lookup = requires {
  typename Hash::is_transparent;
  typename KeyEqual::is_transparent;
};

/// The first exception a removal listener threw during one operation; it is
/// rethrown once the operation has finished and released its lock.
struct listener_error {
#if KEEL_HAS_EXCEPTIONS
  std::exception_ptr first;
  void rethrow() const {
    if (first) std::rethrow_exception(first);
  }
#else
  void rethrow() const noexcept {}
#endif
};

inline std::size_t default_shards(std::size_t capacity) noexcept {
  const std::size_t cores = std::max<std::size_t>(1, std::thread::hardware_concurrency());
  std::size_t n = std::bit_ceil(8 * cores);
  while (n > 1 && capacity / n < 32) n /= 2;
  return n;
}

}  // namespace detail

template <class Key, class Value, eviction_policy Policy = w_tinylfu, clock Clock = std::chrono::steady_clock,
          class Hash = std::hash<Key>, class KeyEqual = std::equal_to<Key>, class Weigher = unit_weigher>
class cache {
  static_assert(std::is_copy_constructible_v<Value>,
                "keel::cache: Value must be copy constructible (get() returns a copy); for large values store "
                "std::shared_ptr<const T>");
  static_assert(std::is_invocable_r_v<std::size_t, const Weigher&, const Key&, const Value&>,
                "keel::cache: the weigher must be callable as weigher(const Key&, const Value&) -> std::size_t");
  static_assert(std::is_invocable_r_v<std::size_t, const Hash&, const Key&>,
                "keel::cache: Hash must be callable as hash(const Key&) -> std::size_t");

  template <class K>
  static constexpr bool lookup_key = detail::transparent_lookup<Hash, KeyEqual> && !std::is_same_v<K, Key>;

 public:
  using key_type = Key;
  using mapped_type = Value;
  using clock_type = Clock;
  using removal_listener = std::function<void(const Key&, const Value&, removal_cause)>;

  class load_permit;
  struct load_ticket;

  explicit cache(const cache_config& cfg, Clock clk = Clock{}, Weigher weigher = Weigher{},
                 removal_listener on_removal = {})
      : clock_(std::move(clk)), weigher_(std::move(weigher)), on_removal_(std::move(on_removal)) {
    detail::require_config(cfg.capacity >= 1, "keel::cache: capacity must be at least 1");
    detail::require_config(cfg.shards == 0 || std::has_single_bit(cfg.shards),
                           "keel::cache: shards must be a power of two (or 0 to choose automatically)");
    detail::require_config(cfg.shards <= cfg.capacity, "keel::cache: shards must not exceed capacity");
    detail::require_config(cfg.expire_after_write.count() >= 0, "keel::cache: expire_after_write must not be negative");
    detail::require_config(cfg.expire_after_access.count() >= 0,
                           "keel::cache: expire_after_access must not be negative");
    detail::require_config(cfg.negative_ttl.count() >= 0, "keel::cache: negative_ttl must not be negative");
    capacity_ = cfg.capacity;
    write_ttl_ = cfg.expire_after_write.count();
    access_ttl_ = cfg.expire_after_access.count();
    negative_ttl_ = cfg.negative_ttl.count();
    shard_count_ = cfg.shards != 0 ? cfg.shards : detail::default_shards(cfg.capacity);
    shards_ = std::make_unique<std::optional<shard>[]>(shard_count_);
    const std::size_t stripes = detail::reader_stripes();
    for (std::size_t i = 0; i < shard_count_; ++i) {
      shards_[i].emplace(capacity_ / shard_count_ + (i < capacity_ % shard_count_ ? 1 : 0), stripes);
    }
  }

  cache(const cache&) = delete;
  cache& operator=(const cache&) = delete;

  // --- reads ------------------------------------------------------------------

  /// The value for `key`, or nullopt when absent or expired.
  std::optional<Value> get(const Key& key) { return get_impl(key); }
  template <class K>
  requires lookup_key<K> std::optional<Value> get(const K& key) { return get_impl(key); }

  // --- writes -----------------------------------------------------------------

  /// Stores `value` for `key` (replacing any value), expiring per the config.
  void put(Key key, Value value) { put_impl(std::move(key), std::move(value), std::nullopt); }

  /// Stores `value` for `key`, expiring `ttl` from now instead of after
  /// expire_after_write (expire_after_access still applies). ttl <= 0 stores an
  /// entry that is already expired: it is never returned.
  template <class Rep, class Period>
  void put(Key key, Value value, std::chrono::duration<Rep, Period> ttl) {
    put_impl(std::move(key), std::move(value), std::chrono::duration_cast<std::chrono::nanoseconds>(ttl).count());
  }

  /// Removes `key`; true if an entry was removed. A load of `key` in flight
  /// completes for its waiters but is not cached.
  bool erase(const Key& key) { return erase_impl(key); }
  template <class K>
  requires lookup_key<K>
  bool erase(const K& key) { return erase_impl(key); }

  /// Removes every entry (listener cause: erased). Loads in flight complete for
  /// their waiters but are not cached.
  void clear() {
    detail::listener_error err;
    for (std::size_t i = 0; i < shard_count_; ++i) {
      shard& s = *shards_[i];
      write_section section(*this, s, err);
      for (auto& f : s.flights) f.second->invalidated = true;
      if (on_removal_) {
        s.table.for_each([&](node& n) {
          if (n.value.has_value()) notify(err, n.key, *n.value, removal_cause::erased);
        });
      }
      s.policy.clear();
      s.heap.clear();
      s.table.clear();
    }
    err.rethrow();
  }

  /// Removes every expired entry now (writes do this a few entries at a time).
  void cleanup() {
    detail::listener_error err;
    for (std::size_t i = 0; i < shard_count_; ++i) {
      shard& s = *shards_[i];
      write_section section(*this, s, err);
      sweep(s, section.now(), std::numeric_limits<std::size_t>::max(), err);
    }
    err.rethrow();
  }

  // --- loading ----------------------------------------------------------------

  /// The cached value, or the outcome of loader() run once for all concurrent
  /// callers of `key`. loader returns Value or keel::result<Value>; see the
  /// header comment for what is cached and what waiters receive.
  template <class Loader>
  result<Value> get_or_load(const Key& key, Loader&& loader) {
    return get_or_load_impl(key, loader);
  }
  template <class K, class Loader>
  requires lookup_key<K> result<Value> get_or_load(const K& key, Loader&& loader) {
    return get_or_load_impl(key, loader);
  }

  /// Non-blocking single flight: ticket.result is ready at once on a hit;
  /// otherwise exactly one concurrent caller gets an active ticket.permit and
  /// must complete it (a dropped permit fails the load for every waiter with
  /// errc::upstream_failure, "load abandoned"; nothing is cached).
  load_ticket begin_load(const Key& key) { return begin_load_impl(key); }
  template <class K>
  requires lookup_key<K> load_ticket begin_load(const K& key) { return begin_load_impl(key); }

  // --- observation ------------------------------------------------------------

  /// Entries held (remembered failures included). Exact when no write runs.
  std::size_t size() const noexcept { return sum(&shard::published_size); }
  /// Total weight held; never above capacity().
  std::size_t weight() const noexcept { return sum(&shard::published_weight); }
  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t shard_count() const noexcept { return shard_count_; }

  cache_stats stats() const noexcept {
    cache_stats st;
    for (std::size_t i = 0; i < shard_count_; ++i) {
      const shard& s = *shards_[i];
      st.hits += s.mutex.hits() + s.locked_hits.load(std::memory_order_relaxed);
      st.misses += s.mutex.misses() + s.misses.load(std::memory_order_relaxed);
      st.evictions += s.evictions.load(std::memory_order_relaxed);
      st.expirations += s.expirations.load(std::memory_order_relaxed);
      st.loads += s.loads.load(std::memory_order_relaxed);
      st.load_failures += s.load_failures.load(std::memory_order_relaxed);
      st.coalesced_waits += s.coalesced.load(std::memory_order_relaxed);
      st.size += s.published_size.load(std::memory_order_relaxed);
      st.weight += s.published_weight.load(std::memory_order_relaxed);
    }
    return st;
  }

  /// Calls check(shard_capacity, shard_weight, consistent) for every shard under
  /// its lock; `consistent` is true when the policy's weight, the entries and
  /// the expiry heap agree. For tests and debugging; takes every lock in turn.
  template <class Check>
  void inspect(Check&& check) {
    for (std::size_t i = 0; i < shard_count_; ++i) {
      shard& s = *shards_[i];
      std::unique_lock lock(s.mutex);
      std::size_t total = 0;
      std::size_t timed = 0;
      s.table.for_each([&](const node& n) {
        total += n.weight;
        if (n.heap_index != detail::expiry_entry::npos) ++timed;
      });
      check(s.capacity, total, total == s.policy.weight() && timed == s.heap.size() && total <= s.capacity);
    }
  }

  /// Calls visit(const Policy&) for every shard's eviction policy under the
  /// shard's lock (tests and debugging: e.g. a policy's memory_bytes()).
  template <class Visit>
  void inspect_policies(Visit&& visit) {
    for (std::size_t i = 0; i < shard_count_; ++i) {
      shard& s = *shards_[i];
      std::unique_lock lock(s.mutex);
      visit(std::as_const(s.policy));
    }
  }

  // --- the permit of begin_load -----------------------------------------------

  /// The right and duty to load one key. Move-only; complete() once.
  class load_permit {
   public:
    load_permit() noexcept = default;
    load_permit(load_permit&&) noexcept = default;
    load_permit& operator=(load_permit&& other) noexcept { return detail::replace_permit(*this, std::move(other)); }
    ~load_permit() { abandon(); }

    bool active() const noexcept { return owner_.active(); }
    const Key& key() const noexcept { return *key_; }

    /// Ends the load: a value is cached and handed to every waiter; a rejection
    /// is handed to every waiter and cached only if negative_ttl > 0.
    void complete(const result<Value>& outcome) {
      if (cache* c = owner_.take()) c->finish_load(*key_, flight_, outcome);
    }

   private:
    friend class cache;
    load_permit(cache* owner, Key key, std::shared_ptr<detail::load_flight<Value>> f)
        : owner_(owner), key_(std::move(key)), flight_(std::move(f)) {}

#if KEEL_HAS_EXCEPTIONS
    void fail(std::exception_ptr error) {
      if (cache* c = owner_.take()) c->fail_load(*key_, flight_, std::move(error));
    }
#endif
    void abandon() noexcept {
      if (cache* c = owner_.take()) c->abandon_load(*key_, flight_);
    }

    detail::permit_link<cache> owner_;
    std::optional<Key> key_;
    std::shared_ptr<detail::load_flight<Value>> flight_;
  };

  /// What begin_load returns: the shared outcome, and — to the one caller that
  /// must run the load — an active permit.
  struct load_ticket {
    shared_load<Value> result;
    load_permit permit;
  };

 private:
  // An entry: the key, the value (or a remembered rejection), its deadlines,
  // the policy's hooks and its expiry heap slot, in the shard's hash table.
  //
  // What a lookup and a hit look at comes first (node_head): for small keys
  // and values (an int64 key and value: 64 bytes) a hit reads one cache line
  // of the node. Nodes are cache-line aligned, so that this line is never
  // shared with another node, whose policy hooks a drain may be writing.
  struct node;
  struct node_head {
    template <class K, class... Args>
    explicit node_head(K&& k, Args&&... args) : key(std::forward<K>(k)), value(std::forward<Args>(args)...) {}

    node* chain = nullptr;  // the hash table's
    std::uint32_t tag = 0;  // the hash table's
    bool expires = false;   // deadline() != no_deadline
    Key key;
    result<Value> value;
    std::int64_t write_deadline = detail::no_deadline;
    std::atomic<std::int64_t> access_deadline{detail::no_deadline};  // moved by readers under the shared lock
  };
  struct alignas(detail::cache_line) node : node_head, detail::policy_entry, detail::expiry_entry {
    template <class K, class... Args>
    node(std::uint64_t h, K&& k, Args&&... args) : node_head(std::forward<K>(k), std::forward<Args>(args)...) {
      this->hash = h;
    }

    std::int64_t deadline() const noexcept {
      return std::min(this->write_deadline, this->access_deadline.load(std::memory_order_relaxed));
    }
  };

  using flight_map = std::unordered_map<Key, std::shared_ptr<detail::load_flight<Value>>, Hash, KeyEqual>;

  struct alignas(detail::cache_line) shard {
    shard(std::size_t cap, std::size_t stripes) : mutex(stripes), policy(cap), capacity(cap) {}

    // Touched by readers: the lock, whose stripes hold the read buffers and
    // the readers' hit and miss counts.
    detail::shard_lock mutex;

    // The policy belongs to the holder of the exclusive lock, or else to the
    // one reader that set `draining` (see read()).
    alignas(detail::cache_line) std::atomic<bool> draining{false};
    Policy policy;

    // Touched under the exclusive lock only (counters are atomics so that
    // stats() can read them without locking).
    std::size_t capacity;
    detail::hash_table<node> table;
    detail::expiry_heap heap;
    flight_map flights;
    std::atomic<std::size_t> published_size{0};
    std::atomic<std::size_t> published_weight{0};
    std::atomic<std::uint64_t> locked_hits{0};
    std::atomic<std::uint64_t> misses{0};  // found by begin_load under the exclusive lock
    std::atomic<std::uint64_t> evictions{0};
    std::atomic<std::uint64_t> expirations{0};
    std::atomic<std::uint64_t> loads{0};
    std::atomic<std::uint64_t> load_failures{0};
    std::atomic<std::uint64_t> coalesced{0};
  };

  static void bump(std::atomic<std::uint64_t>& counter) noexcept {  // single writer: the lock holder
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  // The exclusive side of a shard: replays buffered reads, sweeps a few expired
  // entries, and on exit publishes size and weight before unlocking. Reads the
  // clock once, when first needed: a write that sets no deadline in a shard
  // with nothing to expire does not read it at all.
  class write_section {
   public:
    write_section(cache& c, shard& s, detail::listener_error& err) : cache_(c), shard_(s), lock_(s.mutex) {
      s.mutex.drain([&](detail::policy_entry& e) { s.policy.on_hit(e); });
      if (!s.heap.empty()) c.sweep(s, now(), sweep_budget, err);
    }
    ~write_section() {
      shard_.published_size.store(shard_.table.size(), std::memory_order_relaxed);
      shard_.published_weight.store(shard_.policy.weight(), std::memory_order_relaxed);
    }
    write_section(const write_section&) = delete;
    write_section& operator=(const write_section&) = delete;
    std::int64_t now() noexcept {
      if (!now_) now_ = detail::now_ns(cache_.clock_);
      return *now_;
    }

   private:
    cache& cache_;
    shard& shard_;
    std::unique_lock<detail::shard_lock> lock_;
    std::optional<std::int64_t> now_;
  };

  static constexpr std::size_t sweep_budget = 16;

  template <class K>
  std::uint64_t hash_of(const K& key) const {
    return detail::mix_hash(static_cast<std::uint64_t>(hash_(key)));
  }
  // The shard by the hash's high bits: a shard's table picks buckets by its low bits.
  shard& shard_for(std::uint64_t h) const noexcept { return *shards_[std::rotl(h, 24) & (shard_count_ - 1)]; }

  template <class K>
  node* find(const shard& s, std::uint64_t h, const K& key) const {
    return s.table.find(h, [&](const node& n) { return key_eq_(n.key, key); });
  }

  std::size_t sum(std::atomic<std::size_t> shard::*field) const noexcept {
    std::size_t total = 0;
    for (std::size_t i = 0; i < shard_count_; ++i) total += ((*shards_[i]).*field).load(std::memory_order_relaxed);
    return total;
  }

  // Is `n` alive at this moment? Refreshes its access deadline if so. Safe
  // under the shared lock: the deadline it moves is atomic.
  bool alive(node& n) const noexcept {
    if (!n.expires) return true;
    const std::int64_t now = detail::now_ns(clock_);
    if (now >= n.deadline()) return false;
    if (access_ttl_ > 0) refresh_access(n, now);
    return true;
  }

  // Moves the access deadline later, never earlier: a clock that steps back
  // counts as no time passed. Two readers racing may both store; either value
  // is "now + ttl" of a read that happened, so the loss is a few nanoseconds.
  void refresh_access(node& n, std::int64_t now) const noexcept {
    const std::int64_t next = detail::sat_add(now, access_ttl_);
    if (next > n.access_deadline.load(std::memory_order_relaxed))
      n.access_deadline.store(next, std::memory_order_relaxed);
  }

  // The read path: the shard lock shared, copy the value out, record the hit
  // in the reader's stripe. Out is Value (get: a remembered failure is a miss,
  // and misses are counted) or result<Value> (begin_load: a remembered failure
  // is returned; a miss goes on to the write path, which counts it).
  template <class Out, class K>
  std::optional<Out> read(shard& s, std::uint64_t h, const K& key) {
    constexpr bool failures_hit = std::is_same_v<Out, result<Value>>;
    std::optional<Out> out;
    bool expired = false;
    {
      detail::shard_lock::reader reader(s.mutex);
      node* const found = find(s, h, key);
      if (found != nullptr && (failures_hit || found->value.has_value())) {
        node& n = *found;
        if (alive(n)) {
          if constexpr (failures_hit) {
            out.emplace(n.value);
          } else {
            out.emplace(*n.value);
          }
          // The hit that fills the stripe's buffer replays it, unless another
          // reader of this shard is replaying one right now (then the buffer
          // drops hits until a later hit or a writer drains it).
          if (reader.record(&n) && !s.draining.exchange(true, std::memory_order_acquire)) {
            reader.drain([&](detail::policy_entry& e) { s.policy.on_hit(e); });
            s.draining.store(false, std::memory_order_release);
          }
        } else {
          expired = true;
        }
      }
      if constexpr (!failures_hit) {
        if (!out) reader.count_miss();
      }
    }
    if (expired) remove_expired(s, h, key);
    return out;
  }

  template <class K>
  std::optional<Value> get_impl(const K& key) {
    const std::uint64_t h = hash_of(key);
    return read<Value>(shard_for(h), h, key);
  }

  template <class K>
  void remove_expired(shard& s, std::uint64_t h, const K& key) {
    detail::listener_error err;
    {
      write_section section(*this, s, err);
      node* const n = find(s, h, key);
      if (n != nullptr && section.now() >= n->deadline()) remove(s, *n, removal_cause::expired, err);
    }
    err.rethrow();
  }

  void notify(detail::listener_error& err, const Key& key, const Value& value, removal_cause cause) {
    if (!on_removal_) return;
#if KEEL_HAS_EXCEPTIONS
    try {
      on_removal_(key, value, cause);
    } catch (...) {
      if (!err.first) err.first = std::current_exception();
    }
#else
    (void)err;
    on_removal_(key, value, cause);
#endif
  }

  void remove(shard& s, node& n, removal_cause cause, detail::listener_error& err) {
    s.policy.on_remove(n);
    if (n.heap_index != detail::expiry_entry::npos) s.heap.erase(n);
    if (cause == removal_cause::evicted) bump(s.evictions);
    if (cause == removal_cause::expired) bump(s.expirations);
    if (n.value.has_value()) notify(err, n.key, *n.value, cause);
    s.table.erase(n);
  }

  void evict(shard& s, detail::listener_error& err) {
    while (detail::policy_entry* v = s.policy.victim()) remove(s, static_cast<node&>(*v), removal_cause::evicted, err);
  }

  void sweep(shard& s, std::int64_t now, std::size_t budget, detail::listener_error& err) {
    for (; budget > 0; --budget) {
      detail::expiry_entry* top = s.heap.top();
      if (top == nullptr || top->heap_deadline > now) return;
      node& n = static_cast<node&>(*top);
      if (const std::int64_t d = n.deadline(); d > now) {
        s.heap.update(n, d);  // read since it was filed (expire-after-access): re-file
      } else {
        remove(s, n, removal_cause::expired, err);
      }
    }
  }

  // Sets the deadlines of a node just written and files it in the expiry heap.
  void set_deadlines(shard& s, node& n, write_section& section, std::optional<std::int64_t> write_ttl) {
    const std::int64_t ttl = write_ttl.value_or(write_ttl_);
    const bool by_write = write_ttl || ttl > 0;
    const std::int64_t now = by_write || access_ttl_ > 0 ? section.now() : 0;
    n.write_deadline = by_write ? detail::sat_add(now, ttl) : detail::no_deadline;
    n.access_deadline.store(access_ttl_ > 0 ? detail::sat_add(now, access_ttl_) : detail::no_deadline,
                            std::memory_order_relaxed);
    const std::int64_t d = n.deadline();
    n.expires = d != detail::no_deadline;
    const bool filed = n.heap_index != detail::expiry_entry::npos;
    if (n.expires) {
      filed ? s.heap.update(n, d) : s.heap.push(n, d);
    } else if (filed) {
      s.heap.erase(n);
    }
  }

  template <class K>
  void invalidate_flight(shard& s, const K& key) {
    if (s.flights.empty()) return;
    if (const auto f = s.flights.find(key); f != s.flights.end()) f->second->invalidated = true;
  }

  // Inserts or replaces `key` with `value` (a Value or a rejection) under the
  // exclusive lock, then evicts down to capacity.
  template <class K, class V>
  void store(shard& s, std::uint64_t h, K&& key, V&& value, std::size_t w, write_section& section,
             std::optional<std::int64_t> write_ttl, detail::listener_error& err) {
    node* const old = find(s, h, key);
    if (w > s.capacity) {  // can never fit: drop it (and the value it would have replaced)
      if (old != nullptr) remove(s, *old, removal_cause::replaced, err);
      bump(s.evictions);
      if constexpr (std::is_same_v<std::remove_cvref_t<V>, Value>) notify(err, key, value, removal_cause::evicted);
      return;
    }
    if (old != nullptr) {
      node& n = *old;
      // Room first: a replacement that gains a deadline files the entry in
      // the heap, and that must not allocate (and maybe throw) after the
      // value and the policy's weight have changed.
      s.heap.reserve_one();
      if (n.value.has_value()) notify(err, n.key, *n.value, removal_cause::replaced);
      const std::size_t old_weight = n.weight;
      n.value = result<Value>(std::forward<V>(value));
      n.weight = w;
      s.policy.on_update(n, old_weight);
      set_deadlines(s, n, section, write_ttl);
    } else {
      // Everything that may throw (growing the table and the heap, building
      // the node: allocation, copying the key and value) comes first.
      s.table.reserve_one();
      s.heap.reserve_one();
      node& n = *s.table.make(h, std::forward<K>(key), std::forward<V>(value));
      n.weight = w;
      set_deadlines(s, n, section, write_ttl);  // cannot throw now
      s.table.insert(n);
      s.policy.on_insert(n);
    }
    evict(s, err);
  }

  std::size_t weigh(const Key& key, const Value& value) const {
    return std::max<std::size_t>(1, static_cast<std::size_t>(std::invoke(weigher_, key, value)));
  }

  void put_impl(Key&& key, Value&& value, std::optional<std::int64_t> ttl) {
    const std::uint64_t h = hash_of(key);
    const std::size_t w = weigh(key, value);  // user code runs before any lock is taken
    shard& s = shard_for(h);
    detail::listener_error err;
    {
      write_section section(*this, s, err);
      invalidate_flight(s, key);
      store(s, h, std::move(key), std::move(value), w, section, ttl, err);
    }
    err.rethrow();
  }

  template <class K>
  bool erase_impl(const K& key) {
    const std::uint64_t h = hash_of(key);
    shard& s = shard_for(h);
    detail::listener_error err;
    bool erased = false;
    {
      write_section section(*this, s, err);
      invalidate_flight(s, key);
      if (node* const n = find(s, h, key)) {
        remove(s, *n, removal_cause::erased, err);
        erased = true;
      }
    }
    err.rethrow();
    return erased;
  }

  template <class K>
  load_ticket begin_load_impl(const K& key) {
    const std::uint64_t h = hash_of(key);
    shard& s = shard_for(h);
    if (auto hit = read<result<Value>>(s, h, key))
      return load_ticket{shared_load<Value>(std::move(*hit)), load_permit{}};

    detail::listener_error err;
    std::optional<load_ticket> ticket;
    {
      write_section section(*this, s, err);
      node* n = find(s, h, key);
      if (n != nullptr && n->expires && section.now() >= n->deadline()) {
        remove(s, *n, removal_cause::expired, err);
        n = nullptr;
      }
      if (n != nullptr) {  // filled while we took the lock
        s.policy.on_hit(*n);
        bump(s.locked_hits);
        if (access_ttl_ > 0) refresh_access(*n, section.now());
        ticket.emplace(load_ticket{shared_load<Value>(n->value), load_permit{}});
      } else {
        bump(s.misses);
        if (const auto f = s.flights.find(key); f != s.flights.end()) {
          bump(s.coalesced);
          ticket.emplace(load_ticket{shared_load<Value>(f->second), load_permit{}});
        } else {
          auto f2 = std::make_shared<detail::load_flight<Value>>();
          s.flights.emplace(Key(key), f2);
          bump(s.loads);
          ticket.emplace(load_ticket{shared_load<Value>(f2), load_permit(this, Key(key), f2)});
        }
      }
    }
    err.rethrow();
    return std::move(*ticket);
  }

  template <class K, class Loader>
  result<Value> get_or_load_impl(const K& key, Loader& loader) {
    using R = std::invoke_result_t<Loader&>;
    static_assert(std::is_same_v<std::remove_cvref_t<R>, result<Value>> || std::is_convertible_v<R, Value>,
                  "keel::cache::get_or_load: the loader must return Value or keel::result<Value>");
    load_ticket ticket = begin_load_impl(key);
    if (!ticket.permit.active()) return ticket.result.wait();
#if KEEL_HAS_EXCEPTIONS
    try {
      result<Value> r(std::invoke(loader));
      ticket.permit.complete(r);
      return r;
    } catch (...) {
      ticket.permit.fail(std::current_exception());  // no-op if complete() itself threw
      throw;
    }
#else
    result<Value> r(std::invoke(loader));
    ticket.permit.complete(r);
    return r;
#endif
  }

  void finish_load(const Key& key, const std::shared_ptr<detail::load_flight<Value>>& f, const result<Value>& outcome) {
    const std::uint64_t h = hash_of(key);
    shard& s = shard_for(h);
    detail::listener_error err;
    const std::size_t w = outcome.has_value() ? weigh(key, *outcome) : 1;
    auto commit = [&] {
      write_section section(*this, s, err);
      forget_flight(s, key, f);
      if (!outcome.has_value()) bump(s.load_failures);
      if (f->invalidated) return;
      if (outcome.has_value()) {
        store(s, h, key, *outcome, w, section, std::nullopt, err);
      } else if (negative_ttl_ > 0) {
        store(s, h, key, outcome.error(), w, section, negative_ttl_, err);
      }
    };
#if KEEL_HAS_EXCEPTIONS
    try {
      commit();
    } catch (...) {
      f->complete(outcome);  // waiters still get the outcome
      throw;
    }
#else
    commit();
#endif
    f->complete(outcome);
    err.rethrow();
  }

#if KEEL_HAS_EXCEPTIONS
  void fail_load(const Key& key, const std::shared_ptr<detail::load_flight<Value>>& f, std::exception_ptr error) {
    shard& s = shard_for(hash_of(key));
    {
      std::unique_lock lock(s.mutex);
      forget_flight(s, key, f);
      bump(s.load_failures);
    }
    f->fail(std::move(error));
  }
#endif

  void abandon_load(const Key& key, const std::shared_ptr<detail::load_flight<Value>>& f) noexcept {
    shard& s = shard_for(hash_of(key));
    {
      std::unique_lock lock(s.mutex);
      forget_flight(s, key, f);
      bump(s.load_failures);
    }
    f->complete(rejection{errc::upstream_failure, std::nullopt, "load abandoned"});
  }

  static void forget_flight(shard& s, const Key& key, const std::shared_ptr<detail::load_flight<Value>>& f) {
    if (const auto it = s.flights.find(key); it != s.flights.end() && it->second == f) s.flights.erase(it);
  }

  [[no_unique_address]] Clock clock_;
  [[no_unique_address]] Hash hash_{};
  [[no_unique_address]] KeyEqual key_eq_{};
  [[no_unique_address]] Weigher weigher_;
  removal_listener on_removal_;
  std::size_t capacity_ = 0;
  std::int64_t write_ttl_ = 0;
  std::int64_t access_ttl_ = 0;
  std::int64_t negative_ttl_ = 0;
  std::size_t shard_count_ = 1;
  std::unique_ptr<std::optional<shard>[]> shards_;
};

}  // namespace keel
