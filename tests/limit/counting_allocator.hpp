// An allocator that counts the bytes it holds, to measure and bound memory.
#pragma once

#include <cstddef>
#include <memory>

namespace keel_test {

struct allocation_counter {
  std::size_t live = 0;
  std::size_t peak = 0;
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
    return p;
  }
  void deallocate(T* p, std::size_t n) noexcept {
    counter->live -= n * sizeof(T);
    std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const counting_allocator<U>& other) const noexcept {
    return counter == other.counter;
  }
};

}  // namespace keel_test
