// Decoders for the records the latency collectors stream through their ring buffers
// (bpf/syscalls.h, ...). They take bytes and check sizes: a short or inconsistent record
// is rejected (and counted by the caller).
#pragma once

#include <linux/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "syscalls.h"

namespace hostprof {

// A syscall slower than its threshold, viewing the ring buffer's memory (valid only
// inside the callback: no allocation on the hot path).
struct SyscallOutlierView {
    uint32_t pid;
    uint32_t tid;
    uint32_t cpu;
    uint32_t nr;
    std::string_view syscall; // name from the build's syscall table; "" when unknown
    uint64_t timestamp_ns;    // sys_exit time, CLOCK_MONOTONIC
    uint64_t duration_ns;
    uint64_t cgroup_id;
    uint64_t start_time_ns; // thread group leader start since boot: with pid, the process
    int64_t ret;            // the syscall's return value (-errno on failure)
    uint32_t flags;         // enum hp_sys_flags
    std::string_view comm;
    std::span<const uint64_t> kernel_frames; // leaf first
    std::span<const uint64_t> user_frames;   // leaf first, Python frames spliced in
    uint32_t python_frames = 0;              // of them Python frames
};

std::optional<SyscallOutlierView> decode_syscall_outlier(std::span<const std::byte> data);

} // namespace hostprof
