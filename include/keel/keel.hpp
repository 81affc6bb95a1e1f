// keel/keel.hpp — the whole library. Include this, or only the headers you use.
//
// Optional integrations are not included here: keel/fmt.hpp needs {fmt}.
#pragma once

// vocabulary, pipeline and generic layers
#include <keel/core/authenticate.hpp>
#include <keel/core/clock.hpp>
#include <keel/core/config.hpp>
#include <keel/core/deadline.hpp>
#include <keel/core/error.hpp>
#include <keel/core/fallback.hpp>
#include <keel/core/permit.hpp>
#include <keel/core/pipeline.hpp>
#include <keel/core/result.hpp>
#include <keel/core/tsc_clock.hpp>

// rate limiting: GCRA, cost budgets, per-tenant limits, bulkhead
#include <keel/limit/all_of.hpp>
#include <keel/limit/bulkhead.hpp>
#include <keel/limit/gcra.hpp>
#include <keel/limit/keyed.hpp>
#include <keel/limit/layer.hpp>
#include <keel/limit/rate_limit.hpp>

// concurrent W-TinyLFU cache with expiry and single-flight loading
#include <keel/cache/cache.hpp>
#include <keel/cache/cache_config.hpp>
#include <keel/cache/cache_layer.hpp>
#include <keel/cache/eviction_policy.hpp>
#include <keel/cache/frequency_sketch.hpp>
#include <keel/cache/lru.hpp>
#include <keel/cache/shared_load.hpp>
#include <keel/cache/w_tinylfu.hpp>

// bounded MPMC queue
#include <keel/queue/mpmc_queue.hpp>
#include <keel/queue/submit.hpp>

// circuit breaker
#include <keel/breaker/circuit_breaker.hpp>
#include <keel/breaker/layer.hpp>
#include <keel/breaker/window.hpp>

// load balancing across unequal nodes
#include <keel/balance/affinity.hpp>
#include <keel/balance/balanced.hpp>
#include <keel/balance/balancer.hpp>
#include <keel/balance/breaker_health.hpp>
#include <keel/balance/health.hpp>
#include <keel/balance/least_request.hpp>
#include <keel/balance/load_report.hpp>
#include <keel/balance/peak_ewma.hpp>
#include <keel/balance/recommended.hpp>
#include <keel/balance/round_robin.hpp>

// autoscale policy
#include <keel/scale/autoscaler.hpp>
#include <keel/scale/metric_source.hpp>
#include <keel/scale/scale_config.hpp>
