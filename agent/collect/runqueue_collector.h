// The run-queue latency collector: owns the `runqueue` BPF skeleton (sched_wakeup,
// sched_wakeup_new, sched_switch) and its links. Waits are aggregated in the kernel;
// snapshot() reads them. Construction loads and attaches (or fails and releases what it
// made); destruction detaches.
#pragma once

#include <linux/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/collect/latency_histogram.h"
#include "common/bpf_handles.h"
#include "common/result.h"
#include "kernel-compat/planner.h"
#include "runqueue.h"

struct runqueue_bpf;

namespace hostprof {

struct RunQueueOptions {
    compat::AttachMode mode = compat::AttachMode::TpBtf; // the three sched hooks
    // Only threads of this process (0: every thread). Not with AttachMode::Tracepoint,
    // whose wakeup records carry no tgid: start() refuses that combination.
    uint32_t tgid = 0;
    // Exact native-histogram buckets at this schema (0..3); -1: none (bpf/native.h).
    int native_schema = -1;
};

struct RunQueueSnapshot {
    LatencyHistogram latency;           // nanoseconds, HP_RQ_SLOTS slots, cumulative
    std::vector<uint64_t> kernel_stats; // hp_rq_stats summed, HP_RQ_STAT_MAX entries
};

class RunQueueCollector {
  public:
    static Result<std::unique_ptr<RunQueueCollector>> start(const RunQueueOptions& options);
    ~RunQueueCollector();
    RunQueueCollector(const RunQueueCollector&) = delete;
    RunQueueCollector& operator=(const RunQueueCollector&) = delete;

    RunQueueSnapshot snapshot() const;
    const std::vector<std::string>& attached() const { return attached_; }
    // Every loaded program, for run-time statistics (descriptors stay owned here).
    std::vector<ProgramFd> programs() const;

  private:
    RunQueueCollector() = default;
    Skeleton<runqueue_bpf> skel_;
    int native_schema_ = -1;
    std::vector<BpfLink> links_;
    std::vector<std::string> attached_;
};

} // namespace hostprof
