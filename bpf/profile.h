/* The ABI between profile.bpf.c and userspace: fixed-width fields, no pointers.
 * Shared by BPF C (types from vmlinux.h) and C++ (types from <linux/types.h>). */
#ifndef HOSTPROF_BPF_PROFILE_H
#define HOSTPROF_BPF_PROFILE_H

#include "python.h"

#define HP_PROF_MAX_FRAMES 127
#define HP_PROF_COMM_LEN 16

/* Record kinds on the profile ring buffer. */
enum hp_prof_kind {
	HP_PROF_ON_CPU = 1,  /* an on-CPU sample (cpu-clock event or scheduler tick) */
	HP_PROF_OFF_CPU = 2, /* a thread came back on CPU after blocking >= threshold */
	HP_PROF_EXEC = 3,    /* sched_process_exec: process metadata is stale */
	HP_PROF_EXIT = 4,    /* sched_process_exit of a thread group leader */
	/* Userspace only, never in this ring: a slow syscall (syscalls.bpf.c outlier) fed
	 * into the profile pipeline, weighted by its latency. */
	HP_PROF_SYSCALL_LATENCY = 5,
};

/* hp_prof_stack.flags */
enum hp_prof_flags {
	HP_PROF_KSTACK_FULL = 1 << 0, /* kernel stack filled all frames: maybe truncated */
	HP_PROF_USTACK_FULL = 1 << 1, /* user stack filled all frames: maybe truncated */
	HP_PROF_KSTACK_ERR = 1 << 2,  /* bpf_get_stack failed for the kernel stack */
	HP_PROF_USTACK_ERR = 1 << 3,  /* bpf_get_stack failed for the user stack */
	/* The first sample with a user stack of a process (pid, start time) since it started
	 * or exec'd: shipped with a forced wakeup, so userspace reads /proc/PID/maps while the
	 * process still lives (everything else is batched). */
	HP_PROF_NEW_PROCESS = 1 << 4,
	/* The first sample of that process HP_PROF_RECAPTURE_NS or more after its first one:
	 * also a forced wakeup, for a second read of its mappings (the first sample often
	 * comes while the dynamic loader is still mapping the shared libraries). */
	HP_PROF_RECAPTURE = 1 << 5,
};

/* Tick sampler: at most this many kernel frames (this program's, the hrtimer code's) are
 * looked through for the timer interrupt's entry. */
#define HP_PROF_TICK_MAX_SKIP 32

#define HP_PROF_RECAPTURE_NS 5000000ULL /* 5 ms */
/* Processes at least this old get no forced wakeup (and cost no map lookup): the timed
 * drain reads them while they live. */
#define HP_PROF_YOUNG_NS 1000000000ULL /* 1 s */

/* Counters in the per-CPU array `hp_prof_stats`, summed by userspace. */
enum hp_prof_stat {
	HP_PROF_STAT_ON_CPU_SAMPLES, /* samples seen by the perf_event program */
	HP_PROF_STAT_ON_CPU_IDLE,    /* samples of the idle task, not shipped */
	HP_PROF_STAT_FILTERED,	     /* samples dropped by the pid/cgroup filter */
	HP_PROF_STAT_RINGBUF_DROPS,  /* bpf_ringbuf_output failed: ring full */
	HP_PROF_STAT_KSTACK_ERRORS,
	HP_PROF_STAT_USTACK_ERRORS,
	HP_PROF_STAT_OFF_CPU_EVENTS,	 /* blocked intervals >= threshold shipped */
	HP_PROF_STAT_OFF_CPU_START_LOST, /* switch-in without a recorded switch-out */
	HP_PROF_STAT_PROC_EVENTS,	 /* exec/exit records shipped */
	HP_PROF_STAT_WAKEUPS,		 /* records shipped with BPF_RB_FORCE_WAKEUP */
	HP_PROF_STAT_PROCESS_WAKEUPS,	 /* of those: HP_PROF_NEW_PROCESS or _RECAPTURE */
	HP_PROF_STAT_TICKS,		 /* tick sampler: scheduler ticks seen (sampled or not) */
	/* tick sampler: the timer interrupt's entry was not among the first
	 * HP_PROF_TICK_MAX_SKIP kernel frames, so the interrupt's own frames were kept */
	HP_PROF_STAT_TICK_UNTRIMMED,
	/* tick sampler: the interrupted registers could not be read (the kernel stack was
	 * walked to tell user from kernel mode) */
	HP_PROF_STAT_TICK_REGS_UNKNOWN,
	/* tick sampler: the registers said kernel mode, the walk found none (a wrong
	 * register read: checked on every kernel-mode sample) */
	HP_PROF_STAT_TICK_REGS_MISMATCH,
	HP_PROF_STAT_MAX,
};

/* Key of `hp_prof_known` (value: __u64, the time of its first sample, 0 once recaptured):
 * the processes whose first sample was already shipped. */
struct hp_prof_proc_key {
	__u32 pid;
	__u32 pad; /* zero */
	__u64 start_time_ns;
};

/* A header common to every record on the ring. */
struct hp_prof_header {
	__u32 kind; /* enum hp_prof_kind */
	__u32 pid;  /* thread group id */
	__u32 tid;
	__u32 cpu;
	__u64 timestamp_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
};

/* HP_PROF_ON_CPU and HP_PROF_OFF_CPU. Variable length: only the first
 * kstack_len + ustack_len + pystack_len entries of frames[] travel (kernel frames, user
 * frames, then the Python frames of bpf/python.h). */
struct hp_prof_stack {
	struct hp_prof_header hdr;
	__u64 cgroup_id;
	__u64 start_time_ns; /* process start (leader's start_boottime): pid + this = identity */
	__u64 weight_ns;     /* off-CPU: blocked time; on-CPU: 0 (userspace uses the period) */
	__u16 flags;	     /* enum hp_prof_flags */
	/* Leading kernel frames that are not the task's: the tick sampler's own (timer
	 * interrupt, hrtimer code, this program: trim_to_interrupted). They travel, and
	 * userspace drops them: moving the kept frames down in BPF took a 254-step loop the
	 * verifier spent ~0.5 s of the agent's start on. */
	__u16 kstack_skip;
	__u16 kstack_len;  /* frames, the skipped ones included */
	__u16 ustack_len;  /* frames */
	__u16 pystack_len; /* Python frames (bpf/python.h), after the user frames */
	__u16 pad16;
	__u32 pad32;
	/* With Python frames: the interpreter loop's code [py_eval_lo, py_eval_hi), whose
	 * native frames the Python frames replace. */
	__u64 py_eval_lo, py_eval_hi;
	char comm[HP_PROF_COMM_LEN];
	__u64 frames[2 * HP_PROF_MAX_FRAMES + HP_PY_MAX_FRAMES];
};

/* HP_PROF_EXEC and HP_PROF_EXIT. */
struct hp_prof_proc {
	struct hp_prof_header hdr;
	__u64 cgroup_id;
	__u64 start_time_ns; /* task->start_time: with pid, identifies a process across pid reuse */
	char comm[HP_PROF_COMM_LEN];
};

#endif /* HOSTPROF_BPF_PROFILE_H */
