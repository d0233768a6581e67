// The stacks of one profile window and what they add up to: stack -> (count, weight).
//
// This table is on the agent's hot path: every sample the kernel hands over is looked up
// here, and under a busy workload most samples are of stacks the window has not seen yet
// (a tight loop is sampled at a different leaf address each time). A node-based map paid
// two to three cache misses per lookup and two allocations per new stack (42% of the
// consumer thread's time at 999 Hz under stress-ng). Here every stack lives in one
// arena of 64-bit words, header then frames, in the order the window first saw them,
// and an open-addressing index of 8-byte slots (32 bits of the hash, the arena offset)
// points into it: a lookup reads one slot and, only when the stored hash bits match,
// one arena entry; a new stack is appended without allocating.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <span>
#include <utility>
#include <vector>

namespace hostprof {

// One stack of a window, as a view into its table (valid while the table is unchanged).
struct StackRef {
    uint32_t pid = 0;
    uint32_t tid = 0;           // 0 unless per-thread aggregation
    uint64_t start_time_ns = 0; // process start since boot: with pid, the process identity
    uint16_t kernel_len = 0;
    std::span<const uint64_t> frames; // kernel frames then user frames, leaf first
};

// An owning stack, for building windows by hand (tests, one-stack windows).
struct StackKey {
    uint32_t pid = 0;
    uint32_t tid = 0;
    uint64_t start_time_ns = 0;
    uint16_t kernel_len = 0;
    std::vector<uint64_t> frames; // kernel frames then user frames, leaf first

    StackRef ref() const { return {pid, tid, start_time_ns, kernel_len, frames}; }
};

struct StackValue {
    uint64_t count = 0;
    uint64_t weight_ns = 0; // off-CPU and latency profiles: nanoseconds waited
};

class StackTable {
  public:
    static constexpr size_t kMaxFramesPerSide = 255;

    // Adds `value` to the stack's entry, creating it when new. A new stack is refused
    // (false, table unchanged) when the table already holds `limit` stacks or a side has
    // more than kMaxFramesPerSide frames.
    bool add(uint32_t pid, uint32_t tid, uint64_t start_time_ns,
             std::span<const uint64_t> kernel_frames, std::span<const uint64_t> user_frames,
             StackValue value, size_t limit = std::numeric_limits<size_t>::max());
    bool add(const StackRef& key, StackValue value,
             size_t limit = std::numeric_limits<size_t>::max());
    bool add(const StackKey& key, StackValue value) { return add(key.ref(), value); }

    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }

    // Iteration in first-seen order; each element is (StackRef, StackValue).
    class const_iterator {
      public:
        using value_type = std::pair<StackRef, StackValue>;
        using difference_type = std::ptrdiff_t;
        using iterator_category = std::forward_iterator_tag;

        const_iterator() = default;
        value_type operator*() const;
        const_iterator& operator++();
        const_iterator operator++(int) {
            const_iterator old = *this;
            ++*this;
            return old;
        }
        bool operator==(const const_iterator& o) const { return at_ == o.at_; }

      private:
        friend class StackTable;
        const_iterator(const uint64_t* at) : at_(at) {}
        const uint64_t* at_ = nullptr;
    };
    const_iterator begin() const { return const_iterator(arena_.data()); }
    const_iterator end() const { return const_iterator(arena_.data() + arena_.size()); }

  private:
    // An entry in the arena: hash, pid | tid << 32, start time, kernel_len | frames << 16,
    // count, weight, then the frames.
    static constexpr size_t kHeaderWords = 6;
    static uint64_t hash_of(uint32_t pid, uint32_t tid, uint64_t start_time_ns,
                            std::span<const uint64_t> kernel_frames,
                            std::span<const uint64_t> user_frames);
    // Index of the slot holding the entry, or of the empty slot where it would go.
    size_t probe(uint64_t hash, uint32_t pid, uint32_t tid, uint64_t start_time_ns,
                 std::span<const uint64_t> kernel_frames,
                 std::span<const uint64_t> user_frames) const;
    void grow();

    std::vector<uint64_t> arena_;
    std::vector<uint64_t> slots_; // 0 = empty, else hash >> 32 << 32 | (arena offset + 1)
    size_t size_ = 0;
};

} // namespace hostprof
