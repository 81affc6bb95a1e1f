// keel/cache/detail/shard_lock.hpp — the reader-writer lock of one cache shard,
// with its read buffers.
//
// Cache hits take it shared, so its shared side must not make cores fight over
// a cache line. A single reader count would: every hit on any key of the shard
// writes it, and with keys spread at random the line moves to the other core
// on most hits, even though the readers never wait for each other. So the
// reader side is *striped* (the "big reader" lock of the Linux kernel, and the
// per-thread probing of Caffeine's StripedBuffer / Java's Striped64): a reader
// registers in one of a few stripes, each alone on its cache lines, chosen by a
// per-thread probe; a thread that finds another reader already in its stripe
// moves to another stripe for its next read, so threads spread out and a hit
// writes only lines that its own thread writes. Each stripe also holds the
// hits' read buffer (detail/read_buffer.hpp) and a miss counter, so recording
// a hit touches no other line either. A reader whose hit fills its stripe's
// buffer drains it itself, still holding the lock shared (the caller makes
// sure one drain at a time holds the policy): other readers go on reading, and
// no writer can destroy a recorded entry meanwhile.
//
// A writer is serialised by a std::mutex (a writer waiting for another writer
// sleeps in the kernel), then sets the writer bit in every stripe, which stops
// new readers there, and waits for the readers inside to leave. Waiting uses
// C++20 atomic wait/notify (a futex on Linux), never an unbounded spin.
// Writer-preferring: a stream of readers cannot starve a writer. Writers pay
// for the striping (one atomic per stripe to enter and to leave); they are the
// rare side.
//
//   detail::shard_lock lock(detail::reader_stripes());
//   { detail::shard_lock::reader r(lock); ... if (r.record(&entry) && /* policy free */) r.drain(on_hit); }
//   { std::unique_lock w(lock); lock.drain(on_hit); ... }
//
// Meets the BasicLockable requirements, so std::unique_lock works with it.
#pragma once

#include <keel/cache/detail/entry_list.hpp>
#include <keel/cache/detail/read_buffer.hpp>
#include <keel/core/detail/cache_line.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <thread>

namespace keel::detail {

/// Stripes per shard: one per core, at least 4 (so that two threads rarely
/// have to move more than once to find a stripe of their own) and at most 8
/// (stripes cost 192 bytes each, in every shard).
inline std::size_t reader_stripes() noexcept {
  return std::clamp<std::size_t>(std::bit_ceil<std::size_t>(std::thread::hardware_concurrency()), 4, 8);
}

// The stripe a thread reads through, as a probe: its low bits pick the stripe.
// 0 means "not chosen yet"; threads start round-robin, so a few threads begin
// on distinct stripes, and move on (a xorshift step) when they meet another.
inline std::atomic<std::uint32_t> next_reader_probe{0};
inline constinit thread_local std::uint32_t reader_probe = 0;

class shard_lock {
  struct alignas(cache_line) stripe {
    std::atomic<std::uint32_t> state{0};  // writer bit | readers inside or entering
    std::atomic<std::uint64_t> misses{0};
    read_buffer reads;
  };

 public:
  explicit shard_lock(std::size_t stripes)
      : mask_(static_cast<std::uint32_t>(stripes - 1)), stripes_(std::make_unique<stripe[]>(stripes)) {}

  /// Holds the lock shared for its lifetime, registered in the calling thread's stripe.
  class reader {
   public:
    explicit reader(shard_lock& lock) noexcept : stripe_(lock.enter()) {}
    ~reader() { leave(stripe_); }
    reader(const reader&) = delete;
    reader& operator=(const reader&) = delete;

    /// Records a hit on `e` for the next drain; true when the stripe's buffer
    /// is full (this hit filled it or was dropped): the caller should drain.
    bool record(policy_entry* e) noexcept { return stripe_.reads.record(e); }
    /// Replays this stripe's recorded hits. One drain at a time: the caller
    /// holds the policy.
    template <class Apply>
    void drain(Apply&& apply) noexcept {
      stripe_.reads.drain(apply);
    }
    /// Counts a miss (one writer per stripe is likely, so this stays local).
    void count_miss() noexcept { stripe_.misses.fetch_add(1, std::memory_order_relaxed); }

   private:
    stripe& stripe_;
  };

  void lock() {
    writers_.lock();
    for (stripe& s : stripes()) s.state.fetch_or(writer, std::memory_order_acquire);
    for (stripe& s : stripes()) {
      for (std::uint32_t v = s.state.load(std::memory_order_acquire); v != writer;
           v = s.state.load(std::memory_order_acquire))
        s.state.wait(v, std::memory_order_acquire);  // readers still inside
    }
  }
  void unlock() {
    for (stripe& s : stripes()) {
      s.state.fetch_and(~writer, std::memory_order_release);
      s.state.notify_all();  // readers waiting for the writer to finish
    }
    writers_.unlock();
  }

  /// Replays every stripe's recorded hits; call with the lock held exclusively.
  template <class Apply>
  void drain(Apply&& apply) noexcept {
    for (stripe& s : stripes()) s.reads.drain(apply);
  }

  /// Hits and misses counted by readers since construction.
  std::uint64_t hits() const noexcept {
    std::uint64_t n = 0;
    for (const stripe& s : stripes()) n += s.reads.recorded();
    return n;
  }
  std::uint64_t misses() const noexcept {
    std::uint64_t n = 0;
    for (const stripe& s : stripes()) n += s.misses.load(std::memory_order_relaxed);
    return n;
  }

 private:
  static constexpr std::uint32_t writer = 1u << 31;

  static std::uint32_t next_probe(std::uint32_t p) noexcept {  // xorshift32: never returns to 0
    p ^= p << 13;
    p ^= p >> 17;
    return p ^ (p << 5);
  }

  std::span<stripe> stripes() const noexcept { return {stripes_.get(), std::size_t{mask_} + 1}; }

  stripe& enter() noexcept {
    std::uint32_t probe = reader_probe;
    if (probe == 0) [[unlikely]]
      probe = reader_probe = next_reader_probe.fetch_add(1, std::memory_order_relaxed) + 1;
    for (;;) {
      stripe& s = stripes_[probe & mask_];
      const std::uint32_t before = s.state.fetch_add(1, std::memory_order_acquire);
      if (before == 0) [[likely]]
        return s;
      if ((before & writer) == 0) {
        reader_probe = next_probe(probe);  // another reader is in this stripe: use another one next time
        return s;
      }
      leave(s);  // a writer holds or wants the lock: step back and wait for it
      for (std::uint32_t v = s.state.load(std::memory_order_relaxed); v & writer;
           v = s.state.load(std::memory_order_relaxed))
        s.state.wait(v, std::memory_order_relaxed);
    }
  }

  static void leave(stripe& s) noexcept {
    // The last reader out while a writer waits wakes it.
    if (s.state.fetch_sub(1, std::memory_order_release) == writer + 1) s.state.notify_all();
  }

  std::uint32_t mask_;
  std::unique_ptr<stripe[]> stripes_;
  std::mutex writers_;
};

}  // namespace keel::detail
