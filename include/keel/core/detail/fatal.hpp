// keel/core/detail/fatal.hpp — the two ways keel reports a programming error.
//
// Invalid configuration is a bug in the caller, not an expected outcome, so it
// is not a `result`: with exceptions it throws keel::config_error (a
// std::invalid_argument whose message names the component and the field);
// without exceptions it prints that message and aborts. Rejections at run
// time (rate limited, queue full, ...) never come through here.
#pragma once

#include <keel/core/config.hpp>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace keel {

/// Thrown (exceptions on) when a component is constructed or reconfigured with
/// an invalid setting. what() reads "keel::<component>: <field> must ...".
class config_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace detail {

[[noreturn]] inline void fail_config(const char* message) {
#if KEEL_HAS_EXCEPTIONS
  throw config_error(message);
#else
  std::fprintf(stderr, "%s\n", message);
  std::abort();
#endif
}

/// Checks one configuration rule; `message` must name the component and field.
inline void require_config(bool ok, const char* message) {
  if (!ok) fail_config(message);
}

[[noreturn]] inline void fail_usage(const char* message) {
  std::fprintf(stderr, "keel: %s\n", message);
  std::abort();
}

}  // namespace detail
}  // namespace keel
