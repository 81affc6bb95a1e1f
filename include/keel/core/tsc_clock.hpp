// keel/core/tsc_clock.hpp — a steady clock read from the CPU's time-stamp counter.
//
// std::chrono::steady_clock::now() is a vDSO call of 20–30 ns on a typical
// x86-64 VM: more than everything else a lock-free limiter or breaker does per
// call (a GCRA admission is one compare-exchange). tsc_clock reads the
// invariant TSC directly (`rdtsc`, ~10 ns, and it overlaps with the atomic that
// follows) and scales ticks to nanoseconds with a factor measured once against
// steady_clock. Use it for the hottest components:
//
//   keel::gcra_limiter<keel::tsc_clock> rpm{keel::rate_limit::per_minute(600)};
//   rpm.acquire(1, keel::tsc_clock::now() + 50ms);  // its own time_point type
//
// Trade-offs, so you can decide:
//  * Its epoch is steady_clock's at calibration, but its rate differs from
//    steady_clock's by the calibration error (a few parts per million: a
//    limit of 1000/s admits 1000 ± 0.01 per second). Do not mix its time
//    points with steady_clock's; that is why it has a time_point type of its own.
//  * The first now() in a process calibrates: it spins ~5 ms against
//    steady_clock (calibrate() does it ahead of time, e.g. at start-up).
//  * It is used only where the TSC is a trustworthy clock: x86-64 with an
//    invariant TSC (CPUID 8000_0007h EDX bit 8) and, on Linux, when the kernel
//    itself keeps time with it (clocksource "tsc", which it picks only after
//    checking that the TSC is synchronised across CPUs). Elsewhere — other
//    CPUs, a VM that hides the flag, a kernel that distrusts the TSC —
//    tsc_clock::now() is steady_clock::now(), so code that uses it is portable;
//    tsc_clock::uses_tsc() says which.
//  * rdtsc is not ordered with memory accesses: two threads may see readings
//    a few nanoseconds out of order. keel's components tolerate that (a clock
//    that steps back is treated as "no time passed").
#pragma once

#include <keel/core/clock.hpp>

#include <chrono>
#include <cstdint>
#include <limits>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define KEEL_TSC_CLOCK_X86 1
#include <cpuid.h>
#include <x86intrin.h>
#if defined(__linux__)
#include <cstdio>
#include <cstring>
#endif
#else
#define KEEL_TSC_CLOCK_X86 0
#endif

namespace keel {

class tsc_clock {
 public:
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<tsc_clock, duration>;
  static constexpr bool is_steady = true;

  static time_point now() noexcept {
    const scale& s = calibration();
#if KEEL_TSC_CLOCK_X86
    if (s.ns_per_tick_q32 != 0) {
      // Ticks since calibration, times ns-per-tick in 32.32 fixed point. The
      // 128-bit product cannot overflow for centuries of uptime.
      const std::uint64_t ticks = __rdtsc() - s.base_ticks;
      const auto ns = static_cast<std::int64_t>((static_cast<u128>(ticks) * s.ns_per_tick_q32) >> 32);
      return time_point(duration(s.base_ns + ns));
    }
#endif
    return time_point(std::chrono::duration_cast<duration>(std::chrono::steady_clock::now().time_since_epoch()));
  }

  /// True when now() reads the TSC; false when it falls back to steady_clock.
  static bool uses_tsc() noexcept { return calibration().ns_per_tick_q32 != 0; }

  /// Calibrates now rather than on the first now(); idempotent and thread-safe.
  static void calibrate() noexcept { (void)calibration(); }

 private:
#if KEEL_TSC_CLOCK_X86
  __extension__ typedef unsigned __int128 u128;  // __extension__: no -Wpedantic warning
#endif
  struct scale {
    std::uint64_t base_ticks = 0;
    std::int64_t base_ns = 0;           // steady_clock's reading at base_ticks
    std::uint64_t ns_per_tick_q32 = 0;  // 0: the TSC is not used
  };

  // A function-local static: initialised once, thread-safely, on first use;
  // afterwards every now() pays one predictable branch on its guard.
  static const scale& calibration() noexcept {
    static const scale s = measure();
    return s;
  }

#if KEEL_TSC_CLOCK_X86
  static bool tsc_is_trustworthy() noexcept {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(0x80000007u, &eax, &ebx, &ecx, &edx) == 0 || (edx & (1u << 8)) == 0) return false;
#if defined(__linux__)
    // The kernel marks the TSC unstable (and switches clocksource) when its
    // cross-CPU or watchdog checks fail; trust it only while it trusts it.
    std::FILE* f = std::fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (f == nullptr) return false;
    char name[32] = {};
    const bool ok = std::fgets(name, sizeof name, f) != nullptr && std::strncmp(name, "tsc", 3) == 0 &&
                    (name[3] == '\n' || name[3] == '\0');
    std::fclose(f);
    return ok;
#else
    return true;
#endif
  }

  // One (steady_clock, TSC) pair, bracketed by two steady_clock reads so a
  // preemption between them shows as a wide bracket; the tightest of a few
  // tries wins.
  struct sample {
    std::int64_t ns;
    std::uint64_t ticks;
  };
  static std::int64_t steady_ns() noexcept {
    return std::chrono::duration_cast<duration>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  static sample tight_sample() noexcept {
    sample best{0, 0};
    std::int64_t best_width = std::numeric_limits<std::int64_t>::max();
    for (int i = 0; i < 5; ++i) {
      const std::int64_t before = steady_ns();
      const std::uint64_t ticks = __rdtsc();
      const std::int64_t after = steady_ns();
      if (after - before < best_width) {
        best_width = after - before;
        best = {before + (after - before) / 2, ticks};
      }
    }
    return best;
  }

  static scale measure() noexcept {
    if (!tsc_is_trustworthy()) return {};
    // Two samples ~5 ms apart: with brackets of ~50 ns the rate is off by
    // about 10 ppm at worst.
    const sample first = tight_sample();
    sample last = first;
    while (last.ns - first.ns < 5'000'000) last = tight_sample();
    if (last.ticks <= first.ticks) return {};  // a TSC that does not advance is no clock
    const auto elapsed_ns = static_cast<u128>(last.ns - first.ns);
    const auto q32 = static_cast<std::uint64_t>((elapsed_ns << 32) / (last.ticks - first.ticks));
    if (q32 == 0) return {};
    return {last.ticks, last.ns, q32};
  }
#else
  static scale measure() noexcept { return {}; }
#endif
};

static_assert(clock<tsc_clock>);

}  // namespace keel
