/* The ABI between block.bpf.c and userspace: fixed-width fields, no pointers. */
#ifndef HOSTPROF_BPF_BLOCK_H
#define HOSTPROF_BPF_BLOCK_H

#define HP_BLK_SLOTS 36 /* log2 slots: slot i is [2^i, 2^(i+1)) ns or bytes; the last is open */
#define HP_BLK_COMM_LEN 16

/* REQ_OP_* values of the kernel's block layer (stable since 4.10). */
enum hp_blk_op {
	HP_BLK_OP_READ = 0,
	HP_BLK_OP_WRITE = 1,
	HP_BLK_OP_FLUSH = 2,
	HP_BLK_OP_DISCARD = 3,
	HP_BLK_OP_OTHER = 255, /* every other op (zone commands, write zeroes, ...) */
};

/* Key of the per-disk stats: the whole disk (gendisk major:first_minor), op. */
struct hp_blk_key {
	__u32 major;
	__u32 minor;
	__u32 op; /* enum hp_blk_op */
	__u32 pad;
};

struct hp_blk_stats {
	__u64 service[HP_BLK_SLOTS]; /* issue -> complete, ns */
	__u64 queue[HP_BLK_SLOTS];   /* insert -> issue, ns; only requests whose insert was seen */
	__u64 size[HP_BLK_SLOTS];    /* request size, bytes */
	__u64 service_sum_ns;
	__u64 queue_sum_ns;
	__u64 bytes;
	__u64 requests; /* completed */
};

/* A slot of hp_blk_dev_stats (per-CPU array, direct-mapped by a hash of the key): the
 * (disk, op) whose stats it holds on this CPU, when used. A (disk, op) whose slot another
 * holds on a CPU goes to the per-CPU hash hp_blk_stats there. Userspace adds both up. */
#define HP_BLK_DEV_SLOTS 64
struct hp_blk_dev_slot {
	struct hp_blk_key key;
	__u64 used; /* 0: free */
	struct hp_blk_stats stats;
};

/* Native histograms (bpf/native.h) of the durations of a (disk, op) held in its
 * hp_blk_dev_stats slot: histogram dev slot * HP_BLK_NATIVE_KINDS + kind, on the CPUs
 * where the slot holds that (disk, op). A (disk, op) counted in the hash on some CPU has
 * no native buckets there. */
enum hp_blk_native {
	HP_BLK_NATIVE_SERVICE,
	HP_BLK_NATIVE_QUEUE,
	HP_BLK_NATIVE_KINDS,
};
#define HP_BLK_NATIVE_HISTS (HP_BLK_DEV_SLOTS * HP_BLK_NATIVE_KINDS)

/* Counters in the per-CPU array hp_blk_counters, summed by userspace. */
enum hp_blk_stat {
	HP_BLK_STAT_MISSED_ISSUE,   /* complete without a recorded issue */
	HP_BLK_STAT_START_FAILED,   /* the in-flight map refused a request */
	HP_BLK_STAT_STATS_FULL,	    /* hp_blk_stats is full: a completion went uncounted */
	HP_BLK_STAT_OUTLIERS,	    /* slow-I/O records shipped */
	HP_BLK_STAT_RINGBUF_DROPS,  /* slow-I/O record lost: ring full */
	HP_BLK_STAT_SLOT_TAKEN,	    /* in-flight slot held by another request: hash map used */
	HP_BLK_STAT_DEV_SLOT_TAKEN, /* stats slot held by another (disk, op): hash map used */
	HP_BLK_STAT_MAX,
};

/* A request slower (issue -> complete) than the threshold. */
struct hp_blk_event {
	__u64 timestamp_ns; /* completion, CLOCK_MONOTONIC */
	__u64 service_ns;
	__u64 queue_ns; /* 0 when the insert was not seen */
	__u64 sector;
	__u32 major;
	__u32 minor;
	__u32 op; /* enum hp_blk_op */
	__u32 bytes;
	__u32 pid;   /* the task that issued (or inserted) the request */
	__s32 error; /* blk_status_t at completion */
	char comm[HP_BLK_COMM_LEN];
};

#endif /* HOSTPROF_BPF_BLOCK_H */
