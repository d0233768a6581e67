#include "agent/serve/latency_metrics.h"

#include <cmath>
#include <limits>

#include "bpf/block.h"
#include "bpf/native.h"
#include "bpf/runqueue.h"
#include "bpf/syscalls.h"
#include "bpf/tcp.h"

namespace hostprof {

prometheus::ClientMetric::Histogram to_prometheus_histogram(const LatencyHistogram& h,
                                                            double unit_to_base) {
    prometheus::ClientMetric::Histogram out;
    uint64_t cumulative = 0;
    for (size_t i = 0; i + 1 < h.slots.size(); ++i) {
        cumulative += h.slots[i];
        out.bucket.push_back({cumulative, log2_slot_upper_bound(i) * unit_to_base});
    }
    if (!h.slots.empty())
        cumulative += h.slots.back();
    out.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
    out.sample_count = cumulative;
    out.sample_sum = static_cast<double>(h.sum) * unit_to_base;
    return out;
}

prometheus::MetricFamily lost_by_reason(std::string name, std::string help,
                                        std::span<const std::pair<size_t, const char*>> reasons,
                                        const std::vector<uint64_t>& kernel_stats) {
    prometheus::MetricFamily f{
        std::move(name), std::move(help), prometheus::MetricType::Counter, {}};
    for (const auto& [i, reason] : reasons) {
        prometheus::ClientMetric m;
        m.label = {{"reason", reason}};
        m.counter.value = i < kernel_stats.size() ? static_cast<double>(kernel_stats[i]) : 0.0;
        f.metric.push_back(std::move(m));
    }
    return f;
}

namespace {

prometheus::ClientMetric counter(std::vector<prometheus::ClientMetric::Label> labels,
                                 double value) {
    prometheus::ClientMetric m;
    m.label = std::move(labels);
    m.counter.value = value;
    return m;
}

// The exact native buckets of h, if it has them, as the protobuf renderer takes them:
// the zero bucket holds durations up to 2^-30 s (bpf/native.h).
void add_native(NativeHistogramSet* natives, const std::string& family,
                const prometheus::ClientMetric& m, const NativeHistogram& h) {
    if (natives == nullptr || h.schema < 0 || h.buckets.size() < 2)
        return;
    NativeBuckets b;
    b.schema = h.schema;
    b.first_index = native_first_index(h.schema);
    b.zero_threshold = std::ldexp(1.0, HP_NATIVE_LOW_EXP);
    b.zero_count = h.buckets.front();
    b.counts.assign(h.buckets.begin() + 1, h.buckets.end());
    natives->set(family, m.label, std::move(b));
}

} // namespace

std::vector<prometheus::MetricFamily> syscall_metric_families(const SyscallSnapshot& s,
                                                              NativeHistogramSet* natives) {
    using prometheus::MetricType;
    prometheus::MetricFamily latency{"hostprof_syscall_latency_seconds",
                                     "Time from raw_syscalls:sys_enter to sys_exit, per syscall",
                                     MetricType::Histogram,
                                     {}};
    prometheus::MetricFamily errors{"hostprof_syscall_errors_total",
                                    "Syscalls that returned an error, per syscall and errno",
                                    MetricType::Counter,
                                    {}};
    for (const SyscallStats& st : s.syscalls) {
        prometheus::ClientMetric m;
        m.label = {{"syscall", st.name}};
        m.histogram = to_prometheus_histogram(st.latency, 1e-9);
        add_native(natives, latency.name, m, st.latency.native);
        latency.metric.push_back(std::move(m));
        for (const auto& [err, n] : st.errors)
            errors.metric.push_back(counter({{"errno", errno_label(err)}, {"syscall", st.name}},
                                            static_cast<double>(n)));
    }
    std::vector<prometheus::MetricFamily> out;
    out.push_back(std::move(latency));
    out.push_back(std::move(errors));

    if (s.per_cgroup || !s.by_cgroup.empty()) {
        prometheus::MetricFamily cg{"hostprof_cgroup_syscall_latency_seconds",
                                    "Syscall latency of allowlisted cgroups, per syscall",
                                    MetricType::Histogram,
                                    {}};
        for (const SyscallStats& st : s.by_cgroup) {
            prometheus::ClientMetric m;
            auto path = s.cgroup_paths.find(st.cgroup_id);
            m.label = {{"cgroup", path == s.cgroup_paths.end() ? "" : path->second},
                       {"cgroup_id", std::to_string(st.cgroup_id)},
                       {"syscall", st.name}};
            m.histogram = to_prometheus_histogram(st.latency, 1e-9);
            cg.metric.push_back(std::move(m));
        }
        out.push_back(std::move(cg));
    }

    auto stat = [&](size_t i) {
        return i < s.kernel_stats.size() ? static_cast<double>(s.kernel_stats[i]) : 0.0;
    };
    prometheus::MetricFamily outliers{"hostprof_syscall_outliers_total",
                                      "Syscalls slower than their threshold, streamed with stacks",
                                      MetricType::Counter,
                                      {counter({}, stat(HP_SYS_STAT_OUTLIERS))}};
    out.push_back(std::move(outliers));
    const std::pair<size_t, const char*> reasons[] = {
        {HP_SYS_STAT_MISSED_START, "missed_start"},
        {HP_SYS_STAT_START_FAILED, "start_map_full"},
        {HP_SYS_STAT_BAD_NR, "bad_syscall_nr"},
        {HP_SYS_STAT_ERRNO_FULL, "errno_map_full"},
        {HP_SYS_STAT_CGROUP_FULL, "cgroup_map_full"},
        {HP_SYS_STAT_RINGBUF_DROPS, "ringbuf_full"},
        {HP_SYS_STAT_KSTACK_ERRORS, "kernel_stack_error"},
        {HP_SYS_STAT_USTACK_ERRORS, "user_stack_error"},
    };
    prometheus::MetricFamily lost =
        lost_by_reason("hostprof_syscall_lost_total",
                       "Syscall observations or outliers lost, by reason", reasons, s.kernel_stats);
    lost.metric.push_back(
        counter({{"reason", "decode_error"}}, static_cast<double>(s.decode_errors)));
    out.push_back(std::move(lost));
    return out;
}

std::vector<prometheus::MetricFamily> tcp_metric_families(const TcpSnapshot& s,
                                                          NativeHistogramSet* natives) {
    using prometheus::MetricType;
    prometheus::MetricFamily connect{"hostprof_tcp_connect_latency_seconds",
                                     "Active TCP connect latency (SYN_SENT to ESTABLISHED)",
                                     MetricType::Histogram,
                                     {}};
    prometheus::MetricFamily srtt{"hostprof_tcp_srtt_seconds",
                                  "Smoothed RTT of TCP sockets, sampled at each tcp_probe",
                                  MetricType::Histogram,
                                  {}};
    prometheus::MetricFamily retx{
        "hostprof_tcp_retransmits_total", "TCP segments retransmitted", MetricType::Counter, {}};
    prometheus::MetricFamily resets{
        "hostprof_tcp_resets_total", "TCP resets sent or received", MetricType::Counter, {}};
    prometheus::MetricFamily failed{"hostprof_tcp_connect_failures_total",
                                    "Active connects that ended in CLOSE from SYN_SENT",
                                    MetricType::Counter,
                                    {}};
    prometheus::MetricFamily duration{
        "hostprof_tcp_connection_duration_seconds",
        "Lifetime of closed TCP connections, from ESTABLISHED to CLOSE",
        MetricType::Histogram,
        {}};
    prometheus::MetricFamily sent{"hostprof_tcp_connection_sent_bytes",
                                  "Payload bytes a closed TCP connection sent (each byte once, "
                                  "retransmissions not counted again)",
                                  MetricType::Histogram,
                                  {}};
    prometheus::MetricFamily received{"hostprof_tcp_connection_received_bytes",
                                      "Payload bytes a closed TCP connection received",
                                      MetricType::Histogram,
                                      {}};
    auto counter = [](std::vector<prometheus::ClientMetric::Label> l, uint64_t v) {
        prometheus::ClientMetric m;
        m.label = std::move(l);
        m.counter.value = static_cast<double>(v);
        return m;
    };
    for (const TcpFamilyStats& f : s.series) {
        const std::vector<prometheus::ClientMetric::Label> labels = {{"family", f.family},
                                                                     {"port", f.port}};
        prometheus::ClientMetric m;
        m.label = labels;
        m.histogram = to_prometheus_histogram(f.connect, 1e-9);
        add_native(natives, connect.name, m, f.connect.native);
        connect.metric.push_back(m);
        m.histogram = to_prometheus_histogram(f.srtt, 1e-9);
        add_native(natives, srtt.name, m, f.srtt.native);
        srtt.metric.push_back(m);
        m.histogram = to_prometheus_histogram(f.duration, 1e-9);
        add_native(natives, duration.name, m, f.duration.native);
        duration.metric.push_back(m);
        m.histogram = to_prometheus_histogram(f.sent_bytes, 1.0);
        sent.metric.push_back(m);
        m.histogram = to_prometheus_histogram(f.received_bytes, 1.0);
        received.metric.push_back(m);
        retx.metric.push_back(counter(labels, f.retransmits));
        resets.metric.push_back(
            counter({{"direction", "received"}, labels[0], labels[1]}, f.resets_received));
        resets.metric.push_back(
            counter({{"direction", "sent"}, labels[0], labels[1]}, f.resets_sent));
        failed.metric.push_back(counter(labels, f.connect_failed));
    }
    std::vector<prometheus::MetricFamily> out;
    out.push_back(std::move(connect));
    out.push_back(std::move(srtt));
    out.push_back(std::move(retx));
    out.push_back(std::move(resets));
    out.push_back(std::move(failed));
    out.push_back(std::move(duration));
    out.push_back(std::move(sent));
    out.push_back(std::move(received));
    // Sockets the per-socket map refused (full): their connect, lifetime and bytes are
    // not recorded; active connects whose SYN_SENT entry was not found at ESTABLISHED.
    const std::pair<size_t, const char*> reasons[] = {
        {HP_TCP_STAT_START_FAILED, "start_map_full"},
        {HP_TCP_STAT_MISSED_START, "missed_start"},
    };
    out.push_back(lost_by_reason("hostprof_tcp_lost_total",
                                 "TCP connections not tracked, by reason", reasons,
                                 s.kernel_stats));
    return out;
}

std::vector<prometheus::MetricFamily> block_metric_families(const BlockSnapshot& s,
                                                            NativeHistogramSet* natives) {
    using prometheus::MetricType;
    prometheus::MetricFamily service{"hostprof_block_io_latency_seconds",
                                     "Block request service time (issue to completion)",
                                     MetricType::Histogram,
                                     {}};
    prometheus::MetricFamily queue{"hostprof_block_io_queue_seconds",
                                   "Block request queue time (insert to issue), where seen",
                                   MetricType::Histogram,
                                   {}};
    prometheus::MetricFamily size{
        "hostprof_block_io_size_bytes", "Block request size", MetricType::Histogram, {}};
    prometheus::MetricFamily requests{
        "hostprof_block_io_requests_total", "Block requests completed", MetricType::Counter, {}};
    prometheus::MetricFamily bytes{"hostprof_block_io_bytes_total",
                                   "Bytes of completed block requests",
                                   MetricType::Counter,
                                   {}};
    for (const BlockStats& b : s.devices) {
        std::vector<prometheus::ClientMetric::Label> labels = {{"device", b.device}, {"op", b.op}};
        prometheus::ClientMetric m;
        m.label = labels;
        m.histogram = to_prometheus_histogram(b.service, 1e-9);
        add_native(natives, service.name, m, b.service.native);
        service.metric.push_back(m);
        m.histogram = to_prometheus_histogram(b.queue, 1e-9);
        add_native(natives, queue.name, m, b.queue.native);
        queue.metric.push_back(m);
        m.histogram = to_prometheus_histogram(b.size, 1.0);
        size.metric.push_back(m);
        m.histogram = {};
        m.counter.value = static_cast<double>(b.requests);
        requests.metric.push_back(m);
        m.counter.value = static_cast<double>(b.bytes);
        bytes.metric.push_back(m);
    }
    auto stat = [&](size_t i) {
        return i < s.kernel_stats.size() ? static_cast<double>(s.kernel_stats[i]) : 0.0;
    };
    prometheus::ClientMetric slow;
    slow.counter.value = stat(HP_BLK_STAT_OUTLIERS);
    const std::pair<size_t, const char*> reasons[] = {
        {HP_BLK_STAT_MISSED_ISSUE, "missed_issue"},
        {HP_BLK_STAT_START_FAILED, "start_map_full"},
        {HP_BLK_STAT_STATS_FULL, "stats_map_full"},
        {HP_BLK_STAT_RINGBUF_DROPS, "ringbuf_full"},
    };
    std::vector<prometheus::MetricFamily> out;
    out.push_back(std::move(service));
    out.push_back(std::move(queue));
    out.push_back(std::move(size));
    out.push_back(std::move(requests));
    out.push_back(std::move(bytes));
    out.push_back({"hostprof_block_io_slow_total",
                   "Block requests slower than the threshold",
                   MetricType::Counter,
                   {slow}});
    out.push_back(lost_by_reason("hostprof_block_io_lost_total",
                                 "Block requests or slow-I/O records lost, by reason", reasons,
                                 s.kernel_stats));
    prometheus::ClientMetric taken;
    taken.counter.value = stat(HP_BLK_STAT_SLOT_TAKEN);
    out.push_back({"hostprof_block_inflight_collisions_total",
                   "Requests whose in-flight slot another request held (tracked in the "
                   "overflow hash map instead; nothing lost)",
                   MetricType::Counter,
                   {taken}});
    prometheus::ClientMetric dev_taken;
    dev_taken.counter.value = stat(HP_BLK_STAT_DEV_SLOT_TAKEN);
    out.push_back({"hostprof_block_stats_collisions_total",
                   "Completions whose (device, op) found its per-CPU stats slot held by "
                   "another (counted in the overflow hash map instead; nothing lost)",
                   MetricType::Counter,
                   {dev_taken}});
    return out;
}

std::vector<prometheus::MetricFamily> runqueue_metric_families(const RunQueueSnapshot& s,
                                                               NativeHistogramSet* natives) {
    const std::string name = "hostprof_runqueue_latency_seconds";
    prometheus::ClientMetric hist;
    hist.histogram = to_prometheus_histogram(s.latency, 1e-9);
    add_native(natives, name, hist, s.latency.native);
    prometheus::ClientMetric lost;
    lost.label = {{"reason", "start_map_full"}};
    lost.counter.value = s.kernel_stats.size() > HP_RQ_STAT_START_FAILED
                             ? static_cast<double>(s.kernel_stats[HP_RQ_STAT_START_FAILED])
                             : 0.0;
    std::vector<prometheus::MetricFamily> out;
    out.push_back({name,
                   "Time runnable threads waited for a CPU (wakeup or preemption to switch-in)",
                   prometheus::MetricType::Histogram,
                   {std::move(hist)}});
    out.push_back({"hostprof_runqueue_lost_total",
                   "Run-queue waits not measured, by reason",
                   prometheus::MetricType::Counter,
                   {std::move(lost)}});
    return out;
}

namespace {

prometheus::MetricFamily gauge_family(std::string name, std::string help, double value) {
    prometheus::MetricFamily f{std::move(name), std::move(help), prometheus::MetricType::Gauge, {}};
    prometheus::ClientMetric m;
    m.gauge.value = value;
    f.metric.push_back(std::move(m));
    return f;
}

prometheus::MetricFamily counter_family(std::string name, std::string help, double value) {
    prometheus::MetricFamily f{
        std::move(name), std::move(help), prometheus::MetricType::Counter, {}};
    prometheus::ClientMetric m;
    m.counter.value = value;
    f.metric.push_back(std::move(m));
    return f;
}

} // namespace

std::vector<prometheus::MetricFamily> LatencyMetrics::Collect() const {
    NativeHistogramSet unused;
    return collect_with_native(unused);
}

std::vector<prometheus::MetricFamily>
LatencyMetrics::collect_with_native(NativeHistogramSet& natives) const {
    LatencySnapshot s = collectors_->snapshot();
    std::vector<prometheus::MetricFamily> out;
    auto add = [&](std::vector<prometheus::MetricFamily> v) {
        out.insert(out.end(), std::make_move_iterator(v.begin()), std::make_move_iterator(v.end()));
    };
    if (s.syscalls) {
        add(syscall_metric_families(*s.syscalls, &natives));
        if (s.syscall_cgroups)
            out.push_back(gauge_family(
                "hostprof_syscall_cgroups_over_limit",
                "Cgroups matching syscall_cgroups beyond the per-cgroup histogram limit",
                static_cast<double>(s.cgroups_over_limit)));
    }
    if (s.tcp)
        add(tcp_metric_families(*s.tcp, &natives));
    if (s.block)
        add(block_metric_families(*s.block, &natives));
    if (s.runqueue)
        add(runqueue_metric_families(*s.runqueue, &natives));
    if (store_ != nullptr) {
        out.push_back(gauge_family("hostprof_outliers_stored",
                                   "Slow events kept for exemplars and /debug/outliers",
                                   static_cast<double>(store_->size())));
        out.push_back(gauge_family("hostprof_outliers_capacity",
                                   "Bound of the outlier store (outlier_store_size)",
                                   static_cast<double>(store_->capacity())));
        out.push_back(counter_family("hostprof_outliers_evicted_total",
                                     "Slow events evicted from the store, oldest first",
                                     static_cast<double>(store_->evicted())));
    }
    return out;
}

} // namespace hostprof
