// SPDX-License-Identifier: GPL-2.0
/* CPU profiling: on-CPU samples (from a perf_event cpu-clock program, or from the
 * scheduler tick the kernel takes anyway), off-CPU intervals from sched_switch, and
 * process exec/exit notices, all on one ring.
 * Both a tp_btf and a raw_tp variant of every tracepoint hook are compiled;
 * userspace enables the one kernel-compat chose (bpf_program__set_autoload). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "lib/hp_task.h"
#include "lib/hp_unwind.h"
#include "lib/hp_python.h"
#include "profile.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by userspace between open and load. */
const volatile bool cfg_filter_pids = false;
const volatile bool cfg_filter_cgroups = false;
const volatile bool cfg_skip_idle = true;
const volatile __u64 cfg_offcpu_min_ns = 1000000;   /* 1 ms */
const volatile __u64 cfg_wakeup_bytes = 256 * 1024; /* wake the consumer past this fill */
const volatile bool cfg_task_btf = false;	    /* bpf_get_current_task_btf usable here */
const volatile bool cfg_task_stack = false;	    /* bpf_get_task_stack usable here (5.9+) */
/* Tick sampler: the tick's hrtimer callback and the timer interrupt's entry code
 * [lo, hi) (both from kallsyms), the share of ticks that become samples as a bound on
 * a 32-bit fixed-point share (1 << 32: every tick), and where this CPU's __irq_regs lies
 * from its runqueue (both per-CPU variables: the kernel's BTF gives their offsets in the
 * per-CPU section; 0: unknown). */
const volatile __u64 cfg_tick_fn = 0;
const volatile __u64 cfg_irq_entry_lo = 0;
const volatile __u64 cfg_irq_entry_hi = 0;
const volatile __u64 cfg_tick_below = 0;
const volatile __s64 cfg_irq_regs_from_rq = 0;

/* Tick sampler: per CPU, the share of a sample owed so far (32-bit fixed point). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hp_prof_tick_owed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 2 * 1024 * 1024);
} hp_prof_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HP_PROF_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hp_prof_stats SEC(".maps");

/* Per-CPU scratch record: too large for the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hp_prof_stack);
} hp_prof_scratch SEC(".maps");

/* tid -> the stack and time at which the thread blocked. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct hp_prof_stack);
} hp_prof_blocked SEC(".maps");

/* (pid, start time) of the processes whose first sample already went out with a forced
 * wakeup. LRU: an evicted process costs one more wakeup, nothing else. Entries go at
 * exec (new mappings) and exit. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct hp_prof_proc_key);
	__type(value, __u64);
} hp_prof_known SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} hp_prof_pids SEC(".maps");

/* The `cgroup` setting: only tasks in this cgroup v2 directory or below it (descendants
 * created later included) are profiled. Index 0 holds the directory's descriptor. */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} hp_prof_cgroup_tree SEC(".maps");

static __always_inline void count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&hp_prof_stats, &stat);

	if (v)
		*v += 1;
}

static __always_inline bool wanted(__u32 pid, __u64 cgroup_id)
{
	if (cfg_filter_pids && !bpf_map_lookup_elem(&hp_prof_pids, &pid))
		return false;
	if (cfg_filter_cgroups && bpf_current_task_under_cgroup(&hp_prof_cgroup_tree, 0) != 1)
		return false;
	return true;
}

/* Wakeups are batched: the consumer is woken only past cfg_wakeup_bytes of unread data
 * (and otherwise drains on its own timer), never once per record. */
static __always_inline __u64 wakeup_flag(void)
{
	if (bpf_ringbuf_query(&hp_prof_events, BPF_RB_AVAIL_DATA) >= cfg_wakeup_bytes) {
		count(HP_PROF_STAT_WAKEUPS);
		return BPF_RB_FORCE_WAKEUP;
	}
	return BPF_RB_NO_WAKEUP;
}

/* The exception: the first sample of a process userspace has not captured yet wakes it
 * at once, so that a process living a few milliseconds is still in /proc when its
 * mappings are read. Kernel threads (no user stack) need no capture. */
