/* The ABI between runqueue.bpf.c and userspace: fixed-width fields, no pointers. */
#ifndef HOSTPROF_BPF_RUNQUEUE_H
#define HOSTPROF_BPF_RUNQUEUE_H

#define HP_RQ_SLOTS 36 /* log2(ns) slots: slot i is [2^i, 2^(i+1)) ns; the last is open */

/* The single value of the per-CPU array hp_rq_hist. */
struct hp_rq_hist {
	__u64 slots[HP_RQ_SLOTS];
	__u64 sum_ns;
};

/* Counters in the per-CPU array hp_rq_stats, summed by userspace. */
enum hp_rq_stat {
	HP_RQ_STAT_ENQUEUED,	 /* wakeups and preemptions timed */
	HP_RQ_STAT_START_FAILED, /* the per-thread map refused an entry */
	HP_RQ_STAT_MAX,
};

#endif /* HOSTPROF_BPF_RUNQUEUE_H */
