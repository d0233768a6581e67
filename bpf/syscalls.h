/* The ABI between syscalls.bpf.c and userspace: fixed-width fields, no pointers.
 * Shared by BPF C (types from vmlinux.h) and C++ (types from <linux/types.h>). */
#ifndef HOSTPROF_BPF_SYSCALLS_H
#define HOSTPROF_BPF_SYSCALLS_H

#define HP_SYS_MAX_NR \
	512 /* a power of two; syscall numbers 0..511 are counted; others: HP_SYS_STAT_BAD_NR */
#define HP_SYS_SLOTS 36	      /* log2(ns) slots: slot i is [2^i, 2^(i+1)) ns; the last is open */
#define HP_SYS_MAX_CGROUPS 64 /* per-cgroup histograms: allowlist size */
#include "python.h"

#define HP_SYS_MAX_FRAMES 127
#define HP_SYS_COMM_LEN 16

/* Value of hp_sys_hist (per-CPU array indexed by syscall number) and of hp_sys_cg_hist. */
struct hp_sys_hist {
	__u64 slots[HP_SYS_SLOTS];
	__u64 sum_ns;
};

/* Key of hp_sys_cg_hist (per-CPU hash). */
struct hp_sys_cg_key {
	__u64 cgroup_id;
	__u32 nr;
	__u32 pad;
};

/* Key of hp_sys_errors (per-CPU hash, value __u64 count): a failed return, by errno. */
struct hp_sys_err_key {
	__u32 nr;
	__u32 err; /* -ret, 1..4095 */
};

/* Counters in the per-CPU array hp_sys_stats, summed by userspace. */
enum hp_sys_stat {
	HP_SYS_STAT_MISSED_START,  /* sys_exit without a recorded sys_enter */
	HP_SYS_STAT_START_FAILED,  /* the per-thread start map refused an entry */
	HP_SYS_STAT_BAD_NR,	   /* syscall number outside 0..HP_SYS_MAX_NR-1 (e.g. x32) */
	HP_SYS_STAT_ERRNO_FULL,	   /* hp_sys_errors is full: an error went uncounted */
	HP_SYS_STAT_CGROUP_FULL,   /* hp_sys_cg_hist is full: a cgroup observation was lost */
	HP_SYS_STAT_OUTLIERS,	   /* outlier records shipped */
	HP_SYS_STAT_RINGBUF_DROPS, /* outlier lost: ring full */
	HP_SYS_STAT_KSTACK_ERRORS,
	HP_SYS_STAT_USTACK_ERRORS,
	HP_SYS_STAT_MAX,
};

/* hp_sys_event.flags */
enum hp_sys_flags {
	HP_SYS_KSTACK_FULL = 1 << 0, /* kernel stack filled all frames: maybe truncated */
	HP_SYS_USTACK_FULL = 1 << 1,
	HP_SYS_KSTACK_ERR = 1 << 2, /* bpf_get_stack failed for the kernel stack */
	HP_SYS_USTACK_ERR = 1 << 3,
};

/* A syscall slower than its threshold, captured at sys_exit. Variable length: only the
 * first kstack_len + ustack_len + pystack_len entries of frames[] travel (kernel frames,
 * user frames, then the Python frames of bpf/python.h). */
struct hp_sys_event {
	__u32 pid; /* thread group id */
	__u32 tid;
	__u64 timestamp_ns; /* sys_exit time, bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	__u64 duration_ns;
	__u64 cgroup_id;
	__u64 start_time_ns; /* thread group leader start since boot (pid reuse) */
	__s64 ret;
	__u32 nr;
	__u32 cpu;
	__u32 flags;	   /* enum hp_sys_flags */
	__u16 kstack_len;  /* frames */
	__u16 ustack_len;  /* frames */
	__u16 pystack_len; /* Python frames, after the user frames */
	__u16 pad16;
	__u32 pad32;
	__u64 py_eval_lo, py_eval_hi; /* the interpreter loop's code (see bpf/profile.h) */
	char comm[HP_SYS_COMM_LEN];
	__u64 frames[2 * HP_SYS_MAX_FRAMES + HP_PY_MAX_FRAMES];
};

#endif /* HOSTPROF_BPF_SYSCALLS_H */
