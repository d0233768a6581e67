// Log2 histograms read from kernel maps, and their conversion to Prometheus histograms
// in base units (seconds, bytes). Shared by the syscall, run-queue and block collectors.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>

namespace hostprof {

// (exporters/metrics.h has a Log2Histogram view whose every slot gets a finite `le`; the
// kernel maps here clamp into an open last slot, which only +Inf may count, so the
// collectors convert with to_prometheus_histogram. The finite bounds are the same:
// 2^(i+1) units, as exporters' log2_bucket_upper_bound, so exemplars key alike.)
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

// The Prometheus histogram of h: one cumulative bucket per slot but the last, with
// le = 2^(i+1) * unit_to_base (e.g. 1e-9 for nanoseconds -> seconds), every bucket present
// even when empty (backfilled), then le=+Inf with the total count. sample_sum is
// sum * unit_to_base.
prometheus::ClientMetric::Histogram to_prometheus_histogram(const LatencyHistogram& h,
                                                            double unit_to_base);

// The upper bound of slot i in the histogram's unit (2^(i+1)).
double log2_slot_upper_bound(size_t slot);

// A counter family of losses, one series per reason: reasons pairs a kernel-side stat
// index with its `reason` label; a stat the kernel did not report counts 0.
prometheus::MetricFamily lost_by_reason(std::string name, std::string help,
                                        std::span<const std::pair<size_t, const char*>> reasons,
                                        const std::vector<uint64_t>& kernel_stats);

} // namespace hostprof
