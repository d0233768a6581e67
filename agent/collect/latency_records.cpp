#include "agent/collect/latency_records.h"

#include <cstring>

#include "kernel-compat/syscall_table.h"
#include "agent/collect/profile_records.h"

namespace hostprof {

std::optional<SyscallOutlierView> decode_syscall_outlier(std::span<const std::byte> data) {
    constexpr size_t kFixed = offsetof(hp_sys_event, frames);
    if (data.size() < kFixed || reinterpret_cast<uintptr_t>(data.data()) % alignof(uint64_t) != 0)
        return std::nullopt;
    const auto* r = reinterpret_cast<const hp_sys_event*>(data.data());
    if (r->kstack_len > HP_SYS_MAX_FRAMES || r->ustack_len > HP_SYS_MAX_FRAMES ||
        r->pystack_len > HP_PY_MAX_FRAMES || r->nr >= HP_SYS_MAX_NR)
        return std::nullopt;
    size_t frames = size_t{r->kstack_len} + r->ustack_len + r->pystack_len;
    if (data.size() < kFixed + frames * sizeof(uint64_t))
        return std::nullopt;
    const auto* f = reinterpret_cast<const uint64_t*>(data.data() + kFixed);
    const std::span<const uint64_t> user{f + r->kstack_len, r->ustack_len};
    const std::span<const uint64_t> python{f + r->kstack_len + r->ustack_len, r->pystack_len};
    return SyscallOutlierView{
        .pid = r->pid,
        .tid = r->tid,
        .cpu = r->cpu,
        .nr = r->nr,
        .syscall = syscall_name(r->nr),
        .timestamp_ns = r->timestamp_ns,
        .duration_ns = r->duration_ns,
        .cgroup_id = r->cgroup_id,
        .start_time_ns = r->start_time_ns,
        .ret = r->ret,
        .flags = r->flags,
        .comm = std::string_view(r->comm, strnlen(r->comm, HP_SYS_COMM_LEN)),
        .kernel_frames = {f, r->kstack_len},
        .user_frames = splice_python_record(user, python, r->py_eval_lo, r->py_eval_hi),
        .python_frames = r->pystack_len,
    };
}

} // namespace hostprof
