/* Exact native-histogram buckets (bpf/native.h): a per-CPU array of histograms whose
 * value size, entry count and bucket bounds userspace sets before load. With
 * cfg_native_buckets 0 (the default) the verifier drops every use as dead code and the
 * map keeps one 8-byte entry. */
#ifndef HOSTPROF_BPF_LIB_HP_NATIVE_H
#define HOSTPROF_BPF_LIB_HP_NATIVE_H

#include "../native.h"

/* Buckets per histogram (M + 2 of bpf/native.h); 0: native buckets off. */
const volatile __u32 cfg_native_buckets = 0;
/* Bucket bounds in ns, ascending, then HP_NATIVE_PAD. */
const volatile __u64 cfg_native_bounds[HP_NATIVE_MAX_BOUNDS] = {};

/* Key: the histogram's index in its family's layout; value: cfg_native_buckets counters
 * (no BTF value type, so userspace can size it at load). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u64));
} hp_native SEC(".maps");

/* The number of bounds below d: a binary search without branches (nine loads, the
 * comparison taken from the sign of bound - d), so the verifier walks one path whatever
 * d is, and the index stays provably inside the table. Each step's 0-or-1 is hidden from
 * clang, which would otherwise add the steps with OR (their bits never overlap): kernels
 * before 6.3 know nothing of an OR of two unknown values and reject the next load
 * (docs/verifier.md). */
static __always_inline __u64 hp_native_bucket(__u64 d)
{
	__u64 k = 0, below;

	if (d > HP_NATIVE_MAX_DURATION)
		d = HP_NATIVE_MAX_DURATION;
#pragma unroll
	for (__u64 step = HP_NATIVE_MAX_BOUNDS / 2; step > 0; step >>= 1) {
		below = (cfg_native_bounds[k + step - 1] - d) >> 63;
		asm volatile("" : "+r"(below));
		k += below * step;
	}
	return k;
}

/* Counts duration d (ns) into native histogram `hist`. */
static __always_inline void hp_native_add(__u32 hist, __u64 d)
{
	__u64 *h, k;

	if (cfg_native_buckets == 0)
		return;
	h = bpf_map_lookup_elem(&hp_native, &hist);
	if (!h)
		return;
	/* 64-bit all the way, and the clamped value pinned in one register: with a 32-bit
	 * index clang compared one zero-extended copy and indexed with another, whose bounds
	 * the verifier did not know (docs/verifier.md). */
	k = hp_native_bucket(d);
	if (k >= cfg_native_buckets)
		k = cfg_native_buckets - 1;
	asm volatile("" : "+r"(k));
	h[k] += 1;
}

#endif /* HOSTPROF_BPF_LIB_HP_NATIVE_H */
