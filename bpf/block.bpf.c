// SPDX-License-Identifier: GPL-2.0
/* Block I/O: block_rq_insert / block_rq_issue / block_rq_complete. Per disk and op:
 * service time (issue -> complete), queue time (insert -> issue, where the insert is
 * seen), request size, bytes and requests, in per-CPU maps; slow requests travel through
 * the ring buffer with the device, size and the issuing pid/comm. tp_btf and raw_tp
 * variants are compiled (the request pointer is the key, which classic tracepoint
 * records do not carry); userspace enables one. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "lib/hp_log2.h"
#include "lib/hp_native.h"
#include "block.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u64 cfg_slow_ns = 0;	  /* 0: no slow-I/O records */
const volatile bool cfg_task_btf = false; /* bpf_get_current_task_btf usable (5.11+) */
/* BPF compare-and-exchange (5.12+), which claiming an in-flight slot needs. Without it
 * (5.10, 5.11) every request goes to the hash map, through the _nocas programs: those
 * kernels reject the instruction anywhere in a program, reachable or not. */
const volatile bool cfg_cmpxchg = false;

struct hp_blk_start {
	__u64 insert_ts;
	__u64 issue_ts;
	__u32 pid;
	__u32 pad;
	char comm[HP_BLK_COMM_LEN];
};

/* Requests in flight, direct-mapped: the request pointer picks a slot, which the request
 * owns from insert (or issue) to completion. An array slot costs a multiply and a
 * compare-and-swap, where a hash map entry costs a bucket lock and a free-list pop at
 * insert and the same again at completion (measured: see docs/latency.md). */
#define HP_BLK_INFLIGHT_BITS 12
struct hp_blk_slot {
	__u64 rq; /* owner (struct request *), 0: free */
	struct hp_blk_start s;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << HP_BLK_INFLIGHT_BITS);
	__type(key, __u32);
	__type(value, struct hp_blk_slot);
} hp_blk_inflight SEC(".maps");

/* struct request * -> its timestamps, for a request whose slot another request holds. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct hp_blk_start);
} hp_blk_start SEC(".maps");

/* Stats per (disk, op): a direct-mapped per-CPU array slot (a multiply and a compare),
 * and a per-CPU hash for a (disk, op) whose slot another holds on that CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HP_BLK_DEV_SLOTS);
	__type(key, __u32);
	__type(value, struct hp_blk_dev_slot);
} hp_blk_dev_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hp_blk_key);
	__type(value, struct hp_blk_stats);
} hp_blk_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HP_BLK_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hp_blk_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} hp_blk_events SEC(".maps");

static const struct hp_blk_stats zero_stats;

static __always_inline void count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&hp_blk_counters, &stat);

	if (v)
		*v += 1;
}

/* A request still holding its slot after this long lost its completion (none is that
 * slow): the slot is taken over. */
#define HP_BLK_STALE_NS (60ULL * 1000000000ULL)

static __always_inline struct hp_blk_slot *slot_of(__u64 rq)
{
	/* Fibonacci hashing: request structs sit at a fixed stride, the top bits of the
	 * product spread them over the slots. */
	__u32 idx = (__u32)((rq * 0x9E3779B97F4A7C15ULL) >> (64 - HP_BLK_INFLIGHT_BITS));

	if (!cfg_cmpxchg)
		return NULL;
	return bpf_map_lookup_elem(&hp_blk_inflight, &idx);
}

/* This request's in-flight record: its slot when it owns it, else the hash map. */
static __always_inline struct hp_blk_start *find(struct hp_blk_slot *slot, __u64 key)
{
	if (slot && slot->rq == key)
		return &slot->s;
	return bpf_map_lookup_elem(&hp_blk_start, &key);
}

static __always_inline void fill(struct hp_blk_start *s, __u64 now, bool insert)
{
	s->insert_ts = insert ? now : 0;
	s->issue_ts = insert ? 0 : now;
	if (cfg_task_btf) {
		/* Plain loads from the task: no helper calls, no string copy. */
		struct task_struct *t = bpf_get_current_task_btf();

		s->pid = t->tgid;
		__builtin_memcpy(s->comm, t->comm, sizeof(s->comm));
		return;
	}
	s->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(s->comm, sizeof(s->comm));
}

/* At insert (a new request: a record left by a recycled request is replaced) and at
 * issue when no insert was seen: the slot when it is free, ours already, or stale;
 * otherwise one hash map update. Both record the submitting pid and comm. Without
 * compare-and-swap (cas false: a program for kernels before 5.12), the hash map alone. */
