// SPDX-License-Identifier: GPL-2.0
/* Run-queue latency: the time a runnable thread waits for a CPU. The clock starts at
 * sched_wakeup / sched_wakeup_new, or at sched_switch when the thread is switched out
 * still runnable (preempted); it stops when sched_switch puts the thread on a CPU. The
 * waits are aggregated in a per-CPU log2 histogram. tp_btf, raw_tp and classic
 * tracepoint variants of each hook are compiled; userspace enables one. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "lib/hp_log2.h"
#include "lib/hp_native.h"
#include "lib/hp_task.h"
#include "runqueue.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 cfg_filter_tgid = 0; /* 0: every process */

/* tid -> when it became runnable. LRU: threads that die runnable are evicted. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} hp_rq_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hp_rq_hist);
} hp_rq_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HP_RQ_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hp_rq_stats SEC(".maps");

static __always_inline void count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&hp_rq_stats, &stat);

	if (v)
		*v += 1;
}

static __always_inline void enqueued(__u32 tgid, __u32 tid)
{
	__u64 ts;

	if (tid == 0 || (cfg_filter_tgid && tgid != cfg_filter_tgid))
		return;
	ts = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&hp_rq_start, &tid, &ts, BPF_ANY) != 0)
		count(HP_RQ_STAT_START_FAILED);
	else
		count(HP_RQ_STAT_ENQUEUED);
}

/* prev leaves the CPU (runnable again if it was preempted); next gets it. */
static __always_inline void switched(bool prev_runnable, __u32 prev_tgid, __u32 prev_tid,
				     __u32 next_tid)
{
	__u32 zero = 0, slot;
	struct hp_rq_hist *h;
	__u64 *ts, delta;

	if (prev_runnable)
		enqueued(prev_tgid, prev_tid);
	if (next_tid == 0)
		return;
	ts = bpf_map_lookup_elem(&hp_rq_start, &next_tid);
	if (!ts)
		return;
	delta = bpf_ktime_get_ns() - *ts;
	bpf_map_delete_elem(&hp_rq_start, &next_tid);
	h = bpf_map_lookup_elem(&hp_rq_hist, &zero);
	if (!h)
		return;
	slot = hp_log2_slot(delta, HP_RQ_SLOTS);
	if (slot < HP_RQ_SLOTS)
		h->slots[slot] += 1;
	h->sum_ns += delta;
	hp_native_add(0, delta);
}

static __always_inline bool runnable(struct task_struct *t)
{
	return hp_task_state(t) == 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(hp_rqwake_btf, struct task_struct *p)
{
	enqueued(p->tgid, p->pid);
	return 0;
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(hp_rqwake_raw, struct task_struct *p)
{
	enqueued(BPF_CORE_READ(p, tgid), BPF_CORE_READ(p, pid));
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(hp_rqwnew_btf, struct task_struct *p)
{
	enqueued(p->tgid, p->pid);
	return 0;
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(hp_rqwnew_raw, struct task_struct *p)
{
	enqueued(BPF_CORE_READ(p, tgid), BPF_CORE_READ(p, pid));
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(hp_rqswitch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	switched(preempt || runnable(prev), prev->tgid, prev->pid, next->pid);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(hp_rqswitch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	switched(preempt || runnable(prev), BPF_CORE_READ(prev, tgid), BPF_CORE_READ(prev, pid),
		 BPF_CORE_READ(next, pid));
	return 0;
}

/* Classic tracepoints carry only thread ids, not the woken task's tgid: userspace
 * refuses a tgid filter in this mode (cfg_filter_tgid is 0 here). */
SEC("tracepoint/sched/sched_wakeup")
int hp_rqwake_tp(struct trace_event_raw_sched_wakeup_template *ctx)
{
	enqueued(cfg_filter_tgid, ctx->pid);
	return 0;
}

SEC("tracepoint/sched/sched_wakeup_new")
int hp_rqwnew_tp(struct trace_event_raw_sched_wakeup_template *ctx)
{
	enqueued(cfg_filter_tgid, ctx->pid);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int hp_rqswitch_tp(struct trace_event_raw_sched_switch *ctx)
{
	/* prev_state: the low bits are the task state reported to userspace (0: running);
	 * a preempted task reports TASK_REPORT_MAX, above them. */
	switched((ctx->prev_state & 0xff) == 0, bpf_get_current_pid_tgid() >> 32, ctx->prev_pid,
		 ctx->next_pid);
	return 0;
}
