#include "check.hpp"

#include <keel/keel.hpp>  // the umbrella header must compile without exceptions and RTTI

int main() {
  for (const auto& t : keel_noexcept::tests()) {
    std::printf("%s\n", t.name);
    t.run();
  }
  const int failed = keel_noexcept::failures();
  std::printf("%zu check group(s), %d failure(s)\n", keel_noexcept::tests().size(), failed);
  return failed == 0 ? 0 : 1;
}
