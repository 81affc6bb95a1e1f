#include <keel/core/tsc_clock.hpp>

#include <catch.hpp>

#include <chrono>
#include <thread>

using namespace std::chrono_literals;

TEST_CASE("tsc_clock never goes backwards within a thread", "[core][tsc_clock]") {
  INFO("tsc_clock reads the TSC: " << keel::tsc_clock::uses_tsc());
  auto previous = keel::tsc_clock::now();
  long backwards = 0;
  for (int i = 0; i < 1'000'000; ++i) {
    const auto t = keel::tsc_clock::now();
    if (t < previous) ++backwards;
    previous = t;
  }
  CHECK(backwards == 0);
}

TEST_CASE("tsc_clock measures elapsed time as steady_clock does", "[core][tsc_clock]") {
  keel::tsc_clock::calibrate();
  // Bracket a sleep with both clocks; the two elapsed times differ only by
  // the reads' own cost (the steady bracket is the wider one) and the
  // calibration error, a few ppm — either way far below 0.1%.
  const auto steady_start = std::chrono::steady_clock::now();
  const auto tsc_start = keel::tsc_clock::now();
  std::this_thread::sleep_for(30ms);
  const auto tsc_elapsed = keel::tsc_clock::now() - tsc_start;
  const auto steady_elapsed = std::chrono::steady_clock::now() - steady_start;
  CHECK(tsc_elapsed >= 30ms - 30us);
  CHECK(tsc_elapsed <= steady_elapsed + steady_elapsed / 1000);
  CHECK(tsc_elapsed >= steady_elapsed - steady_elapsed / 1000 - 20us);
}

TEST_CASE("tsc_clock starts near steady_clock's time", "[core][tsc_clock]") {
  // Its epoch is steady_clock's at calibration: readings agree closely at
  // first (they drift apart by the calibration error, a few ppm).
  const auto tsc = keel::tsc_clock::now().time_since_epoch();
  const auto steady = std::chrono::steady_clock::now().time_since_epoch();
  CHECK(std::chrono::abs(tsc - steady) < 1ms);
}
