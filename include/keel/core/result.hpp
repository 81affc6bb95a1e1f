// keel/core/result.hpp — a value, or the rejection that stopped it.
//
// result<T> is what every keel admission, pipeline and layer returns. It is a
// small std::expected<T, rejection> (C++20 has no std::expected): it never
// throws on its own and works with -fno-exceptions. value() on a rejection
// throws keel::rejected_error when exceptions are on and aborts otherwise;
// check has_value() first on the hot path.
//
//   keel::result<int> parse(std::string_view s) {
//     if (s.empty()) return keel::reject(keel::errc::invalid_argument, "empty");
//     return 42;
//   }
//   if (auto r = parse(input)) use(*r);
//   else if (r.error().retry_after) retry_in(*r.error().retry_after);
#pragma once

#include <keel/core/config.hpp>
#include <keel/core/detail/fatal.hpp>
#include <keel/core/error.hpp>

#include <type_traits>
#include <utility>
#include <variant>

namespace keel {

#if KEEL_HAS_EXCEPTIONS
/// Thrown by result<T>::value() on a rejection (exceptions on only).
class rejected_error : public std::system_error {
 public:
  explicit rejected_error(const rejection& r)
      : std::system_error(make_error_code(r.code), r.reason ? r.reason : ""), rejection_(r) {}
  const keel::rejection& rejection() const noexcept { return rejection_; }

 private:
  keel::rejection rejection_;
};
#endif

namespace detail {
[[noreturn]] inline void throw_rejected(const rejection& r) {
#if KEEL_HAS_EXCEPTIONS
  throw rejected_error(r);
#else
  (void)r;
  fail_usage("result::value() called on a rejection (compiled without exceptions)");
#endif
}
}  // namespace detail

template <class T>
class [[nodiscard]] result {
  static_assert(!std::is_reference_v<T>,
                "keel::result<T&> is not supported: use result<T*> or result<std::reference_wrapper<T>>");
  static_assert(!std::is_same_v<std::remove_cv_t<T>, rejection>,
                "keel::result<rejection> is ambiguous: use result<void> and read error()");

 public:
  using value_type = T;

  /// A default-constructed result holds a value-initialised T.
  constexpr result() requires std::is_default_constructible_v<T> : state_(std::in_place_index<0>) {}

  template <class U = T>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::remove_cvref_t<U>, result> &&
           !std::is_same_v<std::remove_cvref_t<U>, rejection> &&
           !std::is_same_v<std::remove_cvref_t<U>, std::in_place_t>) constexpr explicit(!std::is_convertible_v<U&&, T>)
      result(U&& value)
      : state_(std::in_place_index<0>, std::forward<U>(value)) {}

  template <class... Args>
  constexpr explicit result(std::in_place_t, Args&&... args)
      : state_(std::in_place_index<0>, std::forward<Args>(args)...) {}

  constexpr result(rejection r) noexcept : state_(std::in_place_index<1>, r) {}

  constexpr bool has_value() const noexcept { return state_.index() == 0; }
  constexpr explicit operator bool() const noexcept { return has_value(); }

  constexpr T& value() & {
    if (!has_value()) detail::throw_rejected(error());
    return *std::get_if<0>(&state_);
  }
  constexpr const T& value() const& {
    if (!has_value()) detail::throw_rejected(error());
    return *std::get_if<0>(&state_);
  }
  constexpr T&& value() && { return std::move(value()); }

  /// Unchecked access: precondition has_value().
  constexpr T& operator*() & noexcept { return *std::get_if<0>(&state_); }
  constexpr const T& operator*() const& noexcept { return *std::get_if<0>(&state_); }
  constexpr T&& operator*() && noexcept { return std::move(*std::get_if<0>(&state_)); }
  constexpr T* operator->() noexcept { return std::get_if<0>(&state_); }
  constexpr const T* operator->() const noexcept { return std::get_if<0>(&state_); }

  template <class U>
  constexpr T value_or(U&& fallback) const& {
    return has_value() ? **this : static_cast<T>(std::forward<U>(fallback));
  }
  template <class U>
  constexpr T value_or(U&& fallback) && {
    return has_value() ? std::move(**this) : static_cast<T>(std::forward<U>(fallback));
  }

  /// The rejection: precondition !has_value().
  constexpr const rejection& error() const noexcept { return *std::get_if<1>(&state_); }

  friend constexpr bool operator==(const result& a, const result& b) = default;

 private:
  std::variant<T, rejection> state_;
};

/// result<void>: success, or a rejection.
template <>
class [[nodiscard]] result<void> {
 public:
  using value_type = void;

  constexpr result() noexcept = default;
  constexpr result(rejection r) noexcept : rejection_(r), ok_(false) {}

  constexpr bool has_value() const noexcept { return ok_; }
  constexpr explicit operator bool() const noexcept { return ok_; }
  constexpr void value() const {
    if (!ok_) detail::throw_rejected(rejection_);
  }
  constexpr const rejection& error() const noexcept { return rejection_; }

  friend constexpr bool operator==(const result& a, const result& b) noexcept {
    return a.ok_ == b.ok_ && (a.ok_ || a.rejection_ == b.rejection_);
  }

 private:
  rejection rejection_{errc::invalid_argument};
  bool ok_ = true;
};

/// True for keel::result<T> (any T).
template <class T>
inline constexpr bool is_result_v = false;
template <class T>
inline constexpr bool is_result_v<result<T>> = true;

}  // namespace keel
