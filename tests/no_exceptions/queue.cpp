// The queue without exceptions: every outcome is a value, blocking waits and
// close work, and move-only items are handed over.
#include "check.hpp"

#include <keel/queue/mpmc_queue.hpp>
#include <keel/queue/submit.hpp>

#include <chrono>
#include <iterator>
#include <memory>
#include <thread>
#include <vector>

using keel_noexcept::check;

KEEL_NOEXCEPT_TEST("queue: try/blocking push and pop, batches, close, submit") {
  keel::mpmc_queue<std::unique_ptr<int>> q(2);
  check(q.capacity() == 2, "capacity");
  check(q.try_push(std::make_unique<int>(1)).has_value(), "first push");
  check(q.push(std::make_unique<int>(2), std::chrono::steady_clock::now()).has_value(), "second push");
  check(q.try_push(std::make_unique<int>(3)).error().code == keel::errc::queue_full, "full");
  check(**q.try_pop() == 1, "fifo");

  std::vector<std::unique_ptr<int>> out;
  check(*q.pop_batch(std::back_inserter(out), 4) == 1 && *out[0] == 2, "pop_batch");
  check(q.pop(std::chrono::steady_clock::now()).error().code == keel::errc::queue_empty, "empty");

  std::thread producer([&] { (void)q.push(std::make_unique<int>(7)); });
  auto woken = q.pop();
  producer.join();
  check(woken.has_value() && **woken == 7, "a sleeping consumer is woken");

  struct request {
    int id;
  };
  auto service = keel::pipeline(keel::submit(q, [](request& r) {
                   return std::make_unique<int>(r.id);
                 })).bind([](request& r) -> keel::result<int> { return r.id; });
  request a{11};
  check(service(a).has_value(), "submit accepted");

  q.close();
  check(q.try_push(std::make_unique<int>(9)).error().code == keel::errc::queue_closed, "closed push");
  check(**q.pop() == 11, "drain after close");
  check(q.pop().error().code == keel::errc::queue_closed, "closed and drained");
}
