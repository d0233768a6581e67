// Log2 histograms read from kernel maps, as plain data. Shared by the syscall, TCP,
// run-queue and block collectors; serve/latency_metrics.h turns them into Prometheus
// histograms in base units (seconds, bytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hostprof {

// Exact native-histogram buckets kept in BPF at one schema (bpf/native.h; the
// native_schema setting). buckets[0] is the zero bucket (durations <= 2^-30 s), buckets[k]
// for k = 1..M native bucket native_first_index(schema) + k - 1, and buckets[M + 1] counts
// everything above 2^14 s.
struct NativeHistogram {
    int schema = -1; // -1: not kept
    std::vector<uint64_t> buckets;

    uint64_t count() const;
};

// Buckets per histogram at schema 0..3 (M + 2), 0 for any other schema.
uint32_t native_bucket_count(int schema);
// The M + 1 bucket bounds in ns: bound k = floor(1e9 * 2^(HP_NATIVE_LOW_EXP + k / 2^schema)).
std::vector<uint64_t> native_bounds_ns(int schema);
// The native bucket index of buckets[1]: 2^schema * HP_NATIVE_LOW_EXP + 1.
int32_t native_first_index(int schema);
// The native bucket of a duration, as the BPF programs count it (for tests).
uint32_t native_bucket_of(const std::vector<uint64_t>& bounds_ns, uint64_t duration_ns);

// (exporters/metrics.h has a Log2Histogram view whose every slot gets a finite `le`; the
// kernel maps here clamp into an open last slot, which only +Inf may count, so these
// convert with to_prometheus_histogram (serve/latency_metrics.h). The finite bounds are
// the same: 2^(i+1) units, as exporters' log2_bucket_upper_bound, so exemplars key alike.)
// Slot i counts values in [2^i, 2^(i+1)) (slot 0 also counts 0); the last slot counts
// everything from 2^(n-1) up and so has no finite upper bound. `sum` is in the same unit
// as the values (nanoseconds, bytes).
struct LatencyHistogram {
    std::vector<uint64_t> slots;
    uint64_t sum = 0;
    // The same durations in native buckets, when the kernel kept them for every one.
    NativeHistogram native;

    uint64_t count() const;
    // Adds o slot by slot (o may have a different number of slots: the result has the
    // larger one, and o's open last slot is only kept open if it stays last). The native
    // buckets add up when both have them at one schema (or one side is empty); otherwise
    // the result has none.
    void merge(const LatencyHistogram& o);
};

// The upper bound of slot i in the histogram's unit (2^(i+1)).
double log2_slot_upper_bound(size_t slot);

} // namespace hostprof
