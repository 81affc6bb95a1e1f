// Composing keel layers into one entry point: authenticate the caller, refuse
// work that cannot meet its deadline, and fall back to a cached answer when
// the model refuses or fails. Rejections become HTTP statuses at the edge.
#include <keel/keel.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <utility>

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

struct request {
  request(std::string key, std::string text, steady::time_point by = steady::now() + 1s)
      : api_key(std::move(key)), prompt(std::move(text)), deadline(by) {}
  std::string api_key;
  std::string prompt;
  steady::time_point deadline;
  std::string tenant;  // filled in by authentication
};

int main() {
  const std::map<std::string, std::string> api_keys{{"k-acme", "acme"}, {"k-globex", "globex"}};

  auto gateway = keel::pipeline(
      // 1. Who is calling? Unknown keys stop here (401).
      keel::authenticate([&](request& r) {
        const auto it = api_keys.find(r.api_key);
        if (it == api_keys.end()) return false;
        r.tenant = it->second;
        return true;
      }),
      // 2. Degrade rather than fail when the model is unavailable.
      keel::fallback([](request&, const keel::rejection&) -> keel::result<std::string> { return "(cached answer)"; },
                     [](const keel::rejection& r) { return r.code == keel::errc::upstream_failure; }),
      // 3. Don't start a 20 ms generation for a caller who gives up in 5 ms (504).
      keel::deadline(20ms));

  auto model = [](request& r) -> keel::result<std::string> {
    if (r.prompt == "crash") return keel::reject(keel::errc::upstream_failure);
    return "completion for " + r.tenant + ": " + r.prompt;
  };
  auto service = gateway.bind(model);

  request calls[] = {
      {"k-acme", "hello"},
      {"stolen", "hello"},
      {"k-globex", "crash"},
      {"k-acme", "hurry", steady::now() + 5ms},
  };
  for (auto& call : calls) {
    const keel::result<std::string> reply = service(call);
    if (reply) {
      std::printf("200 %s\n", reply->c_str());
    } else {
      std::printf("%d %s\n", keel::http_status(reply.error().code), keel::to_string(reply.error().code));
    }
  }
  return 0;
}
