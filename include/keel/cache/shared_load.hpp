// keel/cache/shared_load.hpp — the result of a load that other callers share.
//
// Single flight (after Go's golang.org/x/sync/singleflight): when many callers
// miss the same key at once, one of them (the leader) runs the load and the
// others wait for its outcome instead of repeating it. shared_load<V> is the
// handle a caller holds: ready at once on a cache hit, otherwise completed by
// the leader with a value or a rejection. Blocking callers wait(); async
// callers register on_ready(callback) and return to their event loop.
//
//   auto ticket = cache.begin_load(key);
//   if (ticket.permit.active()) start_model_call(key, std::move(ticket.permit));
//   ticket.result.on_ready([](const keel::result<embedding>& r) { reply(r); });
#pragma once

#include <keel/core/config.hpp>
#include <keel/core/result.hpp>

#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace keel {

namespace detail {

/// One in-flight load: its outcome, and who waits for it.
template <class Value>
class load_flight {
 public:
  using callback = std::function<void(const result<Value>&)>;

  void complete(const result<Value>& outcome) { finish(outcome, {}); }

#if KEEL_HAS_EXCEPTIONS
  /// The leader's loader threw: waiters rethrow `error`; callbacks see upstream_failure.
  void fail(std::exception_ptr error) {
    finish(rejection{errc::upstream_failure, std::nullopt, "loader threw"}, std::move(error));
  }
#endif

  bool ready() const {
    std::lock_guard lock(mutex_);
    return outcome_.has_value();
  }

  result<Value> wait() const {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return outcome_.has_value(); });
#if KEEL_HAS_EXCEPTIONS
    if (error_) std::rethrow_exception(error_);
#endif
    return *outcome_;
  }

  void on_ready(callback cb) {
    std::unique_lock lock(mutex_);
    if (!outcome_) {
      callbacks_.push_back(std::move(cb));
      return;
    }
    lock.unlock();
    cb(*outcome_);  // outcome_ is never written again once set
  }

  /// Set (under the cache shard's lock) when the key is erased or written while
  /// this load runs: its value is then handed to waiters but not cached.
  bool invalidated = false;

 private:
  void finish(const result<Value>& outcome, [[maybe_unused]] std::exception_ptr error) {
    std::vector<callback> callbacks;
    {
      std::lock_guard lock(mutex_);
      if (outcome_) return;  // completed already
      outcome_.emplace(outcome);
#if KEEL_HAS_EXCEPTIONS
      error_ = std::move(error);
#endif
      callbacks.swap(callbacks_);
    }
    done_.notify_all();
    for (auto& cb : callbacks) cb(*outcome_);
  }

  mutable std::mutex mutex_;
  mutable std::condition_variable done_;
  std::optional<result<Value>> outcome_;
#if KEEL_HAS_EXCEPTIONS
  std::exception_ptr error_;
#endif
  std::vector<callback> callbacks_;
};

}  // namespace detail

/// A value that is either already known (a hit) or being loaded by someone.
template <class Value>
class shared_load {
 public:
  /// Already known: a hit, or a cached rejection.
  explicit shared_load(result<Value> known) : known_(std::move(known)) {}
  explicit shared_load(std::shared_ptr<detail::load_flight<Value>> pending) : pending_(std::move(pending)) {}

  /// True when wait() would not block.
  bool ready() const { return known_.has_value() || pending_->ready(); }

  /// The value or rejection, blocking until the leader completes. If the
  /// leader's loader threw, that exception is rethrown here.
  result<Value> wait() const { return known_ ? *known_ : pending_->wait(); }

  /// Calls cb(result) once the outcome is known: at once (on this thread) if it
  /// is, else on the thread that completes the load. A loader that threw
  /// reaches callbacks as errc::upstream_failure. cb must not throw.
  template <class Callback>
  void on_ready(Callback&& cb) const {
    if (known_) {
      std::forward<Callback>(cb)(std::as_const(*known_));
    } else {
      pending_->on_ready(std::forward<Callback>(cb));
    }
  }

 private:
  std::optional<result<Value>> known_;
  std::shared_ptr<detail::load_flight<Value>> pending_;
};

}  // namespace keel
