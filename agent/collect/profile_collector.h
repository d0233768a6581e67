// The CPU-profile collector: owns the `profile` BPF skeleton, its per-CPU perf-event
// links, its tracepoint links and its ring-buffer consumer. Construction loads and
// attaches everything (or fails and releases what it made); destruction detaches.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/collect/profile_records.h"
#include "common/bpf_handles.h"
#include "common/result.h"
#include "kernel-compat/planner.h"
#include "unwind/store.h"

struct profile_bpf;

namespace hostprof {

struct ProfileOptions {
    int frequency_hz = 19;
    bool on_cpu = true;
    bool off_cpu = true;
    uint64_t off_cpu_min_ns = 1'000'000;
    std::vector<uint32_t> pids; // empty: every process
    std::string cgroup_dir;     // a cgroup v2 directory: only tasks in it or below ("": all)
    compat::AttachMode proc_mode = compat::AttachMode::TpBtf; // exec/exit hooks
    compat::AttachMode off_cpu_mode = compat::AttachMode::TpBtf;
    // On-CPU sampling clock: PerfEvent is a cpu-clock event per CPU; a tracepoint mode is
    // the tick sampler on that hook's variant, with the tick's hrtimer callback and HZ.
    compat::AttachMode on_cpu_mode = compat::AttachMode::PerfEvent;
    uint64_t tick_handler = 0;
    uint64_t irq_entry = 0, irq_entry_end = 0; // the timer interrupt's entry code
    int64_t irq_regs_from_rq = 0;              // where __irq_regs is from the runqueue
    int tick_hz = 0;
    uint32_t ring_bytes = 2u << 20; // power of two, multiple of the page size
    // User stacks walked in BPF with per-file unwind tables (unwind/: CFI, Go), falling
    // back to frame pointers where a table is missing; false: frame pointers only.
    bool unwind = true;
    uint64_t unwind_budget_bytes = 16ull << 20; // the rows map (8 bytes a row)
    // Python functions in the stacks of CPython processes (needs `unwind`).
    bool python = true;
    unwind::Builder unwind_builder; // file -> rows (the agent's: CFI + Go)
    std::string proc_root = "/proc";
};

struct ProfileCounters {
    std::array<uint64_t, HP_PROF_STAT_MAX> kernel{}; // summed hp_prof_stats
    uint64_t records = 0;                            // records consumed from the ring
    uint64_t decode_errors = 0;                      // records rejected by the decoders
    std::array<uint64_t, HP_UNW_STAT_MAX> unwind{};  // summed hp_unw_stats
    std::array<uint64_t, HP_PY_STAT_MAX> python{};   // summed hp_py_stats
};

class ProfileCollector {
  public:
    using StackHandler = std::function<void(const StackRecordView&)>;
    using ProcHandler = std::function<void(const ProcRecord&)>;

    static Result<std::unique_ptr<ProfileCollector>>
    start(const ProfileOptions& options, StackHandler on_stack, ProcHandler on_proc);
    ~ProfileCollector();
    ProfileCollector(const ProfileCollector&) = delete;
    ProfileCollector& operator=(const ProfileCollector&) = delete;

    // Waits up to timeout_ms for a wakeup, then drains the ring. Returns records
    // consumed, or a negative errno (-EINTR when a signal arrived).
    int poll(int timeout_ms);
    // Drains the ring without waiting (the consumer thread only: the ring has one reader).
    int consume();
    ProfileCounters counters() const;
    int ring_fd() const;
    std::vector<ProgramFd> programs() const;
    // "hook (mode)" for every attached hook, e.g. "cpu-clock (perf_event, 2 CPUs)".
    const std::vector<std::string>& attached() const { return attached_; }
    // The unwind-table store (nullptr: frame pointers only), and why not when it is off.
    unwind::Store* unwinder() const { return unwind_.get(); }
    const std::string& unwind_status() const { return unwind_status_; }
    unwind::MapFds unwind_maps() const;

  private:
    ProfileCollector() = default;
    // Opens the skeleton, sets its configuration and loads it (unwind: with the walker).
    Status open_and_load(const ProfileOptions& options, bool unwind);
    static int on_record(void* ctx, void* data, size_t size);

    Skeleton<profile_bpf> skel_;
    std::vector<BpfLink> links_;
    RingBuffer ring_;
    StackHandler on_stack_;
    ProcHandler on_proc_;
    std::atomic<uint64_t> records_{0}; // written by the consumer, read by anyone
    std::atomic<uint64_t> decode_errors_{0};
    std::vector<std::string> attached_;
    std::unique_ptr<unwind::Store> unwind_;
    std::string unwind_status_;
};

// CPUs that are online now (from /sys/devices/system/cpu/online).
std::vector<int> online_cpus();

} // namespace hostprof
