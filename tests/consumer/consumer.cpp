// A program outside keel's tree: it includes the umbrella header, composes a
// pipeline and checks what it returns. Exit code 0 means keel was usable.
#include <keel/keel.hpp>

#include <cstdio>
#include <string>

namespace {
struct request {
  std::string api_key;
  std::string tenant;
};
}  // namespace

int main() {
  auto stack = keel::pipeline(keel::authenticate([](request& r) {
    if (r.api_key != "secret") return false;
    r.tenant = "acme";
    return true;
  }));
  auto service = stack.bind([](request& r) -> keel::result<std::string> { return "hello " + r.tenant; });

  request good{"secret", {}};
  request bad{"guess", {}};
  const keel::result<std::string> ok = service(good);
  const keel::result<std::string> refused = service(bad);

  if (!ok || *ok != "hello acme") {
    std::puts("consumer: authenticated call failed");
    return 1;
  }
  if (refused || refused.error().code != keel::errc::unauthenticated ||
      keel::http_status(refused.error().code) != 401) {
    std::puts("consumer: unauthenticated call was not rejected with 401");
    return 1;
  }
  std::puts("consumer: keel works");
  return 0;
}
