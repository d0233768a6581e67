// The syscall-latency collector: owns the `syscalls` BPF skeleton (raw_syscalls
// sys_enter/sys_exit), its links and its outlier ring-buffer consumer. Every syscall is
// aggregated in kernel maps, read on demand by snapshot(); syscalls slower than their
// threshold arrive, with their stacks, through poll() and the outlier callback.
// Construction loads and attaches everything (or fails and releases what it made);
// destruction detaches.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/collect/latency_histogram.h"
#include "agent/collect/latency_records.h"
#include "common/bpf_handles.h"
#include "common/result.h"
#include "kernel-compat/planner.h"
#include "unwind/store.h"

struct syscalls_bpf;

namespace hostprof {

struct SyscallOptions {
    compat::AttachMode mode = compat::AttachMode::TpBtf; // both raw_syscalls hooks
    // Syscalls at least this slow are streamed with their stacks; 0: none by default.
    uint64_t outlier_threshold_ns = 10'000'000;
    // Per-syscall thresholds by name ("read" -> 50 ms); 0 disables that syscall's
    // outliers. An unknown name makes start() fail.
    std::map<std::string, uint64_t> outlier_threshold_overrides;
    // Per-cgroup histograms for these cgroup ids (cgroup v2 directory inode numbers), at
    // most HP_SYS_MAX_CGROUPS. Empty: host-wide histograms only.
    std::vector<uint64_t> cgroup_ids;
    // Keep per-cgroup histograms possible even with an empty list (set_cgroups later).
    bool per_cgroup = false;
    uint32_t tgid = 0; // only this process (0: every process)
    // Keep the syscall in flight in the LRU hash even where task storage works (tests of
    // the fallback that older kernels use).
    bool force_hash_in_flight = false;
    // Exact native-histogram buckets at this schema (0..3) beside the log2 histograms of
    // every syscall (host-wide); -1: none (bpf/native.h).
    int native_schema = -1;
    // The profile collector's unwind maps (ProfileCollector::unwind_maps): slow syscalls'
    // user stacks are walked with the same tables. -1: frame pointers only.
    unwind::MapFds unwind;
};

// One syscall's observations (cgroup_id 0: host-wide).
struct SyscallStats {
    uint32_t nr = 0;
    std::string name;               // syscall_label(nr): "read", or "syscall_<nr>" when unnamed
    uint64_t cgroup_id = 0;         // 0: every cgroup
    LatencyHistogram latency;       // nanoseconds, HP_SYS_SLOTS slots
    std::map<int, uint64_t> errors; // errno -> failed calls (host-wide entries only)
};

struct SyscallSnapshot {
    std::vector<SyscallStats> syscalls;           // host-wide, syscalls seen at least once, by nr
    std::vector<SyscallStats> by_cgroup;          // allowlisted cgroups, by (cgroup, nr)
    std::vector<uint64_t> kernel_stats;           // hp_sys_stats summed, HP_SYS_STAT_MAX entries
    uint64_t outlier_records = 0;                 // consumed from the ring
    uint64_t decode_errors = 0;                   // records rejected by the decoder
    bool per_cgroup = false;                      // per-cgroup histograms enabled
    std::map<uint64_t, std::string> cgroup_paths; // id -> path label, filled by the caller

    // The host-wide entry of a syscall name, or nullptr.
    const SyscallStats* find(std::string_view name) const;
    const SyscallStats* find(uint64_t cgroup_id, std::string_view name) const;
};

class SyscallCollector {
  public:
    using OutlierHandler = std::function<void(const SyscallOutlierView&)>;

    static Result<std::unique_ptr<SyscallCollector>> start(const SyscallOptions& options,
                                                           OutlierHandler on_outlier);
    ~SyscallCollector();
    SyscallCollector(const SyscallCollector&) = delete;
    SyscallCollector& operator=(const SyscallCollector&) = delete;

    // Waits up to timeout_ms for outliers, then drains the ring. Returns records
    // consumed, or a negative errno (-EINTR when a signal arrived).
    int poll(int timeout_ms);
    // Drains the ring without waiting (for a consumer that waits on ring_fd() itself).
    int consume();
    int ring_fd() const;
    // Reads the kernel maps (cumulative since start). Safe to call from any one thread
    // while another polls.
    SyscallSnapshot snapshot() const;
    // Replaces the per-cgroup allowlist (at most HP_SYS_MAX_CGROUPS ids). Only when the
    // collector started with a non-empty allowlist or per_cgroup set. Histograms of
    // cgroups that leave the list are deleted, so the kernel map never fills with the
    // dead. Call from one thread at a time.
    Status set_cgroups(const std::vector<uint64_t>& cgroup_ids);
    const std::vector<std::string>& attached() const { return attached_; }
    // Where the syscall in flight is kept: "task storage" or "lru hash".
    const std::string& in_flight_storage() const { return in_flight_; }
    // Every loaded program, for run-time statistics (descriptors stay owned here).
    std::vector<ProgramFd> programs() const;

  private:
    SyscallCollector() = default;
    static int on_record(void* ctx, void* data, size_t size);

    Skeleton<syscalls_bpf> skel_;
    std::vector<BpfLink> links_;
    RingBuffer ring_;
    OutlierHandler on_outlier_;
    std::atomic<uint64_t> records_{0};
    std::atomic<uint64_t> decode_errors_{0};
    std::vector<std::string> attached_;
    std::vector<uint64_t> cgroups_; // the allowlist in the kernel map
    bool per_cgroup_ = false;
    int native_schema_ = -1;
    std::string in_flight_;
};

// errno as a label value: "EAGAIN"; kernel-internal restart codes by their kernel names;
// the number when it has no name.
std::string errno_label(int err);

} // namespace hostprof
