// SPDX-License-Identifier: GPL-2.0
/* Syscall latency: raw_syscalls sys_enter/sys_exit. Every syscall is aggregated in
 * kernel maps (per-CPU log2 histograms by syscall number, error counts by errno,
 * optionally per allowlisted cgroup); only the slow ones travel, with their stacks,
 * through the ring buffer. tp_btf, raw_tp and classic tracepoint variants of both hooks
 * are compiled; userspace enables the one kernel-compat chose. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "lib/hp_log2.h"
#include "lib/hp_native.h"
#include "lib/hp_task.h"
#include "lib/hp_unwind.h"
#include "lib/hp_python.h"
#include "syscalls.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by userspace between open and load. */
const volatile bool cfg_per_cgroup = false; /* fill hp_sys_cg_hist for hp_sys_cgroups */
const volatile __u32 cfg_filter_tgid = 0;   /* 0: every process */
/* The agent itself: its slow calls (the consumers' waits) are counted in the histograms
 * but never streamed as outliers, or each wait would wake the consumer for the next. */
const volatile __u32 cfg_self_tgid = 0;
const volatile __s64 cfg_nr_exit = -1; /* exit and exit_group never return: not timed */
const volatile __s64 cfg_nr_exit_group = -1;
const volatile __u64 cfg_wakeup_bytes = 64 * 1024;
/* Task-local storage for the syscall in flight (Linux 5.11+); false: the LRU hash. */
const volatile bool cfg_task_storage = true;
/* The syscall in flight is written to a per-CPU slot, moved to task storage only when its
 * thread is switched out (hp_sysswitch_btf attached): tp_btf with task storage only. */
const volatile bool cfg_cpu_slot = false;
/* Outlier threshold per syscall number; 0: never an outlier. */
const volatile __u64 cfg_outlier_ns[HP_SYS_MAX_NR] = {};
/* The smallest non-zero cfg_outlier_ns (0: no outliers at all). A scalar of the frozen
 * .rodata is a constant to the verifier, so a syscall faster than every threshold skips
 * the per-number load: one data page less touched per syscall (measured ~20 ns at syscall
 * entry/exit on a PTI machine, where the TLB is cold after the switch). */
const volatile __u64 cfg_outlier_min_ns = 0;

struct hp_sys_start {
	__u64 ts; /* 0: no syscall in flight */
	__u64 nr;
};

/* The syscall in flight, per thread. Task-local storage is the fast path: it lives in the
 * task and dies with it, and a lookup is a pointer walk rather than a hash. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct hp_sys_start);
} hp_sys_task SEC(".maps");

/* Fallback for kernels without task storage in tracing programs: tid -> the syscall in
 * flight. LRU: threads that die inside a syscall are evicted. Entries are reused in
 * place, so a syscall costs no map allocation. Not created when hp_sys_task is used. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct hp_sys_start);
} hp_sys_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HP_SYS_MAX_NR);
	__type(key, __u32);
	__type(value, struct hp_sys_hist);
} hp_sys_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct hp_sys_err_key);
	__type(value, __u64);
} hp_sys_errors SEC(".maps");

/* The cgroup allowlist (cgroup id -> 1) and the per-cgroup histograms. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HP_SYS_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, __u8);
} hp_sys_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, HP_SYS_MAX_CGROUPS * 64);
	__type(key, struct hp_sys_cg_key);
	__type(value, struct hp_sys_hist);
} hp_sys_cg_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HP_SYS_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hp_sys_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 512 * 1024);
} hp_sys_events SEC(".maps");

/* Per-CPU scratch for the outlier record: too large for the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hp_sys_event);
} hp_sys_scratch SEC(".maps");

/* The syscall in flight on this CPU, of the task `task` (its address). Most syscalls
 * return on the CPU they entered without a context switch: their enter and exit touch
 * only this slot (an inlined array lookup) instead of getting the thread's task storage
 * twice. A thread switched out inside a syscall has its entry moved to task storage by
 * hp_sysswitch_btf, so the slot never holds a thread that is not running. */
struct hp_sys_cpu_slot {
	__u64 task; /* 0: empty */
	struct hp_sys_start s;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hp_sys_cpu_slot);
} hp_sys_cpu SEC(".maps");

static __always_inline struct hp_sys_cpu_slot *cpu_slot(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&hp_sys_cpu, &zero);
}

static const struct hp_sys_hist zero_hist;

static __always_inline void count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&hp_sys_stats, &stat);

	if (v)
		*v += 1;
}

static __always_inline void observe(struct hp_sys_hist *h, __u64 delta)
{
	__u32 slot = hp_log2_slot(delta, HP_SYS_SLOTS);

	if (slot < HP_SYS_SLOTS)
		h->slots[slot] += 1;
	h->sum_ns += delta;
}

