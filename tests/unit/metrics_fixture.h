// Shared by the exporters_metrics*_test.cpp files: a scrape as the agent would serve it,
// and the exemplars of its outliers.
#pragma once

#include <cstdint>
#include <vector>

#include "exporters/metrics.h"

namespace hostprof::testing {

using prometheus::MetricFamily;
using prometheus::MetricType;

inline constexpr double kNs = 1e-9;

// A scrape as the agent would serve it: a log2 latency histogram (two syscalls), a
// counter, a gauge, an untyped value, a summary, label values needing escapes.
inline std::vector<MetricFamily> fixture_families() {
    std::vector<MetricFamily> families;
    static const std::vector<uint64_t> read_ns = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 10, 4, 0, 1};
    static const std::vector<uint64_t> write_ns = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2};
    const std::vector<Log2Histogram> series = {
        {read_ns, kNs, 123456.0, {{"syscall", "read"}}},
        {write_ns, kNs, std::nullopt, {{"syscall", "write"}}},
    };
    families.push_back(
        log2_histogram_family("hostprof_syscall_latency_seconds", "Syscall latency.", series));
    MetricFamily events{"hostprof_ringbuf_events_total",
                        "Events read from a BPF ring buffer.",
                        MetricType::Counter,
                        {}};
    events.metric.resize(2);
    events.metric[0].label = {{"ringbuf", "profile"}};
    events.metric[0].counter.value = 1234;
    events.metric[1].label = {{"ringbuf", "syscalls"}};
    events.metric[1].counter.value = 56;
    families.push_back(events);
    MetricFamily rss{"hostprof_resident_memory_bytes", "Agent RSS.", MetricType::Gauge, {}};
    rss.metric.resize(1);
    rss.metric[0].gauge.value = 52428800;
    families.push_back(rss);
    MetricFamily attached{"hostprof_program_attached",
                          "Attach mode per hook \"quoted\"\nsecond line \\.",
                          MetricType::Untyped,
                          {}};
    attached.metric.resize(1);
    attached.metric[0].label = {{"hook", "sched/sched_switch"}, {"mode", "tp_btf \"x\"\\y\nz"}};
    attached.metric[0].untyped.value = 1;
    families.push_back(attached);
    MetricFamily sym{
        "hostprof_symbolize_duration_seconds", "Symbolization time.", MetricType::Summary, {}};
    sym.metric.resize(1);
    sym.metric[0].summary.sample_count = 10;
    sym.metric[0].summary.sample_sum = 0.25;
    sym.metric[0].summary.quantile = {{0.5, 0.01}, {0.99, 0.125}};
    families.push_back(sym);
    return families;
}

inline ExemplarSet fixture_exemplars() {
    ExemplarSet ex;
    // The slowest read landed in bucket 14: [16384, 32768) ns.
    ex.set("hostprof_syscall_latency_seconds", {{"syscall", "read"}},
           log2_bucket_upper_bound(14, kNs),
           {{{"pid", "4242"}, {"comm", "postgres"}, {"stack_id", "9f1c"}}, 2.1e-05, 1700000000.5});
    ex.set("hostprof_syscall_latency_seconds", {{"syscall", "write"}},
           log2_bucket_upper_bound(13, kNs), {{{"pid", "77"}}, 1.2e-05, std::nullopt});
    // Too long for OpenMetrics (> 128 label characters): left out.
    ex.set("hostprof_syscall_latency_seconds", {{"syscall", "write"}},
           log2_bucket_upper_bound(12, kNs),
           {{{"trace", std::string(130, 'a')}}, 5e-06, std::nullopt});
    return ex;
}

} // namespace hostprof::testing
