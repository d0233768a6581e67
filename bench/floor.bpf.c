// SPDX-License-Identifier: GPL-2.0
/* The physical floor of syscall tracing: empty tp_btf programs on sys_enter and
 * sys_exit. Whatever a syscall collector costs above this is its own work. The second
 * pair adds what no latency tool can skip: one clock read per hook. The last program is
 * the floor of sampling: an empty program on the cpu-clock event, so each sample costs
 * the timer interrupt and the overflow handler, and nothing a profiler does with it. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sys_enter")
int BPF_PROG(hpb_floor_enter, struct pt_regs* regs, long id) {
    return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(hpb_floor_exit, struct pt_regs* regs, long ret) {
    return 0;
}

__u64 hpb_sink;

SEC("tp_btf/sys_enter")
int BPF_PROG(hpb_clock_enter, struct pt_regs* regs, long id) {
    hpb_sink = bpf_ktime_get_ns();
    return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(hpb_clock_exit, struct pt_regs* regs, long ret) {
    hpb_sink = bpf_ktime_get_ns();
    return 0;
}

SEC("perf_event")
int hpb_sample(void* ctx) {
    return 0;
}