/* This thread's in-flight slot; with `create`, made on first use. */
static __always_inline struct hp_sys_start *start_slot(bool create)
{
	struct hp_sys_start init = {};
	__u32 tid;

	if (cfg_task_storage)
		return bpf_task_storage_get(&hp_sys_task, bpf_get_current_task_btf(), 0,
					    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	tid = (__u32)bpf_get_current_pid_tgid();
	struct hp_sys_start *s = bpf_map_lookup_elem(&hp_sys_start, &tid);

	if (s || !create)
		return s;
	bpf_map_update_elem(&hp_sys_start, &tid, &init, BPF_ANY);
	return bpf_map_lookup_elem(&hp_sys_start, &tid);
}

static __always_inline int on_enter(long nr)
{
	struct hp_sys_start *s;

	/* Every helper call counts at ~10 million syscalls a second: the pid only when a
	 * filter needs it (the clock read is the one cost that cannot go). */
	if (cfg_filter_tgid && (bpf_get_current_pid_tgid() >> 32) != cfg_filter_tgid)
		return 0;
	if (nr == cfg_nr_exit || nr == cfg_nr_exit_group)
		return 0;
	if (cfg_cpu_slot) {
		struct hp_sys_cpu_slot *c = cpu_slot();

		if (c) {
			c->task = bpf_get_current_task();
			c->s.nr = nr;
			c->s.ts = bpf_ktime_get_ns();
			return 0;
		}
	}
	s = start_slot(true);
	if (!s) {
		count(HP_SYS_STAT_START_FAILED);
		return 0;
	}
	s->nr = nr;
	s->ts = bpf_ktime_get_ns();
	return 0;
}

static __always_inline void count_error(__u32 nr, long ret)
{
	struct hp_sys_err_key key = {.nr = nr, .err = (__u32)-ret};
	__u64 *v = bpf_map_lookup_elem(&hp_sys_errors, &key);
	__u64 one = 1;

	if (v) {
		*v += 1;
		return;
	}
	if (bpf_map_update_elem(&hp_sys_errors, &key, &one, BPF_NOEXIST) != 0) {
		/* Another CPU may have created it meanwhile: per-CPU values, so retry once. */
		v = bpf_map_lookup_elem(&hp_sys_errors, &key);
		if (v)
			*v += 1;
		else
			count(HP_SYS_STAT_ERRNO_FULL);
	}
}

static __always_inline void observe_cgroup(__u64 cgroup_id, __u32 nr, __u64 delta)
{
	struct hp_sys_cg_key key = {.cgroup_id = cgroup_id, .nr = nr};
	struct hp_sys_hist *h;

	if (!bpf_map_lookup_elem(&hp_sys_cgroups, &cgroup_id))
		return;
	h = bpf_map_lookup_elem(&hp_sys_cg_hist, &key);
	if (!h) {
		bpf_map_update_elem(&hp_sys_cg_hist, &key, &zero_hist, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hp_sys_cg_hist, &key);
		if (!h) {
			count(HP_SYS_STAT_CGROUP_FULL);
			return;
		}
	}
	observe(h, delta);
}

static __always_inline __u64 wakeup_flag(void)
{
	return bpf_ringbuf_query(&hp_sys_events, BPF_RB_AVAIL_DATA) >= cfg_wakeup_bytes
		   ? BPF_RB_FORCE_WAKEUP
		   : BPF_RB_NO_WAKEUP;
}

static __always_inline void ship_outlier(void *ctx, __u64 id, __u32 nr, long ret, __u64 now,
					 __u64 delta, __u64 cgroup_id)
{
	__u32 zero = 0, nk;
	struct hp_sys_event *e = bpf_map_lookup_elem(&hp_sys_scratch, &zero);
	struct hp_unw_walk *w;
	__u64 size;
	long k, u;

	if (!e)
		return;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->timestamp_ns = now;
	e->duration_ns = delta;
	e->cgroup_id = cgroup_id;
	e->start_time_ns = hp_leader_start_time();
	e->ret = ret;
	e->nr = nr;
	e->cpu = bpf_get_smp_processor_id();
	e->flags = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	k = bpf_get_stack(ctx, e->frames, HP_SYS_MAX_FRAMES * sizeof(__u64), 0);
	if (k < 0) {
		e->flags |= HP_SYS_KSTACK_ERR;
		count(HP_SYS_STAT_KSTACK_ERRORS);
		k = 0;
	}
	nk = (__u32)k / sizeof(__u64);
	if (nk >= HP_SYS_MAX_FRAMES) {
		nk = HP_SYS_MAX_FRAMES;
		e->flags |= HP_SYS_KSTACK_FULL;
	}
	/* Bounds the verifier can follow: the user frames start at most at frames[127]. */
	nk &= 0xff;
	if (nk > HP_SYS_MAX_FRAMES)
		nk = HP_SYS_MAX_FRAMES;
	w = hp_unwind_user(e->pid);
	if (w) {
		u = hp_unw_copy(&e->frames[nk], w); /* unwound with tables */
		if (w->stop == HP_UNW_STAT_DEPTH_LIMIT)
			e->flags |= HP_SYS_USTACK_FULL;
		goto done;
	}
	u = bpf_get_stack(ctx, &e->frames[nk], HP_SYS_MAX_FRAMES * sizeof(__u64), BPF_F_USER_STACK);
	if (u < 0) {
		e->flags |= HP_SYS_USTACK_ERR;
		count(HP_SYS_STAT_USTACK_ERRORS);
		u = 0;
	}
	u /= sizeof(__u64);
	if (u >= HP_SYS_MAX_FRAMES) {
		u = HP_SYS_MAX_FRAMES;
		e->flags |= HP_SYS_USTACK_FULL;
	}
done:
	/* Bounds the verifier can follow: the Python frames start at most at frames[254]. */
	u &= 0xff;
	if (u > HP_SYS_MAX_FRAMES)
		u = HP_SYS_MAX_FRAMES;
	e->kstack_len = nk;
	e->ustack_len = u;
	e->py_eval_lo = e->py_eval_hi = 0;
	e->pystack_len = hp_python_frames(e->pid, e->tid, now, &e->frames[nk + u], &e->py_eval_lo,
					  &e->py_eval_hi);

	size = __builtin_offsetof(struct hp_sys_event, frames) +
	       ((__u64)nk + u + e->pystack_len) * sizeof(__u64);
	if (size > sizeof(*e))
		size = sizeof(*e);
	if (bpf_ringbuf_output(&hp_sys_events, e, size, wakeup_flag()) != 0)
		count(HP_SYS_STAT_RINGBUF_DROPS);
	else
		count(HP_SYS_STAT_OUTLIERS);
}

static __always_inline int on_exit(void *ctx, long ret)
{
	struct hp_sys_start *s;
	struct hp_sys_hist *h;
	__u64 now, delta, cgroup_id = 0, threshold;
	__u32 nr;

	if (cfg_filter_tgid && (bpf_get_current_pid_tgid() >> 32) != cfg_filter_tgid)
		return 0;
	s = NULL;
	if (cfg_cpu_slot) {
		struct hp_sys_cpu_slot *c = cpu_slot();

		if (c && c->task == bpf_get_current_task() && c->s.ts != 0) {
			c->task = 0;
			s = &c->s;
		}
	}
	if (!s)
		s = start_slot(false);
	if (!s || s->ts == 0) {
		count(HP_SYS_STAT_MISSED_START);
		return 0;
	}
	now = bpf_ktime_get_ns();
	delta = now - s->ts;
	s->ts = 0; /* consumed; the entry stays for this thread's next syscall */
	if (s->nr >= HP_SYS_MAX_NR) {
		count(HP_SYS_STAT_BAD_NR);
		return 0;
	}
	nr = (__u32)s->nr;

	h = bpf_map_lookup_elem(&hp_sys_hist, &nr);
	if (h)
		observe(h, delta);
	hp_native_add(nr, delta); /* histogram nr; host-wide only */
	if (ret < 0 && ret >= -4095)
		count_error(nr, ret);
	if (cfg_per_cgroup) {
		cgroup_id = bpf_get_current_cgroup_id();
		observe_cgroup(cgroup_id, nr, delta);
	}
	if (!cfg_outlier_min_ns || delta < cfg_outlier_min_ns)
		return 0;
	/* nr < HP_SYS_MAX_NR (a power of two) was checked above, but the compiler may spill
	 * it and the verifier then forgets the bound: the mask restates it. */
	threshold = cfg_outlier_ns[nr & (HP_SYS_MAX_NR - 1)];
	if (threshold && delta >= threshold) {
		__u64 id = bpf_get_current_pid_tgid();

		if ((id >> 32) == cfg_self_tgid)
			return 0;
		if (!cfg_per_cgroup)
			cgroup_id = bpf_get_current_cgroup_id();
		ship_outlier(ctx, id, nr, ret, now, delta, cgroup_id);
	}
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(hp_sysenter_btf, struct pt_regs *regs, long id)
{
	return on_enter(id);
}

SEC("raw_tp/sys_enter")
int BPF_PROG(hp_sysenter_raw, struct pt_regs *regs, long id)
{
	return on_enter(id);
}

SEC("tracepoint/raw_syscalls/sys_enter")
int hp_sysenter_tp(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter(ctx->id);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(hp_sysexit_btf, struct pt_regs *regs, long ret)
{
	return on_exit(ctx, ret);
}

SEC("raw_tp/sys_exit")
int BPF_PROG(hp_sysexit_raw, struct pt_regs *regs, long ret)
{
	return on_exit(ctx, ret);
}

SEC("tracepoint/raw_syscalls/sys_exit")
int hp_sysexit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx, ctx->ret);
}

/* A thread switched out inside a syscall (it blocks, or is preempted): its entry leaves
 * this CPU's slot for its task storage, where its exit finds it on whichever CPU it
 * resumes. Runs in the context of prev. */
SEC("tp_btf/sched_switch")
int BPF_PROG(hp_sysswitch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct hp_sys_cpu_slot *c = cpu_slot();
	struct hp_sys_start *s;

	/* The slot is someone's only while that thread runs: current is prev here. */
	if (!c || c->task != bpf_get_current_task())
		return 0;
	s = bpf_task_storage_get(&hp_sys_task, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (s) {
		s->nr = c->s.nr;
		s->ts = c->s.ts;
	} else {
		count(HP_SYS_STAT_START_FAILED);
	}
	c->task = 0;
	return 0;
}
