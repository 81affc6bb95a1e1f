// tests/catch.hpp — the one include shim between keel's tests and Catch2.
//
// vcpkg and Conan ship Catch2 v3; Debian stable ships v2.13. Tests include
// this header and use only the macros both versions share.
#pragma once

#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif
