// keel/cache/frequency_sketch.hpp — how often was a key seen recently?
//
// A count-min sketch of 4-bit counters, the popularity estimate TinyLFU
// admits by (Einziger, Friedman, Manes: "TinyLFU: A Highly Efficient Cache
// Admission Policy", 2017). Every counter of one key lives in the same 64-byte
// block (the layout Caffeine's FrequencySketch moved to), so an increment or an
// estimate touches one cache line: depth 4, each row picking one of two words
// of the block and one of its sixteen 4-bit counters. Counters saturate at 15;
// after `sample_size` increments every counter is halved ("reset"), so the
// sketch forgets old popularity and follows a shifting workload.
//
// The table follows the number of entries the cache holds, not its capacity
// (which may be bytes): ensure_capacity() grows it as entries are added, as
// Caffeine's FrequencySketch.ensureCapacity does. Unlike Caffeine, which
// starts the new table empty, growth here loses nothing: doubling the table
// adds one bit to a key's block index, and every counter of a key stays at the
// same place inside its block, so block i of the old table is copied to blocks
// i and i + old size, and every estimate is the same right after growing.
//
//   keel::frequency_sketch sketch(1000);     // sized for about 1000 entries
//   sketch.increment(hash);
//   if (sketch.frequency(a) > sketch.frequency(b)) { ... }
//   sketch.ensure_capacity(5000);            // the cache now holds more
//
// Not thread-safe: the cache updates it under a shard's lock.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

namespace keel {

class frequency_sketch {
 public:
  /// Sized for `expected_entries` distinct hot keys (at least 8 blocks, at most
  /// 2^17 blocks = 8 MiB); ages after 10 × expected_entries increments.
  explicit frequency_sketch(std::size_t expected_entries)
      : blocks_(blocks_for(expected_entries)),
        table_(std::make_unique<std::uint64_t[]>(blocks_ * words_per_block)),
        sample_size_(10 * std::max<std::size_t>(expected_entries, 1)) {}

  /// Makes room for `entries` distinct keys (bounded as above): grows the table
  /// without losing a count (see the header comment). Never shrinks; leaves
  /// the sample size alone. Returns false, and changes nothing, if the memory
  /// cannot be had (the cache calls this under its lock, where an exception
  /// has no good place to go; the smaller table still works, with more
  /// collisions).
  bool ensure_capacity(std::size_t entries) noexcept {
    const std::size_t wanted = blocks_for(entries);
    if (wanted > blocks_) {
      std::unique_ptr<std::uint64_t[]> grown(new (std::nothrow) std::uint64_t[wanted * words_per_block]);
      if (!grown) return false;
      const std::size_t words = blocks_ * words_per_block;
      for (std::size_t copy = 0; copy < wanted / blocks_; ++copy)
        std::copy_n(table_.get(), words, grown.get() + copy * words);
      table_ = std::move(grown);
      blocks_ = wanted;
    }
    return true;
  }

  /// Ages (halves every counter) after `increments` increments from now on.
  void set_sample_size(std::size_t increments) noexcept { sample_size_ = std::max<std::size_t>(increments, 1); }

  /// The estimated count of `hash` since the last halvings, 0..15.
  unsigned frequency(std::uint64_t hash) const noexcept {
    const std::uint64_t* block = block_of(hash);
    const std::uint64_t h = rehash(hash);
    return std::min(std::min(count(block, h, 0), count(block, h, 1)), std::min(count(block, h, 2), count(block, h, 3)));
  }

  /// Counts one occurrence of `hash` (every counter below 15 grows by one).
  void increment(std::uint64_t hash) noexcept {
    std::uint64_t* block = block_of(hash);
    const std::uint64_t h = rehash(hash);
    // Written out per row (not a loop) so the shifts are constants: this runs
    // on every cache hit, and the unrolled form is ~3x fewer instructions.
    const unsigned grew = bump(block, h, 0) | bump(block, h, 1) | bump(block, h, 2) | bump(block, h, 3);
    if (grew != 0 && ++size_ >= sample_size_) halve();
  }

  /// Increments since the last halving (for tests).
  std::size_t sample_count() const noexcept { return size_; }
  std::size_t sample_size() const noexcept { return sample_size_; }
  /// Distinct keys the table is sized for (one 16-counter word each).
  std::size_t capacity() const noexcept { return blocks_ * words_per_block; }
  /// Bytes of counters.
  std::size_t memory_bytes() const noexcept { return blocks_ * words_per_block * sizeof(std::uint64_t); }

 private:
  static constexpr std::size_t words_per_block = 8;  // 8 × 8 bytes = one cache line

  // One 16-counter word per entry, as Caffeine sizes it: a power of two of
  // blocks, from 8 (64 entries) to 2^17 (2^20 entries).
  static std::size_t blocks_for(std::size_t entries) noexcept {
    return std::bit_ceil(std::clamp<std::size_t>(entries, 64, std::size_t{1} << 20)) / words_per_block;
  }

  // A second, independent mix of the key hash picks counters inside the block,
  // so keys sharing a block rarely share all four counters. Row r uses 5 bits
  // of it from bit 8r: one picks the row's word (of two), four pick the counter.
  static std::uint64_t rehash(std::uint64_t h) noexcept {
    h ^= h >> 31;
    h *= 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 29);
  }
  static unsigned slot_bits(std::uint64_t h, unsigned row) noexcept { return static_cast<unsigned>(h >> (8 * row)); }
  static unsigned word_of(unsigned bits, unsigned row) noexcept { return 2 * row + (bits & 1); }
  static unsigned shift_of(unsigned bits) noexcept { return (bits & 0x1E) << 1; }  // 4 × counter index

  static unsigned count(const std::uint64_t* block, std::uint64_t h, unsigned row) noexcept {
    const unsigned bits = slot_bits(h, row);
    return static_cast<unsigned>((block[word_of(bits, row)] >> shift_of(bits)) & 0xF);
  }
  // 1 if the counter grew, 0 if it was saturated (an int, so the four rows
  // combine with a branch-free |).
  static unsigned bump(std::uint64_t* block, std::uint64_t h, unsigned row) noexcept {
    const unsigned bits = slot_bits(h, row);
    std::uint64_t& word = block[word_of(bits, row)];
    const unsigned shift = shift_of(bits);
    if (((word >> shift) & 0xF) == 0xF) return 0;
    word += std::uint64_t{1} << shift;
    return 1;
  }

  std::uint64_t* block_of(std::uint64_t hash) const noexcept {
    // The high bits choose the block: the cache's shard index uses other bits.
    return table_.get() + ((hash >> 20) & (blocks_ - 1)) * words_per_block;
  }

  // Aging: every 4-bit counter is halved at once by shifting the word and
  // masking off the bit each counter received from its neighbour.
  void halve() noexcept {
    for (std::size_t i = 0; i < blocks_ * words_per_block; ++i) table_[i] = (table_[i] >> 1) & 0x7777777777777777ULL;
    size_ /= 2;
  }

  std::size_t blocks_;
  std::unique_ptr<std::uint64_t[]> table_;
  std::size_t size_ = 0;
  std::size_t sample_size_;
};

}  // namespace keel
