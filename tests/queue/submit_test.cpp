// keel::submit: a pipeline layer that queues work and answers at once.
#include <keel/core/authenticate.hpp>
#include <keel/core/pipeline.hpp>
#include <keel/queue/submit.hpp>

#include <catch.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

namespace {
struct request {
  explicit request(int i, std::string t = {}, bool ok = true) : id(i), text(std::move(t)), authorised(ok) {}
  int id;
  std::string text;
  bool authorised;
  int replies = 0;
};

struct job {
  int id;
  std::unique_ptr<std::string> text;  // move-only work item
};

keel::result<int> ticket(request& r) {
  ++r.replies;
  return r.id;
}
}  // namespace

TEST_CASE("submit queues the job built from the request and answers with next", "[queue][submit]") {
  keel::mpmc_queue<job> jobs(2);
  auto service = keel::pipeline(keel::authenticate([](request& r) { return r.authorised; }),
                                keel::submit(jobs, [](request& r) {
                                  return job{r.id, std::make_unique<std::string>(r.text)};
                                }))
                     .bind(ticket);

  request a{1, "summarise this"};
  const auto t = service(a);
  REQUIRE(t);
  CHECK(*t == 1);
  CHECK(a.replies == 1);

  request stranger{9, "x", false};
  CHECK(service(stranger).error().code == keel::errc::unauthenticated);  // nothing queued
  CHECK(jobs.size() == 1);

  auto queued = jobs.try_pop();
  REQUIRE(queued);
  CHECK(queued->id == 1);
  CHECK(*queued->text == "summarise this");
}

TEST_CASE("submit applies back-pressure: queue_full and queue_closed become 503 without calling next",
          "[queue][submit]") {
  keel::mpmc_queue<job> jobs(2);
  auto layer = keel::submit(jobs, [](request& r) { return job{r.id, nullptr}; });
  auto service = keel::pipeline(layer).bind(ticket);
  request r1{1}, r2{2}, r3{3};
  REQUIRE(service(r1));
  REQUIRE(service(r2));
  const auto full = service(r3);
  REQUIRE_FALSE(full);
  CHECK(full.error().code == keel::errc::queue_full);
  CHECK(keel::http_status(full.error().code) == 503);
  CHECK(r3.replies == 0);

  jobs.close();
  CHECK(jobs.try_pop());  // accepted work is still there for the workers
  request r4{4};
  CHECK(service(r4).error().code == keel::errc::queue_closed);
  CHECK(r4.replies == 0);
  CHECK(&layer.queue() == &jobs);
}

#if KEEL_HAS_EXCEPTIONS
TEST_CASE("a throwing make_job queues nothing and propagates", "[queue][submit]") {
  keel::mpmc_queue<job> jobs(2);
  auto service = keel::pipeline(keel::submit(jobs, [](request& r) -> job {
                   if (r.id < 0) throw std::invalid_argument("bad request");
                   return job{r.id, nullptr};
                 })).bind(ticket);
  request bad{-1};
  CHECK_THROWS_AS(service(bad), std::invalid_argument);
  CHECK(jobs.empty());
  request good{5};
  CHECK(*service(good) == 5);
  CHECK(jobs.size() == 1);
}
#endif