static __always_inline void create(__u64 key, __u64 now, bool insert, bool cas)
{
	struct hp_blk_slot *slot = cas ? slot_of(key) : NULL;
	struct hp_blk_start init = {};

	if (cas && slot) {
		__u64 owner = slot->rq;
		__u64 since = slot->s.insert_ts ? slot->s.insert_ts : slot->s.issue_ts;

		if (owner == key ||
		    (owner == 0 && __sync_val_compare_and_swap(&slot->rq, 0, key) == 0) ||
		    (owner != 0 && now > since + HP_BLK_STALE_NS &&
		     __sync_val_compare_and_swap(&slot->rq, owner, key) == owner)) {
			fill(&slot->s, now, insert);
			return;
		}
		count(HP_BLK_STAT_SLOT_TAKEN);
	}
	fill(&init, now, insert);
	if (bpf_map_update_elem(&hp_blk_start, &key, &init, BPF_ANY) != 0)
		count(HP_BLK_STAT_START_FAILED);
}

static __always_inline void issued(__u64 key, bool cas)
{
	__u64 now = bpf_ktime_get_ns();
	struct hp_blk_start *s = find(cas ? slot_of(key) : NULL, key);

	if (s)
		s->issue_ts = now;
	else
		create(key, now, false, cas); /* issued directly, without an insert */
}

/* What the completion needs from the request. tp_btf programs read it with plain loads
 * (BTF pointers); raw_tp programs need a probe read per field. */
struct rq_info {
	__u64 sector;
	__u32 major, minor, op, bytes;
};

static __always_inline __u32 op_of(__u32 cmd_flags)
{
	__u32 op = cmd_flags & 0xff; /* REQ_OP_MASK */

	return op <= HP_BLK_OP_DISCARD ? op : HP_BLK_OP_OTHER;
}

/* The request's disk is rq->q->disk since Linux 5.15; before (5.10), rq->rq_disk. CO-RE
 * picks one at load time (the branch not taken is pruned with its relocation). */