static __always_inline __u64 new_process_wakeup(struct hp_prof_stack *e)
{
	struct hp_prof_proc_key key = {};
	__u64 now = e->hdr.timestamp_ns;
	__u64 *first;

	if (e->ustack_len == 0)
		return 0;
	/* A process older than this was either captured already or is not going to vanish
	 * before the next timed drain: no map lookup. start_time is boot-based and now
	 * monotonic (never ahead of boottime), so the difference never overstates the age. */
	if (now > e->start_time_ns && now - e->start_time_ns > HP_PROF_YOUNG_NS)
		return 0;
	key.pid = e->hdr.pid;
	key.start_time_ns = e->start_time_ns;
	first = bpf_map_lookup_elem(&hp_prof_known, &key);
	if (first) {
		/* One more wakeup a few ms later: the libraries are mapped by then. */
		if (*first == 0 || now < *first + HP_PROF_RECAPTURE_NS)
			return 0;
		/* A plain store: compare-and-swap is Linux 5.12+ (5.10's verifier rejects it,
		 * "BPF_STX uses reserved fields"). Two CPUs racing here both wake the consumer,
		 * which captures the process once more: harmless. */
		*first = 0;
		e->flags |= HP_PROF_RECAPTURE;
		count(HP_PROF_STAT_PROCESS_WAKEUPS);
		count(HP_PROF_STAT_WAKEUPS);
		return BPF_RB_FORCE_WAKEUP;
	}
	if (now == 0 || bpf_map_update_elem(&hp_prof_known, &key, &now, BPF_NOEXIST) != 0)
		return 0; /* another CPU just did: it wakes the consumer */
	e->flags |= HP_PROF_NEW_PROCESS;
	count(HP_PROF_STAT_PROCESS_WAKEUPS);
	count(HP_PROF_STAT_WAKEUPS);
	return BPF_RB_FORCE_WAKEUP;
}

/* The current process's identity: pid + this = (pid, start time). Direct BTF loads where
 * the program may use bpf_get_current_task_btf (Linux 5.11+): two probe-read helpers
 * fewer per sample. */
static __always_inline __u64 leader_start_time(void)
{
	if (cfg_task_btf)
		return bpf_get_current_task_btf()->group_leader->start_boottime;
	return hp_leader_start_time();
}

/* The kernel frames a stack helper returned (k: bytes or an error), with e's flags. */
static __always_inline __u32 kernel_frames(struct hp_prof_stack *e, long k)
{
	__u32 nk;

	if (k < 0) {
		e->flags |= HP_PROF_KSTACK_ERR;
		count(HP_PROF_STAT_KSTACK_ERRORS);
		k = 0;
	}
	nk = (__u32)k / sizeof(__u64);
	if (nk >= HP_PROF_MAX_FRAMES) {
		nk = HP_PROF_MAX_FRAMES;
		e->flags |= HP_PROF_KSTACK_FULL;
	}
	return nk;
}

/* Fills header, comm, cgroup and both stacks of the current task into e. in_user: the
 * sample interrupted user mode, so there is no kernel stack to ask for. */
