// keel/cache/w_tinylfu.hpp — Window TinyLFU eviction (keel::cache's default).
//
// The policy of Caffeine, after Einziger, Friedman and Manes, "TinyLFU: A Highly
// Efficient Cache Admission Policy" (ACM ToS 2017), re-implemented from the
// paper and Caffeine's published design:
//
//  * A small LRU *window* (1% of capacity to start) takes every new entry, so
//    a burst of fresh keys gets a chance to prove itself.
//  * The *main* area is a segmented LRU: *probation* (entries admitted but not
//    yet read again) and *protected* (read again while on probation; 80% of
//    main). A protected entry pushed out goes back to probation, not out.
//  * When the window overflows and the cache is full, the window's oldest
//    entry (the candidate) competes with probation's oldest (the victim): the
//    one a 4-bit count-min sketch (keel::frequency_sketch) saw more often
//    stays. One-hit wonders and scans lose to the hot set. A candidate that is
//    not more frequent but "warm" (estimate ≥ 6) still wins 1 time in 128, so
//    an attacker who floods hash collisions cannot pin a victim forever
//    (Caffeine's ADMIT_HASHDOS_THRESHOLD defence).
//  * A hill climber resizes the window: every 10 × capacity accesses it
//    compares the sample's hit ratio with the previous sample and keeps
//    stepping the window (6.25% of capacity, decaying by 0.98 a step) the
//    way that helped, restarting the step when the hit ratio moves by 5
//    points. Recency-heavy traffic grows the window towards LRU; frequency-
//    heavy traffic shrinks it. (Caffeine added this in 2.6 — "adaptive
//    W-TinyLFU"; without it loop traces lose to LRU.)
//
//   keel::cache<std::string, embedding> cache({.capacity = 100'000});  // w_tinylfu by default
#pragma once

#include <keel/cache/detail/entry_list.hpp>
#include <keel/cache/eviction_policy.hpp>
#include <keel/cache/frequency_sketch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace keel {

class w_tinylfu {
 public:
  explicit w_tinylfu(std::size_t capacity)
      : capacity_(capacity),
        sketch_(std::min<std::size_t>(capacity, std::size_t{1} << 20)),
        window_size_(static_cast<double>(capacity) * initial_window),
        step_(-static_cast<double>(capacity) * step_percent),
        sample_size_(sketch_.sample_size()) {
    resize_main();
  }

  void on_insert(detail::policy_entry& e) noexcept {
    sketch_.increment(e.hash);
    ++misses_in_sample_;
    e.queue = window;
    window_.push_front(e);
    climb_when_sampled();
  }

  void on_hit(detail::policy_entry& e) noexcept {
    sketch_.increment(e.hash);
    ++hits_in_sample_;
    touch(e);
    climb_when_sampled();
  }

  void on_update(detail::policy_entry& e, std::size_t old_weight) noexcept {
    list_of(e).reweigh(old_weight, e.weight);
    sketch_.increment(e.hash);
    touch(e);
  }

  void on_remove(detail::policy_entry& e) noexcept { list_of(e).erase(e); }

  /// The entry to evict now, or null when the shard is within capacity.
  /// Moves window overflow into the main area on the way.
  detail::policy_entry* victim() noexcept {
    while (window_.weight() > max_window_) {
      detail::policy_entry& candidate = *window_.back();
      // Room in main (or in the cache as a whole): the candidate simply moves on.
      if (weight() <= capacity_ || main_weight() + candidate.weight <= max_main()) {
        window_.erase(candidate);
        candidate.queue = probation;
        probation_.push_front(candidate);
        continue;
      }
      detail::policy_entry* incumbent = probation_.back();
      if (incumbent == nullptr) incumbent = protected_.back();
      if (incumbent == nullptr) return &candidate;  // unreachable while main is over its share
      return admit(candidate, *incumbent) ? incumbent : &candidate;
    }
    if (weight() <= capacity_) return nullptr;
    // The window is within its share but the shard is not (weights grew, or the
    // climber just grew the window): main gives up its least valuable entry.
    if (auto* e = probation_.back()) return e;
    if (auto* e = protected_.back()) return e;
    return window_.back();
  }

  void clear() noexcept {
    window_.clear();
    probation_.clear();
    protected_.clear();
  }

