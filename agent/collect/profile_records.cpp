#include "agent/collect/profile_records.h"

#include <array>
#include <cstring>

#include "unwind/python_frames.h"

namespace hostprof {

std::span<const uint64_t> splice_python_record(std::span<const uint64_t> user,
                                               std::span<const uint64_t> python, uint64_t eval_lo,
                                               uint64_t eval_hi) {
    if (python.empty())
        return user;
    // One buffer per thread: a view is valid only inside the ring-buffer callback, and
    // each ring has one consumer thread.
    thread_local std::array<uint64_t, kMaxSplicedFrames> buf;
    const size_t n = unwind::splice_python_frames(user, python, eval_lo, eval_hi, buf);
    return {buf.data(), n};
}

namespace {

std::string_view comm_view(const char (&comm)[HP_PROF_COMM_LEN]) {
    return std::string_view(comm, strnlen(comm, HP_PROF_COMM_LEN));
}

} // namespace

std::optional<hp_prof_kind> record_kind(std::span<const std::byte> data) {
    if (data.size() < sizeof(hp_prof_header))
        return std::nullopt;
    uint32_t kind = 0;
    std::memcpy(&kind, data.data(), sizeof(kind));
    if (kind < HP_PROF_ON_CPU || kind > HP_PROF_EXIT)
        return std::nullopt;
    return static_cast<hp_prof_kind>(kind);
}

std::optional<StackRecordView> decode_stack_record(std::span<const std::byte> data) {
    constexpr size_t kFixed = offsetof(hp_prof_stack, frames);
    if (data.size() < kFixed || reinterpret_cast<uintptr_t>(data.data()) % alignof(uint64_t) != 0)
        return std::nullopt;
    const auto* r = reinterpret_cast<const hp_prof_stack*>(data.data());
    if (r->hdr.kind != HP_PROF_ON_CPU && r->hdr.kind != HP_PROF_OFF_CPU)
        return std::nullopt;
    if (r->kstack_len > HP_PROF_MAX_FRAMES || r->ustack_len > HP_PROF_MAX_FRAMES ||
        r->pystack_len > HP_PY_MAX_FRAMES || r->kstack_skip > r->kstack_len)
        return std::nullopt;
    size_t frames = size_t{r->kstack_len} + r->ustack_len + r->pystack_len;
    if (data.size() < kFixed + frames * sizeof(uint64_t))
        return std::nullopt;
    const auto* f = reinterpret_cast<const uint64_t*>(data.data() + kFixed);
    const std::span<const uint64_t> user{f + r->kstack_len, r->ustack_len};
    const std::span<const uint64_t> python{f + r->kstack_len + r->ustack_len, r->pystack_len};
    return StackRecordView{
        .kind = static_cast<hp_prof_kind>(r->hdr.kind),
        .pid = r->hdr.pid,
        .tid = r->hdr.tid,
        .cpu = r->hdr.cpu,
        .timestamp_ns = r->hdr.timestamp_ns,
        .cgroup_id = r->cgroup_id,
        .start_time_ns = r->start_time_ns,
        .weight_ns = r->weight_ns,
        .flags = r->flags,
        .comm = comm_view(r->comm),
        .kernel_frames = {f + r->kstack_skip, size_t{r->kstack_len} - r->kstack_skip},
        .user_frames = splice_python_record(user, python, r->py_eval_lo, r->py_eval_hi),
        .python_frames = r->pystack_len,
    };
}

std::optional<ProcRecord> decode_proc_record(std::span<const std::byte> data) {
    if (data.size() < sizeof(hp_prof_proc) ||
        reinterpret_cast<uintptr_t>(data.data()) % alignof(uint64_t) != 0)
        return std::nullopt;
    const auto* r = reinterpret_cast<const hp_prof_proc*>(data.data());
    if (r->hdr.kind != HP_PROF_EXEC && r->hdr.kind != HP_PROF_EXIT)
        return std::nullopt;
    return ProcRecord{
        .kind = static_cast<hp_prof_kind>(r->hdr.kind),
        .pid = r->hdr.pid,
        .timestamp_ns = r->hdr.timestamp_ns,
        .cgroup_id = r->cgroup_id,
        .start_time_ns = r->start_time_ns,
        .comm = comm_view(r->comm),
    };
}

} // namespace hostprof