static __always_inline void capture(void *ctx, struct hp_prof_stack *e, __u32 kind, __u64 id,
				    __u64 cgroup_id, __u64 now, bool in_user)
{
	struct hp_unw_walk *w;
	long u;
	__u32 nk;

	e->hdr.kind = kind;
	e->hdr.pid = id >> 32;
	e->hdr.tid = (__u32)id;
	e->hdr.cpu = bpf_get_smp_processor_id();
	e->hdr.timestamp_ns = now;
	e->cgroup_id = cgroup_id;
	e->start_time_ns = leader_start_time();
	e->weight_ns = 0;
	e->flags = 0;
	e->kstack_skip = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	nk = kernel_frames(
	    e, in_user ? 0 : bpf_get_stack(ctx, e->frames, HP_PROF_MAX_FRAMES * sizeof(__u64), 0));
	/* Bounds the verifier can follow: the user frames start at most at frames[127]. */
	nk &= 0xff;
	if (nk > HP_PROF_MAX_FRAMES)
		nk = HP_PROF_MAX_FRAMES;
	e->kstack_len = nk;
	w = hp_unwind_user(e->hdr.pid);
	if (w) {
		u = hp_unw_copy(&e->frames[nk], w); /* unwound with tables */
		if (w->stop == HP_UNW_STAT_DEPTH_LIMIT)
			e->flags |= HP_PROF_USTACK_FULL;
	} else {
		u = bpf_get_stack(ctx, &e->frames[nk], HP_PROF_MAX_FRAMES * sizeof(__u64),
				  BPF_F_USER_STACK);
		if (u < 0) {
			e->flags |= HP_PROF_USTACK_ERR;
			count(HP_PROF_STAT_USTACK_ERRORS);
			u = 0;
		}
		u /= sizeof(__u64);
		if (u >= HP_PROF_MAX_FRAMES) {
			u = HP_PROF_MAX_FRAMES;
			e->flags |= HP_PROF_USTACK_FULL;
		}
	}
	/* Bounds the verifier can follow: the Python frames start at most at frames[254]. */
	u &= 0xff;
	if (u > HP_PROF_MAX_FRAMES)
		u = HP_PROF_MAX_FRAMES;
	e->ustack_len = u;
	e->py_eval_lo = e->py_eval_hi = 0;
	e->pystack_len = hp_python_frames(e->hdr.pid, e->hdr.tid, now, &e->frames[nk + u],
					  &e->py_eval_lo, &e->py_eval_hi);
}

static __always_inline long ship(struct hp_prof_stack *e)
{
	__u64 size = __builtin_offsetof(struct hp_prof_stack, frames) +
		     ((__u64)e->kstack_len + e->ustack_len + e->pystack_len) * sizeof(__u64);
	__u64 flag = new_process_wakeup(e);

	if (size > sizeof(*e))
		size = sizeof(*e);
	return bpf_ringbuf_output(&hp_prof_events, e, size, flag ? flag : wakeup_flag());
}

/* The sample interrupted user mode (x86: CPL 3 in cs; arm64: EL0 in pstate). */
static __always_inline bool interrupted_user(struct bpf_perf_event_data *ctx)
{
#if defined(__TARGET_ARCH_x86)
	/* A context load must be 8 bytes wide: cs is the low half of its slot. */
	__u64 cs = *(__u64 *)((void *)&ctx->regs + __builtin_offsetof(struct pt_regs, cs));

	return (cs & 3) == 3;
#elif defined(__TARGET_ARCH_arm64)
	return (ctx->regs.pstate & 0xf) == 0;
#else
	return false;
#endif
}

/* The tick sampler walks the kernel stack from inside the timer interrupt: this
 * program, the hrtimer code, the interrupt's entry code, then what the interrupt found.
 * Marks all but that last part to be skipped (kstack_skip), so a sample's kernel stack
 * starts where the task was, as a perf_event sample's does. Nothing left means the tick
 * came from user mode. */
static __always_inline void trim_to_interrupted(struct hp_prof_stack *e)
{
	__u32 nk = e->kstack_len, skip;

	for (skip = 0; skip < HP_PROF_TICK_MAX_SKIP; skip++) {
		if (skip >= nk)
			break;
		if (e->frames[skip] >= cfg_irq_entry_lo && e->frames[skip] < cfg_irq_entry_hi)
			goto found;
	}
	count(HP_PROF_STAT_TICK_UNTRIMMED);
	return;
found:
	e->kstack_skip = skip + 1; /* the entry frame goes too */
}

enum hp_sample_source {
	FROM_PERF_EVENT,   /* the walk starts at the interrupted instruction */
	FROM_TICK,	   /* the walk starts inside the timer interrupt; in_user is known */
	FROM_TICK_UNKNOWN, /* the same, and only the walk tells user from kernel mode */
};

/* One on-CPU sample of the current task. in_user: it was interrupted in user mode (no
 * kernel stack to walk). */
