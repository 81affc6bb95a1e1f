// keel/fmt.hpp — {fmt} formatters for keel's vocabulary (optional: needs {fmt} 9+).
//
// Nothing else in keel includes this header, so {fmt} stays optional.
//
//   fmt::print("{}\n", keel::errc::rate_limited);          // rate_limited
//   fmt::print("{}\n", keel::reject(keel::errc::rate_limited, 250ms));
//                                                          // rate_limited (retry after 250ms)
//   fmt::print("{}\n", keel::result<int>(7));              // ok(7)
#pragma once

#include <keel/core/error.hpp>
#include <keel/core/result.hpp>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <type_traits>

template <>
struct fmt::formatter<keel::errc> : fmt::formatter<fmt::string_view> {
  template <class FormatContext>
  auto format(keel::errc e, FormatContext& ctx) const {
    return fmt::formatter<fmt::string_view>::format(keel::to_string(e), ctx);
  }
};

template <>
struct fmt::formatter<keel::rejection> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  template <class FormatContext>
  auto format(const keel::rejection& r, FormatContext& ctx) const {
    auto out = fmt::format_to(ctx.out(), "{}", keel::to_string(r.code));
    if (r.reason != nullptr) out = fmt::format_to(out, ": {}", r.reason);
    if (r.retry_after) {
      const auto ms = std::chrono::duration<double, std::milli>(*r.retry_after);
      out = fmt::format_to(out, " (retry after {:g}ms)", ms.count());
    }
    return out;
  }
};

template <class T>
struct fmt::formatter<keel::result<T>> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  template <class FormatContext>
  auto format(const keel::result<T>& r, FormatContext& ctx) const {
    if (!r.has_value()) return fmt::format_to(ctx.out(), "rejected({})", r.error());
    if constexpr (std::is_void_v<T>) {
      return fmt::format_to(ctx.out(), "ok");
    } else {
      return fmt::format_to(ctx.out(), "ok({})", *r);
    }
  }
};
