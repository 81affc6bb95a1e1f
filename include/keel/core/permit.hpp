// keel/core/permit.hpp — the admit-then-record protocol.
//
// A stateful keel policy splits a call in two. Admission (try_acquire,
// reserve, pick, ...) may reject and returns result<Permit>. The permit is a
// move-only token for one admitted call; the caller records the outcome on it
// once (success / failure / settle(actual_cost) / ...), from whatever thread or
// continuation finishes the call. keel never owns the call, so this works with
// callbacks, futures, coroutines and event loops alike.
//
// Rules every keel permit follows:
//  * move-only; a moved-from permit is inactive and its destructor does nothing;
//  * an outcome is recorded at most once — later records are ignored, so a
//    retry path that records twice cannot double count;
//  * a permit destroyed without a record has a documented, safe meaning for its
//    component (a breaker counts it as ignored and frees its half-open slot; a
//    cost reservation keeps its estimate charged; a bulkhead frees its slot).
//    It can never leak capacity: the stuck-half-open bug of other breakers
//    (a probe whose result is never reported) cannot happen.
//
//   auto p = breaker.try_acquire();
//   if (!p) return p.error();          // circuit_open, with retry_after
//   auto r = call_vector_store();
//   r ? p->success(elapsed) : p->failure(elapsed);
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

namespace keel {

/// How an admitted call ended, for policies that learn from outcomes.
enum class outcome : std::uint8_t {
  success,  ///< the call did what was asked
  failure,  ///< the call failed in a way that says the dependency is unhealthy
  ignored,  ///< the result says nothing about health (cancelled, client error, dropped)
};

/// A keel permit: move-only, reports whether it still holds an unrecorded admission.
template <class P>
concept permit = std::movable<P> && !std::copy_constructible<P> && requires(const P& p) {
  { p.active() } -> std::same_as<bool>;
};

namespace detail {

/// The pointer a permit keeps to its issuer. Moving transfers it and leaves
/// the source empty, which is what makes "record at most once" and "moved-from
/// permits do nothing" fall out of one place instead of each permit type.
template <class Owner>
class permit_link {
 public:
  constexpr permit_link() noexcept = default;
  constexpr explicit permit_link(Owner* owner) noexcept : owner_(owner) {}
  constexpr permit_link(permit_link&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)) {}
  constexpr permit_link& operator=(permit_link&& other) noexcept {
    owner_ = std::exchange(other.owner_, nullptr);
    return *this;
  }
  permit_link(const permit_link&) = delete;
  permit_link& operator=(const permit_link&) = delete;

  constexpr bool active() const noexcept { return owner_ != nullptr; }
  constexpr Owner* get() const noexcept { return owner_; }
  /// Ends the link and returns the owner (null if already ended): the one
  /// call through which a permit records its outcome.
  constexpr Owner* take() noexcept { return std::exchange(owner_, nullptr); }

 private:
  Owner* owner_ = nullptr;
};

/// Move assignment for a permit whose destructor ends its admission: ends
/// `self`'s admission exactly as its destructor would, then takes over
/// `other`'s. A permit type defines it in one line instead of repeating the
/// member-by-member dance:
///   my_permit& operator=(my_permit&& other) noexcept { return detail::replace_permit(*this, std::move(other)); }
template <class P>
P& replace_permit(P& self, P&& other) noexcept {
  static_assert(std::is_nothrow_move_constructible_v<P> && std::is_nothrow_destructible_v<P>,
                "keel::detail::replace_permit: the permit's move constructor and destructor must be noexcept");
  if (&self != &other) {
    std::destroy_at(&self);
    std::construct_at(&self, std::move(other));
  }
  return self;
}

}  // namespace detail
}  // namespace keel
