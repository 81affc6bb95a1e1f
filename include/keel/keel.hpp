// keel/keel.hpp — the whole library. Include this, or only the headers you use.
#pragma once

#include <keel/core/authenticate.hpp>
#include <keel/core/clock.hpp>
#include <keel/core/config.hpp>
#include <keel/core/deadline.hpp>
#include <keel/core/error.hpp>
#include <keel/core/fallback.hpp>
#include <keel/core/permit.hpp>
#include <keel/core/pipeline.hpp>
#include <keel/core/result.hpp>
