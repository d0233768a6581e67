/* Log2 bucketing for in-kernel histograms, shared by every latency program.
 * No loops and no __builtin_clz (the BPF target has no count-leading-zeros
 * instruction): a binary search over the bit position, six compare-and-shift steps. */
#ifndef HOSTPROF_BPF_LIB_HP_LOG2_H
#define HOSTPROF_BPF_LIB_HP_LOG2_H

/* floor(log2(v)) for v > 0; 0 for v == 0. */
static __always_inline __u32 hp_log2(__u64 v)
{
	__u32 r = 0, s;

	s = (v >= (1ULL << 32)) ? 32 : 0;
	v >>= s;
	r += s;
	s = (v >= (1ULL << 16)) ? 16 : 0;
	v >>= s;
	r += s;
	s = (v >= (1ULL << 8)) ? 8 : 0;
	v >>= s;
	r += s;
	s = (v >= (1ULL << 4)) ? 4 : 0;
	v >>= s;
	r += s;
	s = (v >= (1ULL << 2)) ? 2 : 0;
	v >>= s;
	r += s;
	r += (v >= 2) ? 1 : 0;
	return r;
}

/* The histogram slot of v among `slots` slots: slot i holds [2^i, 2^(i+1)), slot 0 also
 * holds 0, and the last slot holds everything from 2^(slots-1) up (it has no finite
 * upper bound: userspace exports it only under le="+Inf"). */
static __always_inline __u32 hp_log2_slot(__u64 v, __u32 slots)
{
	__u32 s = hp_log2(v);

	return s < slots ? s : slots - 1;
}

#endif /* HOSTPROF_BPF_LIB_HP_LOG2_H */
