// keel/fmt.hpp — {fmt} formatters for keel's vocabulary and stats (optional: needs {fmt} 9+).
//
// Nothing else in keel includes this header, so {fmt} stays optional.
//
//   fmt::print("{}\n", keel::errc::rate_limited);          // rate_limited
//   fmt::print("{}\n", keel::reject(keel::errc::rate_limited, 250ms));
//                                                          // rate_limited (retry after 250ms)
//   fmt::print("{}\n", keel::result<int>(7));              // ok(7)
//   fmt::print("{}\n", breaker.stats());   // state=closed calls=40 failures=3 (7.5%) slow=0 (0%) rejected=0 ...
//
// Stats print as space-separated key=value pairs, the shape log pipelines
// (logfmt) parse without configuration.
#pragma once

#include <keel/keel.hpp>

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

// --- enums ---------------------------------------------------------------------

template <class E>
requires(std::is_same_v<E, keel::breaker_state> || std::is_same_v<E, keel::scale_reason> ||
         std::is_same_v<E, keel::removal_cause>) struct fmt::formatter<E> : fmt::formatter<fmt::string_view> {
  template <class FormatContext>
  auto format(E e, FormatContext& ctx) const {
    return fmt::formatter<fmt::string_view>::format(keel::to_string(e), ctx);
  }
};

// --- stats snapshots -------------------------------------------------------------

namespace keel::detail {
/// Base for the logfmt-style stats formatters: no format spec accepted.
struct stats_formatter {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
};
}  // namespace keel::detail

template <>
struct fmt::formatter<keel::limit_stats> : keel::detail::stats_formatter {
  template <class FormatContext>
  auto format(const keel::limit_stats& s, FormatContext& ctx) const {
    return fmt::format_to(ctx.out(), "rate={:g}/{}ms burst={} available={}", s.limit.rate,
                          std::chrono::duration_cast<std::chrono::milliseconds>(s.limit.period).count(), s.limit.burst,
                          s.available);
  }
};

template <>
struct fmt::formatter<keel::keyed_stats> : keel::detail::stats_formatter {
  template <class FormatContext>
  auto format(const keel::keyed_stats& s, FormatContext& ctx) const {
    return fmt::format_to(ctx.out(), "keys={} max_keys={} dropped={} refused={}", s.keys, s.max_keys, s.dropped,
                          s.refused);
  }
};

template <>
struct fmt::formatter<keel::bulkhead_stats> : keel::detail::stats_formatter {
  template <class FormatContext>
  auto format(const keel::bulkhead_stats& s, FormatContext& ctx) const {
    return fmt::format_to(ctx.out(), "in_flight={}/{} waiting={}", s.in_flight, s.max_in_flight, s.waiting);
  }
};

template <>
struct fmt::formatter<keel::cache_stats> : keel::detail::stats_formatter {
  template <class FormatContext>
  auto format(const keel::cache_stats& s, FormatContext& ctx) const {
    const auto lookups = s.hits + s.misses;
    const double hit_ratio = lookups == 0 ? 0.0 : 100.0 * static_cast<double>(s.hits) / static_cast<double>(lookups);
    return fmt::format_to(ctx.out(),
                          "hits={} misses={} hit_ratio={:.1f}% evictions={} expirations={} loads={} load_failures={} "
                          "coalesced_waits={} size={} weight={}",
                          s.hits, s.misses, hit_ratio, s.evictions, s.expirations, s.loads, s.load_failures,
                          s.coalesced_waits, s.size, s.weight);
  }
};

template <>
struct fmt::formatter<keel::queue_stats> : keel::detail::stats_formatter {
  template <class FormatContext>
  auto format(const keel::queue_stats& s, FormatContext& ctx) const {
    return fmt::format_to(ctx.out(), "size={}/{} waiting_consumers={} waiting_producers={} closed={}", s.size,
                          s.capacity, s.waiting_consumers, s.waiting_producers, s.closed);
  }
};

template <>
struct fmt::formatter<keel::breaker_stats> : keel::detail::stats_formatter {
  template <class FormatContext>
  auto format(const keel::breaker_stats& s, FormatContext& ctx) const {
    return fmt::format_to(ctx.out(),
                          "state={} calls={} failures={} ({:.1f}%) slow={} ({:.1f}%) rejected={} time_in_state={}ms "
                          "consecutive_opens={}",
                          keel::to_string(s.state), s.calls, s.failures, s.failure_rate, s.slow_calls, s.slow_call_rate,
                          s.rejected, std::chrono::duration_cast<std::chrono::milliseconds>(s.time_in_state).count(),
                          s.consecutive_opens);
  }
};

template <>
struct fmt::formatter<keel::balancer_stats> : keel::detail::stats_formatter {
  template <class FormatContext>
  auto format(const keel::balancer_stats& s, FormatContext& ctx) const {
    return fmt::format_to(ctx.out(), "nodes={} draining={} ejected={} outstanding={} panic={}", s.nodes, s.draining,
                          s.ejected, s.outstanding, s.panic);
  }
};

template <>
struct fmt::formatter<keel::scale_decision> : keel::detail::stats_formatter {
  template <class FormatContext>
  auto format(const keel::scale_decision& d, FormatContext& ctx) const {
    return fmt::format_to(
        ctx.out(), "replicas={} current={} recommended={} reason={} metric={} usage_ratio={:.2f} panicking={}",
        d.replicas, d.current, d.recommended, keel::to_string(d.reason), d.metric, d.usage_ratio, d.panicking);
  }
};