  std::size_t weight() const noexcept { return window_.weight() + main_weight(); }

  /// The window's current share of capacity (moved by the hill climber).
  std::size_t window_capacity() const noexcept { return max_window_; }
  const frequency_sketch& sketch() const noexcept { return sketch_; }

 private:
  enum : std::uint8_t { window = 0, probation = 1, protect = 2 };

  static constexpr double initial_window = 0.01;       // Caffeine: PERCENT_MAIN = 0.99
  static constexpr double protected_share = 0.80;      // PERCENT_MAIN_PROTECTED
  static constexpr double step_percent = 0.0625;       // HILL_CLIMBER_STEP_PERCENT
  static constexpr double step_decay = 0.98;           // HILL_CLIMBER_STEP_DECAY_RATE
  static constexpr double restart_threshold = 0.05;    // HILL_CLIMBER_RESTART_THRESHOLD
  static constexpr unsigned hash_flood_threshold = 6;  // ADMIT_HASHDOS_THRESHOLD

  detail::entry_list& list_of(const detail::policy_entry& e) noexcept {
    return e.queue == window ? window_ : e.queue == probation ? probation_ : protected_;
  }
  std::size_t main_weight() const noexcept { return probation_.weight() + protected_.weight(); }
  std::size_t max_main() const noexcept { return capacity_ - max_window_; }

  void touch(detail::policy_entry& e) noexcept {
    if (e.queue == probation) {  // read again on probation: promote
      probation_.erase(e);
      e.queue = protect;
      protected_.push_front(e);
      demote_protected_overflow();
    } else {
      list_of(e).move_to_front(e);
    }
  }

  void demote_protected_overflow() noexcept {
    while (protected_.weight() > max_protected_ && protected_.size() > 1) {
      detail::policy_entry& e = *protected_.back();
      protected_.erase(e);
      e.queue = probation;
      probation_.push_front(e);
    }
  }

  // TinyLFU admission: the more frequent key stays; see the header comment.
  bool admit(const detail::policy_entry& candidate, const detail::policy_entry& incumbent) noexcept {
    const unsigned c = sketch_.frequency(candidate.hash);
    const unsigned v = sketch_.frequency(incumbent.hash);
    if (c > v) return true;
    if (c < hash_flood_threshold) return false;
    return (next_random() & 127) == 0;
  }

  std::uint64_t next_random() noexcept {  // xorshift64*, fixed seed: simulations repeat
    random_ ^= random_ >> 12;
    random_ ^= random_ << 25;
    random_ ^= random_ >> 27;
    return random_ * 0x2545F4914F6CDD1DULL;
  }

  void climb_when_sampled() noexcept {
    const std::uint64_t seen = hits_in_sample_ + misses_in_sample_;
    if (seen < sample_size_) return;
    const double hit_ratio = static_cast<double>(hits_in_sample_) / static_cast<double>(seen);
    const double change = hit_ratio - previous_hit_ratio_;
    const double amount = change >= 0 ? step_ : -step_;
    step_ = std::abs(change) >= restart_threshold
                ? step_percent * static_cast<double>(capacity_) * (amount >= 0 ? 1.0 : -1.0)
                : step_decay * amount;
    previous_hit_ratio_ = hit_ratio;
    hits_in_sample_ = misses_in_sample_ = 0;
    window_size_ = std::clamp(window_size_ + amount, 0.0, static_cast<double>(capacity_));
    resize_main();
  }

  void resize_main() noexcept {
    max_window_ = static_cast<std::size_t>(window_size_);
    max_protected_ = static_cast<std::size_t>(protected_share * static_cast<double>(capacity_ - max_window_));
    demote_protected_overflow();
  }

  detail::entry_list window_;
  detail::entry_list probation_;
  detail::entry_list protected_;
  std::size_t capacity_;
  frequency_sketch sketch_;
  double window_size_;
  double step_;
  double previous_hit_ratio_ = 0;
  std::uint64_t hits_in_sample_ = 0;
  std::uint64_t misses_in_sample_ = 0;
  std::uint64_t sample_size_;
  std::size_t max_window_ = 0;
  std::size_t max_protected_ = 0;
  std::uint64_t random_ = 0x9E3779B97F4A7C15ULL;
};

static_assert(eviction_policy<w_tinylfu>);

}  // namespace keel
