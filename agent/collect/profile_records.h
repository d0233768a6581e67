// Decoders for records of the profile ring buffer (bpf/profile.h). They take bytes and
// check sizes; a short or inconsistent record is rejected (and counted by the caller).
#pragma once

#include <linux/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "profile.h"

namespace hostprof {

// An on-CPU sample or an off-CPU interval, viewing the ring buffer's memory (valid only
// inside the ring-buffer callback: no allocation on the hot path).
struct StackRecordView {
    hp_prof_kind kind;
    uint32_t pid;
    uint32_t tid;
    uint32_t cpu;
    uint64_t timestamp_ns;
    uint64_t cgroup_id;
    uint64_t start_time_ns; // process start since boot: with pid, the process identity
    uint64_t weight_ns;
    uint32_t flags;
    std::string_view comm;
    std::span<const uint64_t> kernel_frames; // leaf first
    std::span<const uint64_t> user_frames;   // leaf first, Python frames spliced in
    // Python frames among user_frames (unwind/python_frames.h): their code objects are
    // read while the process lives.
    uint32_t python_frames = 0;
};

struct ProcRecord {
    hp_prof_kind kind; // HP_PROF_EXEC or HP_PROF_EXIT
    uint32_t pid;
    uint64_t timestamp_ns;
    uint64_t cgroup_id;
    uint64_t start_time_ns;
    std::string_view comm;
};

// The user frames of a record with its Python frames spliced in (unwind/python_frames.h),
// in a buffer of the calling thread valid until its next call; `user` itself when there
// are no Python frames.
constexpr size_t kMaxSplicedFrames = HP_PROF_MAX_FRAMES + HP_PY_MAX_FRAMES;
std::span<const uint64_t> splice_python_record(std::span<const uint64_t> user,
                                               std::span<const uint64_t> python, uint64_t eval_lo,
                                               uint64_t eval_hi);

std::optional<hp_prof_kind> record_kind(std::span<const std::byte> data);
std::optional<StackRecordView> decode_stack_record(std::span<const std::byte> data);
std::optional<ProcRecord> decode_proc_record(std::span<const std::byte> data);

} // namespace hostprof