static __always_inline int on_cpu_sample(void *ctx, bool in_user, enum hp_sample_source src)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 cgroup_id;
	__u32 zero = 0;
	struct hp_prof_stack *e;

	count(HP_PROF_STAT_ON_CPU_SAMPLES);
	if (cfg_skip_idle && (__u32)id == 0) {
		count(HP_PROF_STAT_ON_CPU_IDLE);
		return 0;
	}
	cgroup_id = bpf_get_current_cgroup_id();
	if (!wanted(id >> 32, cgroup_id)) {
		count(HP_PROF_STAT_FILTERED);
		return 0;
	}
	e = bpf_map_lookup_elem(&hp_prof_scratch, &zero);
	if (!e)
		return 0;
	capture(ctx, e, HP_PROF_ON_CPU, id, cgroup_id, bpf_ktime_get_ns(), in_user);
	if (src != FROM_PERF_EVENT && !in_user) {
		trim_to_interrupted(e);
		if (src == FROM_TICK && e->kstack_len == e->kstack_skip)
			count(HP_PROF_STAT_TICK_REGS_MISMATCH);
	}
	if (ship(e) != 0)
		count(HP_PROF_STAT_RINGBUF_DROPS);
	return 0;
}

SEC("perf_event")
int hp_cpu_sample(struct bpf_perf_event_data *ctx)
{
	return on_cpu_sample(ctx, interrupted_user(ctx), FROM_PERF_EVENT);
}

/* This CPU's runqueue, found from the current task (whose runqueue it is: checked by
 * rq->curr). NULL for a task of another class whose runqueue link is not there. */
static __always_inline struct rq *current_rq(struct task_struct *t)
{
	struct rq *rq = NULL;

	if (bpf_core_field_exists(struct cfs_rq, rq))
		rq = BPF_CORE_READ(t, se.cfs_rq, rq);
	if (rq && BPF_CORE_READ(rq, curr) == t)
		return rq;
	rq = NULL;
	if (bpf_core_field_exists(struct rt_rq, rq))
		rq = BPF_CORE_READ(t, rt.rt_rq, rq);
	if (rq && BPF_CORE_READ(rq, curr) == t)
		return rq;
	return NULL;
}

/* Whether the tick interrupted user mode, from the registers the interrupt saved
 * (__irq_regs, a per-CPU variable: BPF addresses one directly with bpf_this_cpu_ptr only
 * on kernels with CONFIG_KALLSYMS_ALL, so it is reached from this CPU's runqueue, at the
 * distance the kernel's BTF gives). *known = false when that fails: the kernel stack is
 * then walked, which tells too, at several times the cost. */
static __always_inline bool tick_in_user(bool *known)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct pt_regs *regs = NULL;
	struct rq *rq;

	*known = false;
	if (cfg_irq_regs_from_rq == 0)
		return false;
	rq = current_rq(t);
	if (!rq ||
	    bpf_probe_read_kernel(&regs, sizeof(regs), (void *)rq + cfg_irq_regs_from_rq) != 0 ||
	    !regs)
		return false;
	*known = true;
#if defined(__TARGET_ARCH_x86)
	return (BPF_CORE_READ(regs, cs) & 3) == 3;
#elif defined(__TARGET_ARCH_arm64)
	return (BPF_CORE_READ(regs, pstate) & 0xf) == 0;
#else
	*known = false;
	return false;
#endif
}

/* The tick sampler. Every CPU that runs a task takes the scheduler tick (HZ times a
 * second) whether or not anyone profiles, so sampling from it costs this program and
 * nothing else, where a cpu-clock event adds a timer interrupt of its own per sample
 * (on a VM, exits to the hypervisor that cost ten times the program: docs/profiling.md).
 * frequency / HZ of a CPU's ticks become samples, evenly spread (an accumulator per CPU,
 * as a periodic timer would: a random draw per tick, tried first, made the counts
 * binomial, and the 3:1 test's ratio reached its bound in one fresh-clone run). Idle CPUs
 * stop their tick (NO_HZ), so an idle host is not woken to be sampled either. */
