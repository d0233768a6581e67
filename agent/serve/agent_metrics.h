// The agent's own health as Prometheus metric families, read at scrape time: ring-buffer
// records and drops, decode errors, stack errors, process table, per-program BPF run
// time (bpf_prog_info; needs kernel.bpf_stats_enabled=1), attach state, CPU and RSS.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/host/watchdog.h"
#include "agent/pipeline/pipeline.h"

namespace hostprof {

struct ProgramState {
    std::string collector;
    std::string hook;
    std::string mode; // attach mode, or "none"
    bool attached = false;
    std::string reason; // why not, when not attached
};

class AgentMetrics : public prometheus::Collectable {
  public:
    // pipeline may be null (profiling not running). prog_fds: every loaded program of every
    // collector (descriptors stay owned by the collectors, which outlive this object).
    AgentMetrics(const Pipeline* pipeline, std::vector<ProgramState> programs,
                 std::vector<ProgramFd> prog_fds);
    std::vector<prometheus::MetricFamily> Collect() const override;

    // Samples counted per service over completed windows (bounded: top services by
    // first appearance; the rest are summed under service_name="other").
    void add_service_samples(const std::string& service, uint64_t samples);

  private:
    const Pipeline* pipeline_;
    std::vector<ProgramState> programs_;
    std::vector<ProgramFd> prog_fds_;
    mutable std::mutex mu_;
    std::map<std::string, uint64_t> service_samples_;
};

// hostprof_watchdog_stalls_total{consumer} and hostprof_watchdog_seconds_since_progress
// {consumer} of the watchdog's consumers (host/watchdog.h).
std::vector<prometheus::MetricFamily>
watchdog_metric_families(const std::vector<Watchdog::ConsumerReport>& consumers);

class WatchdogMetrics : public prometheus::Collectable {
  public:
    explicit WatchdogMetrics(std::shared_ptr<const Watchdog> watchdog)
        : watchdog_(std::move(watchdog)) {}
    std::vector<prometheus::MetricFamily> Collect() const override {
        return watchdog_metric_families(watchdog_->report());
    }

  private:
    std::shared_ptr<const Watchdog> watchdog_;
};

// CPU seconds (user+system) and resident bytes of this process, from /proc/self/stat;
// malloc's view of its heap (glibc mallinfo2): bytes handed out and bytes it holds free
// in its arenas. RSS rising with heap_free flat is growth; with heap_free rising, it is
// memory malloc keeps after a burst.
struct SelfUsage {
    double cpu_seconds = 0;
    uint64_t rss_bytes = 0;
    uint64_t heap_in_use_bytes = 0;
    uint64_t heap_free_bytes = 0;
};
SelfUsage read_self_usage();

// Run time and count of our BPF programs, through the descriptors we hold (no
// capability needed, unlike walking every program id on the host), and the runs the
// kernel skipped because the program was already running on that CPU (an event raised
// from an interrupt while the same program ran in the task it interrupted; 5.12+).
struct BpfProgramStats {
    std::string name;
    uint64_t run_time_ns = 0;
    uint64_t run_count = 0;
    uint64_t recursion_misses = 0;
};
std::vector<BpfProgramStats> read_bpf_program_stats(const std::vector<ProgramFd>& progs);

} // namespace hostprof
