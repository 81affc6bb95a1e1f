// A worker pool behind a bounded queue: request threads submit summarisation
// jobs through a pipeline layer and get "202 Accepted" or, when the workers
// are behind, "503" at once; workers sleep while idle, take jobs in batches
// (one batched model call per batch), and shutdown drains every accepted job.
#include <keel/core/pipeline.hpp>
#include <keel/queue/mpmc_queue.hpp>
#include <keel/queue/submit.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

struct request {
  int id;
  std::string document;
};

struct summarise_job {
  int id;
  std::string document;
};

int main() {
  keel::mpmc_queue<summarise_job> jobs(16);  // back-pressure beyond 16 queued jobs

  // The edge: queue the work, answer with a ticket; queue_full → 503.
  auto api = keel::pipeline(keel::submit(jobs, [](request& r) {
               return summarise_job{r.id, r.document};
             })).bind([](request& r) -> keel::result<int> { return r.id; });

  // Workers: wait (asleep) for the first job, then take up to 8 that are
  // ready, and run them as one batch. pop_batch returns queue_closed once the
  // queue is closed and drained, which ends the loop.
  std::atomic<int> done{0};
  std::atomic<int> batches{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 2; ++w) {
    workers.emplace_back([&] {
      std::vector<summarise_job> batch;
      batch.reserve(8);
      while (jobs.pop_batch(std::back_inserter(batch), 8)) {
        std::this_thread::sleep_for(2ms);  // one batched inference call
        done += static_cast<int>(batch.size());
        ++batches;
        batch.clear();
      }
    });
  }

  // Bursts of 50 requests arriving faster than the workers can go.
  int accepted = 0;
  int refused = 0;
  for (int id = 0; id < 200; ++id) {
    request r{id, "document " + std::to_string(id)};
    const keel::result<int> ticket = api(r);
    if (ticket) {
      ++accepted;
    } else {
      ++refused;
      if (refused == 1) {
        std::printf("request %d: %d %s\n", id, keel::http_status(ticket.error().code),
                    keel::to_string(ticket.error().code));
      }
    }
    if (id % 50 == 49) std::this_thread::sleep_for(10ms);  // a short lull lets the workers catch up
  }

  // Shutdown: refuse new work, let the workers finish what was accepted.
  jobs.close();
  for (auto& t : workers) t.join();

  std::printf("accepted %d, refused %d (503), summarised %d in %d batches\n", accepted, refused, done.load(),
              batches.load());
  return done.load() == accepted ? 0 : 1;  // nothing accepted was lost
}