struct request___rq_disk {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

static __always_inline void rq_info_btf(struct request *rq, struct rq_info *i)
{
	struct gendisk *disk;

	if (bpf_core_field_exists(struct request_queue, disk))
		disk = rq->q->disk;
	else
		disk = ((struct request___rq_disk *)rq)->rq_disk;

	i->major = disk->major;
	i->minor = disk->first_minor;
	i->op = op_of(rq->cmd_flags);
	i->bytes = rq->__data_len;
	i->sector = rq->__sector;
}

static __always_inline void rq_info_core(struct request *rq, struct rq_info *i)
{
	struct gendisk *disk;

	if (bpf_core_field_exists(struct request_queue, disk))
		disk = BPF_CORE_READ(rq, q, disk);
	else
		disk = BPF_CORE_READ((struct request___rq_disk *)rq, rq_disk);

	i->major = BPF_CORE_READ(disk, major);
	i->minor = BPF_CORE_READ(disk, first_minor);
	i->op = op_of(BPF_CORE_READ(rq, cmd_flags));
	i->bytes = BPF_CORE_READ(rq, __data_len);
	i->sector = BPF_CORE_READ(rq, __sector);
}

static __always_inline void add(__u64 *slots, __u64 v)
{
	__u32 slot = hp_log2_slot(v, HP_BLK_SLOTS);

	if (slot < HP_BLK_SLOTS)
		slots[slot] += 1;
}

/* The request completed: its slot is free again (or its hash entry goes). A plain store:
 * only a slot's owner frees it, and another request claims only a free or stale one. */
static __always_inline void release(struct hp_blk_slot *slot, bool owned, __u64 key)
{
	if (owned)
		slot->rq = 0;
	else
		bpf_map_delete_elem(&hp_blk_start, &key);
}

static __always_inline __u32 dev_slot_of(__u32 major, __u32 minor, __u32 op)
{
	__u32 h = (major * 0x9E3779B1u) ^ (minor * 0x85EBCA77u) ^ (op * 0xC2B2AE3Du);

	return (h >> 26) & (HP_BLK_DEV_SLOTS - 1);
}

/* This CPU's stats of (disk, op): its array slot (claimed on first use; only this CPU
 * touches its copy), else the hash map. *dev_slot: the array slot, or HP_BLK_DEV_SLOTS
 * for the hash. */
static __always_inline struct hp_blk_stats *stats_of(struct hp_blk_key *k, __u32 *dev_slot)
{
	__u32 idx = dev_slot_of(k->major, k->minor, k->op);
	struct hp_blk_dev_slot *slot = bpf_map_lookup_elem(&hp_blk_dev_stats, &idx);
	struct hp_blk_stats *st;

	*dev_slot = HP_BLK_DEV_SLOTS;
	if (slot) {
		if (!slot->used) {
			slot->key = *k;
			slot->used = 1;
		}
		if (slot->key.major == k->major && slot->key.minor == k->minor &&
		    slot->key.op == k->op) {
			*dev_slot = idx;
			return &slot->stats;
		}
		count(HP_BLK_STAT_DEV_SLOT_TAKEN);
	}
	st = bpf_map_lookup_elem(&hp_blk_stats, k);
	if (st)
		return st;
	bpf_map_update_elem(&hp_blk_stats, k, &zero_stats, BPF_NOEXIST);
	return bpf_map_lookup_elem(&hp_blk_stats, k);
}

static __always_inline void completed(struct request *rq, __u64 key, int error, bool btf)
{
	__u64 now = bpf_ktime_get_ns(), service, queue = 0;
	struct hp_blk_slot *slot = slot_of(key);
	bool owned = slot && slot->rq == key;
	struct hp_blk_start *s = owned ? &slot->s : bpf_map_lookup_elem(&hp_blk_start, &key);
	struct hp_blk_key k = {};
	struct hp_blk_stats *st;
	struct rq_info info = {};
	__u32 bytes, dev_slot;

	if (!s || s->issue_ts == 0) {
		count(HP_BLK_STAT_MISSED_ISSUE);
		if (s)
			release(slot, owned, key);
		return;
	}
	service = now - s->issue_ts;
	if (s->insert_ts && s->issue_ts > s->insert_ts)
		queue = s->issue_ts - s->insert_ts;
	if (btf)
		rq_info_btf(rq, &info);
	else
		rq_info_core(rq, &info);
	k.major = info.major;
	k.minor = info.minor;
	k.op = info.op;
	bytes = info.bytes;

	st = stats_of(&k, &dev_slot);
	if (st) {
		add(st->service, service);
		st->service_sum_ns += service;
		if (queue) {
			add(st->queue, queue);
			st->queue_sum_ns += queue;
		}
		if (dev_slot < HP_BLK_DEV_SLOTS) {
			hp_native_add(dev_slot * HP_BLK_NATIVE_KINDS + HP_BLK_NATIVE_SERVICE,
				      service);
			if (queue)
				hp_native_add(dev_slot * HP_BLK_NATIVE_KINDS + HP_BLK_NATIVE_QUEUE,
					      queue);
		}
		add(st->size, bytes);
		st->bytes += bytes;
		st->requests += 1;
	} else {
		count(HP_BLK_STAT_STATS_FULL);
	}

	if (cfg_slow_ns && service >= cfg_slow_ns) {
		struct hp_blk_event *e = bpf_ringbuf_reserve(&hp_blk_events, sizeof(*e), 0);

		if (!e) {
			count(HP_BLK_STAT_RINGBUF_DROPS);
		} else {
			e->timestamp_ns = now;
			e->service_ns = service;
			e->queue_ns = queue;
			e->sector = info.sector;
			e->major = k.major;
			e->minor = k.minor;
			e->op = k.op;
			e->bytes = bytes;
			e->pid = s->pid;
			e->error = error;
			__builtin_memcpy(e->comm, s->comm, sizeof(e->comm));
			bpf_ringbuf_submit(e, 0);
			count(HP_BLK_STAT_OUTLIERS);
		}
	}
	release(slot, owned, key);
}

/* The request's address as a number, the in-flight key. tp_btf hands a trusted pointer,
 * on which the verifier allows no multiply (the slot hash), but the difference of two
 * pointers is a plain number for a privileged program: the request's distance from a
 * variable of ours, which stays put while the program is loaded, is as unique as its
 * address (and never 0). raw_tp arguments are plain values already. */
__u64 hp_blk_anchor = 0;

static __always_inline __u64 btf_key(struct request *rq)
{
	return (__u64)rq - (__u64)&hp_blk_anchor;
}

SEC("tp_btf/block_rq_insert")
int BPF_PROG(hp_blkins_btf, struct request *rq)
{
	create(btf_key(rq), bpf_ktime_get_ns(), true, true);
	return 0;
}

SEC("raw_tp/block_rq_insert")
int BPF_PROG(hp_blkins_raw, struct request *rq)
{
	create((__u64)rq, bpf_ktime_get_ns(), true, true);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(hp_blkissue_btf, struct request *rq)
{
	issued(btf_key(rq), true);
	return 0;
}

SEC("raw_tp/block_rq_issue")
int BPF_PROG(hp_blkissue_raw, struct request *rq)
{
	issued((__u64)rq, true);
	return 0;
}

/* The same without compare-and-swap, for kernels before 5.12 (cfg_cmpxchg false). */
SEC("tp_btf/block_rq_insert")
int BPF_PROG(hp_blkins_btf_nocas, struct request *rq)
{
	create(btf_key(rq), bpf_ktime_get_ns(), true, false);
	return 0;
}

SEC("raw_tp/block_rq_insert")
int BPF_PROG(hp_blkins_raw_nocas, struct request *rq)
{
	create((__u64)rq, bpf_ktime_get_ns(), true, false);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(hp_blkissue_btf_nocas, struct request *rq)
{
	issued(btf_key(rq), false);
	return 0;
}

SEC("raw_tp/block_rq_issue")
int BPF_PROG(hp_blkissue_raw_nocas, struct request *rq)
{
	issued((__u64)rq, false);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(hp_blkdone_btf, struct request *rq, int error, unsigned int nr_bytes)
{
	completed(rq, btf_key(rq), error, true);
	return 0;
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(hp_blkdone_raw, struct request *rq, int error, unsigned int nr_bytes)
{
	completed(rq, (__u64)rq, error, false);
	return 0;
}
