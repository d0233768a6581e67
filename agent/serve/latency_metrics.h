// The Prometheus view of the latency collectors: their plain snapshots (agent/collect/)
// turned into metric families at scrape time. Collectors know nothing of Prometheus; this
// file is where their histograms get names, labels and base units.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "agent/aggregate/outliers.h"
#include "agent/collect/block_collector.h"
#include "agent/collect/latency_histogram.h"
#include "agent/collect/runqueue_collector.h"
#include "agent/collect/syscall_collector.h"
#include "agent/collect/tcp_collector.h"
#include "agent/pipeline/latency.h"
#include "exporters/metrics.h"

namespace hostprof {

// The Prometheus histogram of h: one cumulative bucket per slot but the last, with
// le = 2^(i+1) * unit_to_base (e.g. 1e-9 for nanoseconds -> seconds), every bucket present
// even when empty (backfilled), then le=+Inf with the total count. sample_sum is
// sum * unit_to_base.
prometheus::ClientMetric::Histogram to_prometheus_histogram(const LatencyHistogram& h,
                                                            double unit_to_base);

// A counter family of losses, one series per reason: reasons pairs a kernel-side stat
// index with its `reason` label; a stat the kernel did not report counts 0.
prometheus::MetricFamily lost_by_reason(std::string name, std::string help,
                                        std::span<const std::pair<size_t, const char*>> reasons,
                                        const std::vector<uint64_t>& kernel_stats);

// Each *_metric_families below puts the exact native buckets of its histograms that have
// them (collectors started with native_schema) into natives, when given.

// The Prometheus families of a snapshot:
//   hostprof_syscall_latency_seconds{syscall}               histogram
//   hostprof_syscall_errors_total{syscall,errno}            counter
//   hostprof_cgroup_syscall_latency_seconds{cgroup_id,cgroup,syscall} histogram (allowlist;
//                                            the family is present whenever per_cgroup is)
//   hostprof_syscall_outliers_total                         counter (shipped to the ring)
//   hostprof_syscall_lost_total{reason}                     counter (every kernel drop)
std::vector<prometheus::MetricFamily>
syscall_metric_families(const SyscallSnapshot& s, NativeHistogramSet* natives = nullptr);

// Every family is labelled {family, port} (port: a configured port or "other"):
// hostprof_tcp_connect_latency_seconds        histogram (SYN_SENT -> ESTABLISHED)
// hostprof_tcp_srtt_seconds                   histogram (at each tcp_probe)
// hostprof_tcp_retransmits_total              counter
// hostprof_tcp_resets_total{direction}        counter (direction: sent, received)
// hostprof_tcp_connect_failures_total         counter (SYN_SENT -> CLOSE)
// hostprof_tcp_connection_duration_seconds    histogram (ESTABLISHED -> CLOSE)
// hostprof_tcp_connection_sent_bytes          histogram (payload, per closed connection)
// hostprof_tcp_connection_received_bytes      histogram (payload, per closed connection)
std::vector<prometheus::MetricFamily> tcp_metric_families(const TcpSnapshot& s,
                                                          NativeHistogramSet* natives = nullptr);

// hostprof_block_io_latency_seconds{device,op}       histogram (issue -> complete)
// hostprof_block_io_queue_seconds{device,op}         histogram (insert -> issue)
// hostprof_block_io_size_bytes{device,op}            histogram
// hostprof_block_io_requests_total{device,op}        counter
// hostprof_block_io_bytes_total{device,op}           counter
// hostprof_block_io_slow_total                       counter
// hostprof_block_io_lost_total{reason}               counter
std::vector<prometheus::MetricFamily> block_metric_families(const BlockSnapshot& s,
                                                            NativeHistogramSet* natives = nullptr);

// hostprof_runqueue_latency_seconds (histogram) and
// hostprof_runqueue_lost_total{reason="start_map_full"} (counter).
std::vector<prometheus::MetricFamily>
runqueue_metric_families(const RunQueueSnapshot& s, NativeHistogramSet* natives = nullptr);

// /metrics families of the running latency collectors, read at each scrape, and of the
// outlier store they feed (hostprof_outliers_stored, _capacity, _evicted_total).
class LatencyMetrics : public prometheus::Collectable, public NativeHistogramSource {
  public:
    LatencyMetrics(std::shared_ptr<const LatencyCollectors> collectors, const OutlierStore* store)
        : collectors_(std::move(collectors)), store_(store) {}
    std::vector<prometheus::MetricFamily> Collect() const override;
    // The same families; histograms with exact native buckets also go to natives.
    std::vector<prometheus::MetricFamily>
    collect_with_native(NativeHistogramSet& natives) const override;

  private:
    std::shared_ptr<const LatencyCollectors> collectors_;
    const OutlierStore* store_;
};

} // namespace hostprof