static __always_inline int on_timer(void *ctx, __u64 fn)
{
	bool in_user, known;
	__u32 zero = 0;
	__u64 *owed;

	if (fn != cfg_tick_fn)
		return 0; /* another hrtimer: a sleep's, a cpu-clock event's */
	count(HP_PROF_STAT_TICKS);
	owed = bpf_map_lookup_elem(&hp_prof_tick_owed, &zero);
	if (!owed)
		return 0;
	*owed += cfg_tick_below;
	if (*owed < (1ULL << 32))
		return 0;
	*owed -= 1ULL << 32;
	in_user = tick_in_user(&known);
	if (!known)
		count(HP_PROF_STAT_TICK_REGS_UNKNOWN);
	return on_cpu_sample(ctx, in_user, known ? FROM_TICK : FROM_TICK_UNKNOWN);
}

SEC("tp_btf/hrtimer_expire_entry")
int BPF_PROG(hp_tick_btf, struct hrtimer *hrtimer, ktime_t *now)
{
	return on_timer(ctx, (__u64)hrtimer->function);
}

SEC("raw_tp/hrtimer_expire_entry")
int BPF_PROG(hp_tick_raw, struct hrtimer *hrtimer, ktime_t *now)
{
	return on_timer(ctx, (__u64)BPF_CORE_READ(hrtimer, function));
}

SEC("tracepoint/timer/hrtimer_expire_entry")
int hp_tick_tp(struct trace_event_raw_hrtimer_expire_entry *ctx)
{
	return on_timer(ctx, (__u64)ctx->function);
}

/* The blocked thread's record goes out with its kernel stack, read now from the sleeping
 * task (it has not run since it blocked, so the stack is the one it blocked with), in
 * front of the user stack taken when it blocked. Assembled in the per-CPU scratch. */
static __always_inline long ship_with_task_stack(struct hp_prof_stack *e, struct task_struct *t)
{
	__u32 zero = 0;
	struct hp_prof_stack *out = bpf_map_lookup_elem(&hp_prof_scratch, &zero);
	__u32 nu = e->ustack_len + e->pystack_len, nk; /* user and Python frames: one copy */

	if (!out)
		return -1;
	__builtin_memcpy(out, e, __builtin_offsetof(struct hp_prof_stack, frames));
	nk = kernel_frames(
	    out, bpf_get_task_stack(t, out->frames, HP_PROF_MAX_FRAMES * sizeof(__u64), 0));
	/* Bounds the verifier can follow: the kernel frames at most HP_PROF_MAX_FRAMES (127,
	 * not a power of two: a mask would cut real values), the user and Python ones at most
	 * HP_PROF_MAX_FRAMES + HP_PY_MAX_FRAMES, so the copy ends inside frames[].
	 * barrier_var: clang knows nk <= 127 already and drops the test, but verifiers before
	 * ~5.13 do not bound bpf_get_task_stack's return (5.10: "invalid access to map value"). */
	barrier_var(nk);
	nk &= 0xff;
	if (nk > HP_PROF_MAX_FRAMES)
		nk = HP_PROF_MAX_FRAMES;
	nu &= 0xff;
	if (nu > HP_PROF_MAX_FRAMES + HP_PY_MAX_FRAMES)
		nu = HP_PROF_MAX_FRAMES + HP_PY_MAX_FRAMES;
	if (nu > 0 && bpf_probe_read_kernel(&out->frames[nk], nu * sizeof(__u64), e->frames) != 0) {
		out->ustack_len = 0;
		out->pystack_len = 0;
	}
	out->kstack_len = nk;
	return ship(out);
}

/* Runs in the context of prev (the current task). prev_state != 0: prev blocks, so
 * remember its stack and the time; a preempted task (state 0) is runnable, and its wait
 * is run-queue latency, not off-CPU time. Then, if next had blocked, ship its interval.
 * next_task (tp_btf, where bpf_get_task_stack exists): the kernel stack is read at wakeup,
 * and only for an interval over the threshold, instead of at every block (the kernel walk
 * was over half of this program's cost). */
