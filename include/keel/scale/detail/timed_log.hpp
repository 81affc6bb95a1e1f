// keel/scale/detail/timed_log.hpp — the autoscaler's short memories.
//
// HPA keeps three lists per target: the recommendations of the last
// stabilisation window, and the scale-up and scale-down events of the last
// policy period. Each entry is a (time, value) pair and only entries younger
// than a horizon matter, so one small type serves all of them: append, drop
// what is too old, and fold over the entries newer than a cutoff. The
// autoscaler runs every few seconds on a cold path; a vector that is pruned
// in place reaches its steady size after one window and stops allocating.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace keel::detail {

template <class Value>
class timed_log {
 public:
  struct entry {
    std::int64_t at;  ///< nanoseconds on the autoscaler's time line
    Value value;
  };

  void push(std::int64_t at, Value value) { entries_.push_back(entry{at, value}); }

  /// Forgets every entry at or before `cutoff`.
  void drop_through(std::int64_t cutoff) {
    std::erase_if(entries_, [cutoff](const entry& e) { return e.at <= cutoff; });
  }

  /// Calls f(value) for every entry strictly after `cutoff` (HPA's
  /// timestamp.After(cutoff)).
  template <class F>
  void for_each_after(std::int64_t cutoff, F&& f) const {
    for (const entry& e : entries_)
      if (e.at > cutoff) f(e.value);
  }

  void clear() noexcept { entries_.clear(); }
  std::size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }
  void reserve(std::size_t n) { entries_.reserve(n); }

 private:
  std::vector<entry> entries_;
};

}  // namespace keel::detail
