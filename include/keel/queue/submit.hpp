// keel/queue/submit.hpp — turn a synchronous request into queued work, with back-pressure.
//
// submit(queue, make_job) is a pipeline layer for work too heavy to do while
// the caller waits (batch summarisation, bulk embedding). It builds a job from
// the request context with make_job(ctx) and offers it to the queue without
// blocking:
// - queue full or closed: it returns that rejection at once (queue_full and
//   queue_closed map to HTTP 503 through keel::http_status), so a burst is
//   refused at the edge instead of growing memory or parking request threads;
// - accepted: it calls next(ctx), which answers for accepted work — typically
//   "202 Accepted" with a ticket the client polls. A worker may already be
//   running the job while next runs, so next must not touch what the job owns.
//
//   keel::mpmc_queue<summarise_job> jobs(1024);
//   auto api = keel::pipeline(keel::authenticate(check_key),
//                             keel::submit(jobs, [](request& r) { return summarise_job{r.id, r.text}; }));
//   auto service = api.bind([](request& r) -> keel::result<ticket> { return ticket{r.id}; });
//   keel::result<ticket> t = service(req);   // queue_full → 503, else a ticket
#pragma once

#include <keel/core/pipeline.hpp>
#include <keel/queue/mpmc_queue.hpp>

#include <functional>
#include <type_traits>
#include <utility>

namespace keel {

template <class Queue, class MakeJob>
class submit_layer {
 public:
  using job_type = typename Queue::value_type;

  constexpr submit_layer(Queue& queue, MakeJob make_job) : queue_(&queue), make_job_(std::move(make_job)) {}

  template <class Ctx, class Next>
  next_result_t<Next, Ctx> operator()(Ctx& ctx, Next&& next) {
    static_assert(std::is_invocable_v<MakeJob&, Ctx&>,
                  "keel::submit: make_job must be callable as make_job(ctx) with the request context");
    static_assert(std::is_convertible_v<std::invoke_result_t<MakeJob&, Ctx&>, job_type>,
                  "keel::submit: make_job(ctx) must return the queue's value_type (or something convertible to it)");
    if (auto queued = queue_->try_push(job_type(std::invoke(make_job_, ctx))); !queued) return queued.error();
    return next(ctx);
  }

  Queue& queue() const noexcept { return *queue_; }

 private:
  Queue* queue_;
  MakeJob make_job_;
};

/// A layer that queues make_job(ctx) on `queue` (which must outlive the
/// layer) and rejects with queue_full / queue_closed when it cannot.
template <class T, class Clock, class MakeJob>
constexpr submit_layer<mpmc_queue<T, Clock>, std::decay_t<MakeJob>> submit(mpmc_queue<T, Clock>& queue,
                                                                           MakeJob&& make_job) {
  return {queue, std::forward<MakeJob>(make_job)};
}

}  // namespace keel