static __always_inline int on_switch(void *ctx, long prev_state, __u32 next_tid,
				     struct task_struct *next_task)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct hp_prof_stack *e;

	if (tid != 0 && prev_state != 0) {
		__u64 cgroup_id = bpf_get_current_cgroup_id();

		if (wanted(id >> 32, cgroup_id)) {
			/* Capture in place: an entry per thread is created once (from the
			 * per-CPU scratch) and reused, so no 2 KiB copy per switch. */
			e = bpf_map_lookup_elem(&hp_prof_blocked, &tid);
			if (!e) {
				__u32 zero = 0;
				struct hp_prof_stack *init =
				    bpf_map_lookup_elem(&hp_prof_scratch, &zero);

				if (init)
					bpf_map_update_elem(&hp_prof_blocked, &tid, init,
							    BPF_NOEXIST);
				e = bpf_map_lookup_elem(&hp_prof_blocked, &tid);
			}
			if (e)
				capture(ctx, e, HP_PROF_OFF_CPU, id, cgroup_id, now,
					next_task != NULL);
		}
	}

	if (next_tid == 0)
		return 0;
	e = bpf_map_lookup_elem(&hp_prof_blocked, &next_tid);
	if (!e || e->hdr.timestamp_ns == 0)
		return 0;
	if (now > e->hdr.timestamp_ns && now - e->hdr.timestamp_ns >= cfg_offcpu_min_ns) {
		long err;

		e->weight_ns = now - e->hdr.timestamp_ns;
		err = next_task ? ship_with_task_stack(e, next_task) : ship(e);
		if (err != 0)
			count(HP_PROF_STAT_RINGBUF_DROPS);
		else
			count(HP_PROF_STAT_OFF_CPU_EVENTS);
	}
	e->hdr.timestamp_ns = 0; /* consumed: keep the entry for this thread's next block */
	return 0;
}

static __always_inline long task_state(struct task_struct *t)
{
	return hp_task_state(t); /* __state, or state before 5.14 */
}

SEC("tp_btf/sched_switch")
int BPF_PROG(hp_offcpu_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(ctx, task_state(prev), next->pid, cfg_task_stack ? next : NULL);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(hp_offcpu_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(ctx, task_state(prev), BPF_CORE_READ(next, pid), NULL);
}

SEC("tracepoint/sched/sched_switch")
int hp_offcpu_tp(struct trace_event_raw_sched_switch *ctx)
{
	return on_switch(ctx, ctx->prev_state, ctx->next_pid, NULL);
}

/* exec and exit run in the context of the process itself. */
static __always_inline int on_proc(__u32 kind)
{
	struct task_struct *p = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	struct hp_prof_proc *r;

	/* Only thread-group leaders: a process, not each of its threads. */
	if ((id >> 32) != (__u32)id)
		return 0;
	r = bpf_ringbuf_reserve(&hp_prof_events, sizeof(*r), 0);
	if (!r) {
		count(HP_PROF_STAT_RINGBUF_DROPS);
		return 0;
	}
	r->hdr.kind = kind;
	r->hdr.pid = id >> 32;
	r->hdr.tid = (__u32)id;
	r->hdr.cpu = bpf_get_smp_processor_id();
	r->hdr.timestamp_ns = bpf_ktime_get_ns();
	r->cgroup_id = bpf_get_current_cgroup_id();
	if (bpf_core_field_exists(p->start_boottime))
		r->start_time_ns = BPF_CORE_READ(p, start_boottime);
	else
		r->start_time_ns = BPF_CORE_READ(p, start_time);
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	{
		/* New mappings (exec) or none (exit): the next sample is a first one again. */
		struct hp_prof_proc_key key = {};

		key.pid = r->hdr.pid;
		key.start_time_ns = r->start_time_ns;
		bpf_map_delete_elem(&hp_prof_known, &key);
	}
	bpf_ringbuf_submit(r, wakeup_flag());
	count(HP_PROF_STAT_PROC_EVENTS);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(hp_exec_btf)
{
	return on_proc(HP_PROF_EXEC);
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(hp_exec_raw)
{
	return on_proc(HP_PROF_EXEC);
}

SEC("tracepoint/sched/sched_process_exec")
int hp_exec_tp(void *ctx)
{
	return on_proc(HP_PROF_EXEC);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(hp_exit_btf)
{
	return on_proc(HP_PROF_EXIT);
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(hp_exit_raw)
{
	return on_proc(HP_PROF_EXIT);
}

SEC("tracepoint/sched/sched_process_exit")
int hp_exit_tp(void *ctx)
{
	return on_proc(HP_PROF_EXIT);
}
