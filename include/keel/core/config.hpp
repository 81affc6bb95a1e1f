// keel/core/config.hpp — build-configuration switches shared by every header.
//
// keel works with and without C++ exceptions. KEEL_HAS_EXCEPTIONS is 1 when the
// translation unit is compiled with exceptions; users may force it to 0. Nothing
// else in keel tests __cpp_exceptions directly, so there is one place to look.
#pragma once

#ifndef KEEL_HAS_EXCEPTIONS
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define KEEL_HAS_EXCEPTIONS 1
#else
#define KEEL_HAS_EXCEPTIONS 0
#endif
#endif

#define KEEL_VERSION_MAJOR 0
#define KEEL_VERSION_MINOR 1
#define KEEL_VERSION_PATCH 0
