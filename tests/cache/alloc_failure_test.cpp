// Allocation failure inside a write leaves the cache as it was. This binary
// replaces the global operator new so a test can make the next allocation on
// its thread throw std::bad_alloc; every other allocation is plain malloc.
#include <keel/cache/cache.hpp>
#include <keel/core/clock.hpp>

#include <catch.hpp>

#include <chrono>
#include <cstdlib>
#include <new>

namespace {
thread_local bool fail_next_allocation = false;
}  // namespace

// Every unaligned form is replaced, so that what one form allocates another
// may free (sanitizers check the pairing); the aligned forms stay the
// library's, paired among themselves.
namespace {
void* allocate(std::size_t size) {
  if (fail_next_allocation) {
    fail_next_allocation = false;
    throw std::bad_alloc();
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* allocate_nothrow(std::size_t size) noexcept {
  try {
    return allocate(size);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
}  // namespace

void* operator new(std::size_t size) { return allocate(size); }
void* operator new[](std::size_t size) { return allocate(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return allocate_nothrow(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return allocate_nothrow(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

TEST_CASE("a replacement that gains a TTL and cannot allocate changes nothing", "[cache][expiry]") {
  using namespace std::chrono_literals;
  keel::manual_clock clock;
  keel::cache<int, int, keel::lru, keel::manual_clock> c({.capacity = 100, .shards = 1}, clock);
  c.put(0, 100);  // no deadline: not in the expiry heap
  // Fill the heap to its capacity (it reserves 16 slots, then doubles), so
  // filing one more entry must allocate.
  for (int k = 1; k <= 16; ++k) c.put(k, k, 1s);

  fail_next_allocation = true;
  CHECK_THROWS_AS(c.put(0, 200, 1s), std::bad_alloc);
  fail_next_allocation = false;

  REQUIRE(c.get(0).has_value());
  CHECK(*c.get(0) == 100);  // the old value, still without a deadline
  CHECK(c.size() == 17);
  CHECK(c.weight() == 17);
  clock.advance(2s);  // every TTL entry expires; key 0 has none
  CHECK(c.get(0).has_value());
  for (int k = 1; k <= 16; ++k) CHECK_FALSE(c.get(k).has_value());
  c.put(0, 300, 1s);  // and the replacement works once memory is back
  clock.advance(2s);
  CHECK_FALSE(c.get(0).has_value());
}
