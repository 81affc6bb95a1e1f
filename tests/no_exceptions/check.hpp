// A tiny test harness for code compiled with -fno-exceptions -fno-rtti, where
// Catch2 cannot be used. Each tests/no_exceptions/<component>.cpp registers
// checks with KEEL_NOEXCEPT_TEST; main.cpp runs them and fails on any miss.
#pragma once

#include <cstdio>
#include <vector>

namespace keel_noexcept {

struct test {
  const char* name;
  void (*run)();
};

inline std::vector<test>& tests() {
  static std::vector<test> all;
  return all;
}

inline int& failures() {
  static int count = 0;
  return count;
}

inline void check(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAILED: %s\n", what);
    ++failures();
  }
}

struct registrar {
  registrar(const char* name, void (*run)()) { tests().push_back({name, run}); }
};

}  // namespace keel_noexcept

#define KEEL_NOEXCEPT_CONCAT2(a, b) a##b
#define KEEL_NOEXCEPT_CONCAT(a, b) KEEL_NOEXCEPT_CONCAT2(a, b)
#define KEEL_NOEXCEPT_TEST(name)                                                       \
  static void KEEL_NOEXCEPT_CONCAT(noexcept_test_, __LINE__)();                        \
  static const keel_noexcept::registrar KEEL_NOEXCEPT_CONCAT(noexcept_reg_, __LINE__){ \
      name, &KEEL_NOEXCEPT_CONCAT(noexcept_test_, __LINE__)};                          \
  static void KEEL_NOEXCEPT_CONCAT(noexcept_test_, __LINE__)()
