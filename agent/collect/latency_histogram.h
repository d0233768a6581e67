// Log2 histograms read from kernel maps, as plain data. Shared by the syscall, TCP,
// run-queue and block collectors; serve/latency_metrics.h turns them into Prometheus
// histograms in base units (seconds, bytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hostprof {

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

    uint64_t count() const;
    // Adds o slot by slot (o may have a different number of slots: the result has the
    // larger one, and o's open last slot is only kept open if it stays last).
    void merge(const LatencyHistogram& o);
};

// The upper bound of slot i in the histogram's unit (2^(i+1)).
double log2_slot_upper_bound(size_t slot);

} // namespace hostprof
