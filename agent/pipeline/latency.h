// The kernel-latency half of the agent, wired in one place: the syscall, TCP, block-I/O
// and run-queue collectors started from the attach plan, one consumer thread for the
// rings that stream slow events, and the scrape-time view of their kernel maps.
//
//   bpf/syscalls.bpf.c --maps--> SyscallCollector::snapshot --> /metrics histograms
//                                (LatencyCollectors::snapshot, serve/latency_metrics.h)
//                      --ring--> outliers --> OutlierStore (exemplars, /debug/outliers)
//                                         --> Pipeline::add_record (syscall_latency profile)
//   bpf/block.bpf.c    --maps--> BlockCollector::snapshot --> /metrics
//                      --ring--> slow I/O --> OutlierStore
//   bpf/tcp.bpf.c, bpf/runqueue.bpf.c --maps--> snapshot --> /metrics
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "agent/collect/block_collector.h"
#include "agent/aggregate/outliers.h"
#include "agent/collect/runqueue_collector.h"
#include "agent/collect/syscall_collector.h"
#include "agent/collect/tcp_collector.h"
#include "agent/host/watchdog.h"
#include "common/bpf_handles.h"
#include "common/unique_fd.h"
#include "kernel-compat/planner.h"

namespace hostprof {

class Pipeline;

struct LatencyOptions {
    // Collectors to start, with the attach mode the planner chose for each.
    std::map<compat::Collector, compat::AttachMode> collectors;
    uint64_t syscall_outlier_ns = 10'000'000;
    std::map<std::string, uint64_t> syscall_outlier_overrides; // name -> ns (0: never)
    // Glob patterns (fnmatch) over cgroup v2 paths ("/system.slice/*.service"): matching
    // cgroups get their own syscall histograms, at most HP_SYS_MAX_CGROUPS of them.
    std::vector<std::string> syscall_cgroups;
    std::string cgroup_root = "/sys/fs/cgroup";
    uint64_t block_slow_ns = 100'000'000;
    std::vector<uint16_t> tcp_ports; // ports with TCP series of their own
    std::string sys_root = "/sys";
    // Exact native-histogram buckets in BPF for every duration histogram (0..3); -1: the
    // native form is derived from the log2 buckets (bpf/native.h).
    int native_schema = -1;
};

// How one collector's start went, for /readyz and the log.
struct LatencyStart {
    compat::Collector collector;
    bool running = false;
    std::string reason;                // why not
    std::vector<std::string> attached; // "hook (mode)"
};

// Cgroup v2 directories under root whose path (relative to root, with a leading '/';
// the root itself is "/") matches one of the patterns: inode (= cgroup id) -> path.
// Stops at `limit` matches (sorted by path) and reports how many more matched.
std::pair<std::map<uint64_t, std::string>, size_t>
match_cgroups(const std::string& root, const std::vector<std::string>& patterns, size_t limit);

// What one scrape reads from the kernel maps: each running collector's snapshot.
struct LatencySnapshot {
    std::optional<SyscallSnapshot> syscalls; // with cgroup_paths filled in
    bool syscall_cgroups = false;            // syscall_cgroups is configured
    size_t cgroups_over_limit = 0;           // matching cgroups beyond the histogram limit
    std::optional<TcpSnapshot> tcp;
    std::optional<BlockSnapshot> block;
    std::optional<RunQueueSnapshot> runqueue;
};

class LatencyCollectors {
  public:
    // Starts each wanted collector independently (a failure stops only that one; see
    // `report`). Outliers go to `store`, syscall outliers also to `pipeline` (may be null).
    LatencyCollectors(const LatencyOptions& options, OutlierStore* store, Pipeline* pipeline,
                      std::vector<LatencyStart>& report);
    ~LatencyCollectors(); // stops the consumer, then detaches
    LatencyCollectors(const LatencyCollectors&) = delete;
    LatencyCollectors& operator=(const LatencyCollectors&) = delete;

    // Starts the thread that drains the outlier rings (after capabilities are dropped:
    // threads inherit the creator's). It beats `watch` (if given) every round.
    void start_consumer(Watchdog::Consumer* watch = nullptr);
    // Re-reads the syscall cgroup allowlist and disk names (the daemon calls it every
    // profile window).
    void refresh();
    bool empty() const { return !syscalls_ && !tcp_ && !block_ && !runqueue_; }
    std::vector<ProgramFd> programs() const;
    uint64_t consumed() const { return consumed_.load(); }

    // Reads every running collector's maps (one caller at a time).
    LatencySnapshot snapshot() const;

  private:
    void consume_loop();
    void on_syscall(const SyscallOutlierView& v);
    void on_slow_io(const SlowIo& io);

    LatencyOptions options_;
    OutlierStore* store_;
    Pipeline* pipeline_;
    std::unique_ptr<SyscallCollector> syscalls_;
    std::unique_ptr<TcpCollector> tcp_;
    std::unique_ptr<BlockCollector> block_;
    std::unique_ptr<RunQueueCollector> runqueue_;

    mutable std::mutex names_mu_;
    std::map<uint64_t, std::string> cgroup_paths_;
    size_t cgroups_over_limit_ = 0;
    std::map<std::pair<uint32_t, uint32_t>, std::string> disks_;

    mutable std::mutex collect_mu_; // one scrape at a time reads the maps
    std::atomic<bool> stop_{false};
    UniqueFd stop_fd_; // eventfd: wakes the consumer to stop
    std::atomic<uint64_t> consumed_{0};
    Watchdog::Consumer* watch_ = nullptr;
    std::thread consumer_;
};

} // namespace hostprof
