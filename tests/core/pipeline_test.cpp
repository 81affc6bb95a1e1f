#include <keel/core/pipeline.hpp>

#include <catch.hpp>

#include <string>
#include <vector>

namespace {
struct request {
  std::vector<std::string> trace;
  int attempts = 0;
};

// Records entry and exit, so tests can read the order layers ran in.
struct tracer {
  std::string name;
  template <class Ctx, class Next>
  keel::next_result_t<Next, Ctx> operator()(Ctx& ctx, Next&& next) {
    ctx.trace.push_back(name + ">");
    auto r = next(ctx);
    ctx.trace.push_back("<" + name);
    return r;
  }
};

struct refuse {
  template <class Ctx, class Next>
  keel::next_result_t<Next, Ctx> operator()(Ctx&, Next&&) {
    return keel::reject(keel::errc::overloaded);
  }
};

// Calls next until it succeeds, at most three times.
struct retry3 {
  template <class Ctx, class Next>
  keel::next_result_t<Next, Ctx> operator()(Ctx& ctx, Next&& next) {
    auto r = next(ctx);
    for (int i = 1; i < 3 && !r; ++i) r = next(ctx);
    return r;
  }
};

keel::result<int> terminal(request& r) {
  r.trace.push_back("call");
  return 7;
}
}  // namespace

static_assert(keel::layer<tracer, request, keel::result<int>>);
static_assert(!keel::layer<int, request>);

TEST_CASE("layers run outermost first and unwind in reverse", "[core][pipeline]") {
  auto stack = keel::pipeline(tracer{"a"}, tracer{"b"}, tracer{"c"});
  STATIC_REQUIRE(decltype(stack)::size() == 3);
  request req;
  const auto r = stack(req, terminal);
  REQUIRE(r);
  CHECK(*r == 7);
  CHECK(req.trace == std::vector<std::string>{"a>", "b>", "c>", "call", "<c", "<b", "<a"});
}

TEST_CASE("a layer can short-circuit: nothing below it runs", "[core][pipeline]") {
  auto stack = keel::pipeline(tracer{"a"}, refuse{}, tracer{"never"});
  request req;
  const auto r = stack(req, terminal);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == keel::errc::overloaded);
  CHECK(req.trace == std::vector<std::string>{"a>", "<a"});
}

TEST_CASE("a layer can call next several times", "[core][pipeline]") {
  auto stack = keel::pipeline(retry3{});
  request req;
  const auto r = stack(req, [](request& c) -> keel::result<int> {
    if (++c.attempts < 3) return keel::reject(keel::errc::upstream_failure);
    return c.attempts;
  });
  REQUIRE(r);
  CHECK(*r == 3);
}

TEST_CASE("an empty pipeline is the terminal itself", "[core][pipeline]") {
  keel::pipeline<> stack;
  request req;
  CHECK(*stack(req, terminal) == 7);
}

TEST_CASE("pipelines nest and bind to a terminal", "[core][pipeline]") {
  auto inner = keel::pipeline(tracer{"b"}, tracer{"c"});
  auto outer = keel::pipeline(tracer{"a"}, inner);
  auto service = outer.bind(terminal);
  request req;
  CHECK(*service(req) == 7);
  CHECK(req.trace == std::vector<std::string>{"a>", "b>", "c>", "call", "<c", "<b", "<a"});
  CHECK(*service(request{}) == 7);  // a temporary context works too
}

TEST_CASE("layers can be reached after composition", "[core][pipeline]") {
  auto stack = keel::pipeline(tracer{"first"}, tracer{"second"});
  CHECK(stack.layer<1>().name == "second");
  stack.layer<1>().name = "renamed";
  request req;
  (void)stack(req, terminal);
  CHECK(req.trace[1] == "renamed>");
}

TEST_CASE("a lambda is a layer", "[core][pipeline]") {
  int seen = 0;
  auto stack = keel::pipeline([&seen](request& ctx, auto&& next) {
    ++seen;
    return next(ctx);
  });
  request req;
  CHECK(*stack(req, terminal) == 7);
  CHECK(seen == 1);
}
