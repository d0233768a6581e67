#include "agent/aggregate/stack_table.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace hostprof {

namespace {

constexpr uint64_t kMul = 0x9e3779b97f4a7c15ULL;
constexpr size_t kMinSlots = 1024;
constexpr uint64_t kOffsetMask = 0xffffffffULL;

uint64_t mix(uint64_t h, uint64_t word) {
    return std::rotl((h ^ word) * kMul, 29);
}

// The last steps of MurmurHash3's 64-bit finalizer: every input bit reaches the low bits
// that pick a slot and the high bits kept as a tag.
uint64_t avalanche(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

bool same_frames(const uint64_t* stored, std::span<const uint64_t> frames) {
    return frames.empty() || std::memcmp(stored, frames.data(), frames.size_bytes()) == 0;
}

} // namespace

uint64_t StackTable::hash_of(uint32_t pid, uint32_t tid, uint64_t start_time_ns,
                             std::span<const uint64_t> kernel_frames,
                             std::span<const uint64_t> user_frames) {
    uint64_t h = mix(0, pid | uint64_t{tid} << 32);
    h = mix(h, start_time_ns);
    h = mix(h, kernel_frames.size() | user_frames.size() << 16);
    for (uint64_t f : kernel_frames)
        h = mix(h, f);
    for (uint64_t f : user_frames)
        h = mix(h, f);
    return avalanche(h);
}

size_t StackTable::probe(uint64_t hash, uint32_t pid, uint32_t tid, uint64_t start_time_ns,
                         std::span<const uint64_t> kernel_frames,
                         std::span<const uint64_t> user_frames) const {
    const size_t mask = slots_.size() - 1;
    const uint64_t tag = hash & ~kOffsetMask;
    const uint64_t ident = pid | uint64_t{tid} << 32;
    const uint64_t lens = kernel_frames.size() | user_frames.size() << 16;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const uint64_t slot = slots_[i];
        if (slot == 0)
            return i;
        if ((slot & ~kOffsetMask) != tag)
            continue;
        const uint64_t* e = arena_.data() + (slot & kOffsetMask) - 1;
        if (e[0] != hash || e[1] != ident || e[2] != start_time_ns || e[3] != lens)
            continue;
        const uint64_t* frames = e + kHeaderWords;
        if (same_frames(frames, kernel_frames) &&
            same_frames(frames + kernel_frames.size(), user_frames))
            return i;
    }
}

void StackTable::grow() {
    std::vector<uint64_t> slots(std::max(kMinSlots, slots_.size() * 2), 0);
    const size_t mask = slots.size() - 1;
    for (size_t off = 0; off < arena_.size();) {
        const uint64_t hash = arena_[off];
        size_t i = hash & mask;
        while (slots[i] != 0)
            i = (i + 1) & mask;
        slots[i] = (hash & ~kOffsetMask) | (off + 1);
        off += kHeaderWords + (arena_[off + 3] & 0xffff) + (arena_[off + 3] >> 16);
    }
    slots_ = std::move(slots);
}

bool StackTable::add(uint32_t pid, uint32_t tid, uint64_t start_time_ns,
                     std::span<const uint64_t> kernel_frames, std::span<const uint64_t> user_frames,
                     StackValue value, size_t limit) {
    if (kernel_frames.size() > kMaxFramesPerSide || user_frames.size() > kMaxFramesPerSide)
        return false;
    if (slots_.empty())
        grow();
    const uint64_t hash = hash_of(pid, tid, start_time_ns, kernel_frames, user_frames);
    size_t i = probe(hash, pid, tid, start_time_ns, kernel_frames, user_frames);
    if (slots_[i] != 0) {
        uint64_t* e = arena_.data() + (slots_[i] & kOffsetMask) - 1;
        e[4] += value.count;
        e[5] += value.weight_ns;
        return true;
    }
    const size_t words = kHeaderWords + kernel_frames.size() + user_frames.size();
    if (size_ >= limit || arena_.size() + words >= kOffsetMask)
        return false;
    if ((size_ + 1) * 2 > slots_.size()) { // at most half full: short probe runs
        grow();
        i = probe(hash, pid, tid, start_time_ns, kernel_frames, user_frames);
    }
    const size_t off = arena_.size();
    arena_.insert(arena_.end(),
                  {hash, pid | uint64_t{tid} << 32, start_time_ns,
                   kernel_frames.size() | user_frames.size() << 16, value.count, value.weight_ns});
    arena_.insert(arena_.end(), kernel_frames.begin(), kernel_frames.end());
    arena_.insert(arena_.end(), user_frames.begin(), user_frames.end());
    slots_[i] = (hash & ~kOffsetMask) | (off + 1);
    ++size_;
    return true;
}

bool StackTable::add(const StackRef& key, StackValue value, size_t limit) {
    const size_t k = std::min<size_t>(key.kernel_len, key.frames.size());
    return add(key.pid, key.tid, key.start_time_ns, key.frames.first(k), key.frames.subspan(k),
               value, limit);
}

StackTable::const_iterator::value_type StackTable::const_iterator::operator*() const {
    const uint16_t kernel_len = static_cast<uint16_t>(at_[3] & 0xffff);
    const size_t n = kernel_len + (at_[3] >> 16);
    StackRef key{static_cast<uint32_t>(at_[1]), static_cast<uint32_t>(at_[1] >> 32), at_[2],
                 kernel_len, std::span<const uint64_t>(at_ + kHeaderWords, n)};
    return {key, StackValue{at_[4], at_[5]}};
}

StackTable::const_iterator& StackTable::const_iterator::operator++() {
    at_ += kHeaderWords + (at_[3] & 0xffff) + (at_[3] >> 16);
    return *this;
}

} // namespace hostprof
