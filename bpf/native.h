/* The ABI of exact native-histogram buckets kept in BPF (the `native_schema` setting),
 * shared by every latency family that keeps them (bpf/lib/hp_native.h).
 *
 * A Prometheus native histogram of schema s (0..3) has 2^s buckets per power of two of
 * seconds: bucket i holds (2^((i-1)/2^s), 2^(i/2^s)] s. The kernel's log2 histograms are
 * in powers of two of nanoseconds, which are not powers of two of seconds, so they map to
 * native buckets only approximately. With native_schema set, a program also counts each
 * duration into the native buckets themselves: userspace writes the bucket bounds in ns
 * (bound k = floor(1e9 * 2^(HP_NATIVE_LOW_EXP + k / 2^s)), k = 0..M, M = 2^s *
 * (HP_NATIVE_HIGH_EXP - HP_NATIVE_LOW_EXP)) into cfg_native_bounds, and bucket k of a
 * histogram counts the durations d with bound[k-1] < d <= bound[k] (d integer ns, so
 * the floor changes nothing): k = 0 is the zero bucket (d <= 2^-30 s), k = 1..M native
 * bucket s_index(k) = 2^s * HP_NATIVE_LOW_EXP + k, k = M + 1 everything above 2^14 s. */
#ifndef HOSTPROF_BPF_NATIVE_H
#define HOSTPROF_BPF_NATIVE_H

#define HP_NATIVE_MAX_SCHEMA 3
#define HP_NATIVE_LOW_EXP (-30) /* bound 0: 2^-30 s (0.93 ns) */
#define HP_NATIVE_HIGH_EXP 14	/* the last bound: 2^14 s (4.55 hours) */
/* Entries of cfg_native_bounds: a power of two (the search halves it), more than the M + 1
 * bounds of the finest schema (353). Entries past the last bound hold HP_NATIVE_PAD. */
#define HP_NATIVE_MAX_BOUNDS 512
/* Larger than any duration the search sees (durations are clamped to 2^62 ns), and below
 * 2^63, so that bound - d has its top bit set exactly when bound < d. */
#define HP_NATIVE_PAD ((1ULL << 62) + 1)
#define HP_NATIVE_MAX_DURATION (1ULL << 62)

#endif /* HOSTPROF_BPF_NATIVE_H */
