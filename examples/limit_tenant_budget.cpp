// Per-tenant RPM + TPM for an LLM gateway, as a provider enforces them:
// every call must fit both limits of its tenant's plan (all or nothing), the
// token limit is charged with an estimate at admission (prompt + max_tokens)
// and settled with the real usage when the reply comes back, and a refusal
// becomes HTTP 429 with a Retry-After header.
#include <keel/core/pipeline.hpp>
#include <keel/limit/all_of.hpp>
#include <keel/limit/keyed.hpp>
#include <keel/limit/layer.hpp>

#include <cstdint>
#include <cstdio>
#include <string>

struct request {
  std::string tenant;
  std::int64_t prompt_tokens;
  std::int64_t max_tokens;
};

struct reply {
  std::string text;
  std::int64_t total_tokens;  // usage reported by the model
};

int main() {
  // Plans: tenants whose name starts with "pro-" get ten times the free tier.
  auto plan = [](const std::string& tenant, double free_limit) {
    const bool pro = tenant.rfind("pro-", 0) == 0;
    return keel::rate_limit::per_minute(pro ? 10 * free_limit : free_limit);
  };
  keel::keyed_limiter<std::string> rpm{[&](const std::string& t) { return plan(t, 3); }};
  keel::keyed_limiter<std::string> tpm{[&](const std::string& t) { return plan(t, 2'000); }};

  auto budget = keel::limit_with(
      [&](request& r) {
        return keel::reserve_all(keel::charge(rpm[r.tenant], 1),
                                 keel::charge(tpm[r.tenant], r.prompt_tokens + r.max_tokens));
      },
      [](auto& permit, const reply& used) { permit.settle(1, used.total_tokens); });

  auto model = [](request& r) -> keel::result<reply> {
    const std::int64_t output = r.max_tokens / 5;  // this model is terse
    return reply{"ok", r.prompt_tokens + output};
  };
  auto gateway = keel::pipeline(budget).bind(model);

  const request calls[] = {
      {"free-acme", 200, 1'000},     // reserves 1 200 tokens, settles 400
      {"free-acme", 200, 1'000},     // fits again thanks to the refund
      {"free-acme", 300, 3'000},     // 3 300 > the 2 000 burst: can never pass (400)
      {"free-acme", 100, 200},       // third request of the minute
      {"free-acme", 100, 200},       // fourth: over 3 RPM (429)
      {"pro-globex", 1'000, 8'000},  // other tenant, bigger plan
  };
  for (auto call : calls) {
    const auto r = gateway(call);
    if (r) {
      std::printf("%-10s 200 %s (%lld tokens)\n", call.tenant.c_str(), r->text.c_str(),
                  static_cast<long long>(r->total_tokens));
      continue;
    }
    const keel::rejection& why = r.error();
    std::printf("%-10s %d %s", call.tenant.c_str(), keel::http_status(why.code), keel::to_string(why.code));
    if (const auto secs = keel::retry_after_seconds(why)) {  // whole seconds, rounded up
      std::printf(" Retry-After: %lld", static_cast<long long>(*secs));
    }
    std::printf("%s%s\n", why.reason ? " — " : "", why.reason ? why.reason : "");
  }
  return 0;
}
