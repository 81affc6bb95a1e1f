// An allocator that counts the bytes it holds, to measure and bound memory.
// `live`/`peak` count the bytes asked for; with glibc, `live_chunks` also
// counts what malloc really reserves for them (usable size + its 8-byte
// header), which is what a key costs in a process.
#pragma once

#include <cstddef>
#include <memory>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace keel_test {

struct allocation_counter {
  std::size_t live = 0;
  std::size_t peak = 0;
  std::size_t live_chunks = 0;  ///< glibc only: malloc's chunk sizes; 0 elsewhere
};

template <class T>
struct counting_allocator {
  using value_type = T;
  allocation_counter* counter;

  explicit counting_allocator(allocation_counter* c) noexcept : counter(c) {}
  template <class U>
  counting_allocator(const counting_allocator<U>& other) noexcept : counter(other.counter) {}

  T* allocate(std::size_t n) {
    T* p = std::allocator<T>().allocate(n);
    counter->live += n * sizeof(T);
    if (counter->live > counter->peak) counter->peak = counter->live;
    counter->live_chunks += chunk(p);
    return p;
  }
  void deallocate(T* p, std::size_t n) noexcept {
    counter->live -= n * sizeof(T);
    counter->live_chunks -= chunk(p);
    std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const counting_allocator<U>& other) const noexcept {
    return counter == other.counter;
  }

 private:
  static std::size_t chunk([[maybe_unused]] T* p) noexcept {
#if defined(__GLIBC__)
    return malloc_usable_size(p) + sizeof(std::size_t);
#else
    return 0;
#endif
  }
};

}  // namespace keel_test
