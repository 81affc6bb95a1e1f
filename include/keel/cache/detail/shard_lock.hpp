// keel/cache/detail/shard_lock.hpp — the reader-writer lock of one cache shard.
//
// Cache hits take it shared, so its shared side must be as cheap as possible:
// one atomic add to enter and one atomic subtract to leave (glibc's
// pthread_rwlock, behind std::shared_mutex, spends about 65 instructions on the
// pair; this lock about 10). Writers are serialised by a std::mutex (so a
// writer waiting for another writer sleeps in the kernel), then announce
// themselves with a flag that stops new readers and wait for the readers
// inside to leave. Waiting uses C++20 atomic wait/notify (a futex on Linux),
// never a spin without bound. Writer-preferring: a stream of readers cannot
// starve a writer.
//
// Meets the Lockable and SharedLockable requirements, so std::unique_lock and
// std::shared_lock work with it.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

namespace keel::detail {

class shard_lock {
 public:
  void lock_shared() noexcept {
    for (;;) {
      const std::uint32_t s = state_.fetch_add(1, std::memory_order_acquire);
      if ((s & writer) == 0) return;
      leave();  // a writer holds or wants the lock: step back and wait for it
      wait_while_writer();
    }
  }
  bool try_lock_shared() noexcept {
    const std::uint32_t s = state_.fetch_add(1, std::memory_order_acquire);
    if ((s & writer) == 0) return true;
    leave();
    return false;
  }
  void unlock_shared() noexcept { leave(); }

  void lock() {
    writers_.lock();
    std::uint32_t s = state_.fetch_or(writer, std::memory_order_acquire) | writer;
    while (s != writer) {  // readers still inside
      state_.wait(s, std::memory_order_acquire);
      s = state_.load(std::memory_order_acquire);
    }
  }
  bool try_lock() {
    if (!writers_.try_lock()) return false;
    std::uint32_t expected = 0;
    if (state_.compare_exchange_strong(expected, writer, std::memory_order_acquire)) return true;
    writers_.unlock();
    return false;
  }
  void unlock() {
    state_.fetch_and(~writer, std::memory_order_release);
    state_.notify_all();  // readers waiting for the writer to finish
    writers_.unlock();
  }

 private:
  static constexpr std::uint32_t writer = 1u << 31;

  void leave() noexcept {
    // The last reader out while a writer waits wakes it.
    if (state_.fetch_sub(1, std::memory_order_release) == writer + 1) state_.notify_all();
  }
  void wait_while_writer() noexcept {
    for (std::uint32_t s = state_.load(std::memory_order_relaxed); s & writer;
         s = state_.load(std::memory_order_relaxed))
      state_.wait(s, std::memory_order_relaxed);
  }

  std::atomic<std::uint32_t> state_{0};  // writer flag | number of readers inside or entering
  std::mutex writers_;
};

}  // namespace keel::detail
