// What the running kernel supports, found out by trying (see probe.cpp), as plain data
// that the pure planner (planner.h) consumes.
#pragma once

#include <cstdint>
#include <set>
#include <string>

namespace hostprof::compat {

struct Feature {
    bool available = false;
    std::string detail; // how it was established, or why it failed
};

struct Features {
    std::string kernel_release;    // uname -r, for reports only: never used to decide
    Feature kernel_btf;            // /sys/kernel/btf/vmlinux parses
    Feature external_btf;          // --btf FILE parses (only probed when given)
    std::string external_btf_path; // the --btf FILE, if any
    Feature ringbuf;               // BPF_MAP_TYPE_RINGBUF can be created
    Feature get_stack;             // bpf_get_stack from perf_event programs
    Feature unwind;                // the maps and helpers of the unwind-table walker
    Feature perf_event;            // a perf_event program attaches to cpu-clock
    Feature tp_btf;                // a tp_btf program loads and attaches (sched_switch)
    Feature raw_tp;                // a raw_tp program loads and attaches (sched_switch)
    Feature tracepoint;            // a classic tracepoint program attaches (tracefs)
    bool tracefs_mounted = false;  // tracefs already mounted where we look
    Feature fentry;                // an fentry program loads and attaches
    Feature kprobe;                // a kprobe attaches through the kprobe PMU
    Feature uprobe;                // a uprobe attaches through the uprobe PMU
    Feature atomics;               // BPF atomic compare-and-exchange loads (5.12+)
    Feature task_btf;              // bpf_get_current_task_btf from perf_event programs (5.11+)
    Feature task_stack;            // bpf_get_task_stack from perf_event programs (5.9+)
    Feature task_storage;          // task-local storage usable from tracing programs (5.11+)
    // The scheduler tick as the on-CPU sampling clock (see tick.h): the tick's hrtimer
    // callback and the timer interrupt's entry found in kallsyms, the interrupted
    // registers reachable (BTF), the tick rate known, and no nohz_full CPU (a busy one
    // has no tick).
    Feature tick;
    uint64_t tick_handler = 0;                 // address of the tick's hrtimer callback
    uint64_t irq_entry = 0, irq_entry_end = 0; // the timer interrupt's entry code
    int64_t irq_regs_from_rq = 0;              // __irq_regs - runqueues, per-CPU (tick.h)
    int tick_hz = 0;                           // CONFIG_HZ: ticks a second on a busy CPU
    // Tracepoints named in the kernel's BTF (as btf_trace_<name>); empty when BTF is absent.
    std::set<std::string> btf_tracepoints;
};

struct ProbeOptions {
    std::string external_btf_path; // --btf FILE
    std::string vmlinux_btf_path = "/sys/kernel/btf/vmlinux";
    std::string tracefs_path = "/sys/kernel/tracing"; // where tracefs is (or would be) mounted
    std::string kallsyms_path = "/proc/kallsyms";
    std::string nohz_full_path = "/sys/devices/system/cpu/nohz_full";
};

// BPF atomics with fetch (BPF_CMPXCHG, Linux 5.12+): a program using one on its stack
// loads. Before, the verifier rejects it ("BPF_STX uses reserved fields"), so programs
// that use it take another path (bpf/block.bpf.c: cfg_cmpxchg).
Feature probe_bpf_atomics();

// bpf_get_current_task_btf (Linux 5.11+) accepted in perf_event programs: the current task
// read by plain BTF loads instead of helper calls (bpf/profile.bpf.c, bpf/block.bpf.c:
// cfg_task_btf); without it, bpf_get_current_task and probe reads.
Feature probe_task_btf();

// bpf_get_task_stack (Linux 5.9+) accepted in perf_event programs: the off-CPU kernel stack
// read from the woken task (bpf/profile.bpf.c: cfg_task_stack) rather than at the block.
Feature probe_task_stack();

// Task-local storage from tracing programs (Linux 5.11+): the map type, and
// bpf_task_storage_get and bpf_get_current_task_btf accepted in raw_tp programs (raw_tp
// true) or classic tracepoint programs (false). Holds the syscall in flight
// (bpf/syscalls.bpf.c: cfg_task_storage); without it, an LRU hash by tid.
Feature probe_task_storage(bool raw_tp);

// Loads and attaches tiny programs to find out what works. Needs CAP_BPF+CAP_PERFMON
// (root); without them every BPF feature reads as unavailable with the errno in detail.
Features probe_features(const ProbeOptions& options);

} // namespace hostprof::compat
