// The profiling data flow, wired in one place (read this first):
//
//   bpf/profile.bpf.c --ring buffer--> ProfileCollector (agent/collect/profile_collector.h)
//     --StackRecordView--> ProfileAggregator per subscriber (agent/aggregate/aggregator.h), its
//       window's stacks in a flat StackTable (agent/aggregate/stack_table.h)
//     --ProfileWindow--> build_profile + FrameResolver (agent/pipeline/profile_builder.h,
//       symbolizer/)
//     --Profile--> exporters/ (pprof, folded, flame graph) --bytes--> HTTP / files
//
//   bpf/syscalls.bpf.c outliers --LatencyCollectors (agent/pipeline/latency.h)--> add_record()
//     --> the same aggregators, as HP_PROF_SYSCALL_LATENCY stacks weighted by latency
//
// One consumer thread calls poll(); any thread may subscribe, collect, symbolize and
// add_record(). The kernel wakes the consumer rarely (docs/profiling.md, "Wakeups"), so
// collect() and stats() first ask it to drain what is waiting in the ring (flush()).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "agent/aggregate/aggregator.h"
#include "agent/process/process_table.h"
#include "agent/pipeline/profile_builder.h"
#include "agent/collect/profile_collector.h"
#include "agent/host/watchdog.h"
#include "common/unique_fd.h"
#include "unwind/python_symbols.h"

namespace hostprof {

struct PipelineOptions {
    ProfileOptions collector;
    std::string proc_root = "/proc";
    size_t process_table_size = 16384;
    ServiceRule service_rule = ServiceRule::Auto;
    // An exited process's mappings stay with the resolver this long, so windows that
    // sampled it still symbolize it, but never more than `exited_max` processes (each
    // holds its executable mappings, a few KiB: 4096 of them under an exec storm were
    // ~20 MiB of the agent's 64 MiB budget).
    uint64_t exited_grace_ns = 60'000'000'000ULL;
    size_t exited_max = 1024;
};

struct PipelineStats {
    ProfileCounters collector;
    ProcessTableStats processes;
    uint64_t on_cpu_records = 0;
    uint64_t off_cpu_records = 0;
    uint64_t latency_records = 0; // stacks of slow syscalls
    uint64_t proc_records = 0;
    uint64_t subscriptions = 0;           // active
    uint64_t kernel_stacks_truncated = 0; // filled all 127 frames: maybe cut short
    uint64_t user_stacks_truncated = 0;
    // Consumer-side loss: records dropped because a window already held its maximum of
    // distinct stacks (ProfileAggregator's bound), over all subscriptions ever.
    uint64_t window_stack_drops = 0;
    uint64_t processes_captured = 0;              // mappings read for the symbolizer
    uint64_t processes_exited_before_capture = 0; // gone before they could be read
};

class Pipeline {
  public:
    static Result<std::unique_ptr<Pipeline>> start(const PipelineOptions& options,
                                                   std::unique_ptr<FrameResolver> resolver);

    // Consumer side: waits up to timeout_ms for a kernel wakeup or a flush() request,
    // then dispatches everything in the ring. Negative errno on failure (-EINTR when a
    // signal interrupted the wait).
    int poll(int timeout_ms);
    // Makes every record the kernel wrote before the call visible to collect() and
    // stats(). On the consumer thread (the one that called start(), or the last to call
    // poll()) it drains at once; another thread asks the consumer and waits for its next
    // drain, at most `wait` (the ring has a single reader, and a stalled consumer must
    // not hang an HTTP request).
    void flush(std::chrono::milliseconds wait = std::chrono::seconds(1)) const;

    // A stack record from another collector (a slow syscall), for the subscribers of its
    // kind. Views are copied; the caller keeps ownership.
    void add_record(const StackRecordView& r) { on_stack(r); }
    // From now on, records of `kind` from processes matching `filter` are aggregated
    // for this subscriber until collect() returns its window.
    using SubscriptionId = uint64_t;
    SubscriptionId subscribe(hp_prof_kind kind, ProfileFilter filter, bool per_thread = false);
    ProfileWindow collect(SubscriptionId id);

    // Symbolizes a window (serialized: the resolver is not thread-safe).
    Profile symbolize(const ProfileWindow& window, const BuildOptions& options);
    // The watchdog consumer symbolize() reports to (busy while it runs, a beat per frame
    // resolved); set before concurrent use.
    void set_watchdog(Watchdog::Consumer* consumer) { symbolizer_watch_ = consumer; }

    PipelineStats stats() const;
    // The resolver's symbolizer counters (FrameResolver::symbolizer_stats); does not wait
    // for a symbolization in progress.
    bool symbolizer_stats(sym::SymbolizerStats& out) const;
    const std::vector<std::string>& attached() const { return collector_->attached(); }
    std::vector<ProgramFd> programs() const { return collector_->programs(); }
    // How user stacks are walked here ("unwind tables ..." or "frame pointers only: why").
    const std::string& unwind_status() const { return collector_->unwind_status(); }
    unwind::Store* unwinder() const { return collector_->unwinder(); }
    unwind::MapFds unwind_maps() const { return collector_->unwind_maps(); }
    // Python frames' names (nullptr: no Python frames).
    const unwind::PythonSymbols* python_symbols() const { return python_.get(); }
    int frequency_hz() const { return frequency_hz_; }

  private:
    Pipeline() = default;
    int drain() const; // on the consumer thread
    void on_stack(const StackRecordView& r);
    void on_proc(const ProcRecord& r);

    std::unique_ptr<ProfileCollector> collector_;
    // flush() from other threads: an eventfd in the consumer's poll set and two ticket
    // counters; a request is served by the first drain that begins after it was made.
    UniqueFd flush_fd_;
    mutable std::mutex flush_mu_;
    mutable std::condition_variable flush_cv_;
    mutable uint64_t flush_asked_ = 0;
    mutable uint64_t flush_served_ = 0;
    std::atomic<std::thread::id> consumer_{};
    std::unique_ptr<FrameResolver> resolver_;
    std::unique_ptr<unwind::PythonSymbols> python_;
    std::unique_ptr<ProcessTable> processes_;
    int frequency_hz_ = 19;

    mutable std::mutex mu_; // subscriptions_, processes_, counters, seen_
    std::map<SubscriptionId, ProfileAggregator> subscriptions_;
    SubscriptionId next_id_ = 1;
    // Processes announced to the resolver -> CLOCK_MONOTONIC time their capture began
    // (the clock of BPF timestamps), so a late exec record can tell whether the capture
    // already read the new image.
    std::map<std::pair<uint32_t, uint64_t>, uint64_t> seen_;
    uint64_t on_cpu_ = 0, off_cpu_ = 0, latency_ = 0, proc_ = 0;
    uint64_t ktrunc_ = 0, utrunc_ = 0;
    uint64_t window_drops_ = 0;          // of collected subscriptions
    uint64_t captured_ = 0, missed_ = 0; // process_seen() results

    std::mutex resolver_mu_;
    Watchdog::Consumer* symbolizer_watch_ = nullptr;
    // Exited processes whose resolver state is released later: (pid, exit time).
    void release_exited(bool all);
    // Processes announced to the resolver whose exit record never arrived (lost when the
    // ring overflowed) but which are gone from /proc: released like exited ones. Without
    // this, an exec storm with ring drops left the resolver's per-process state growing.
    void sweep_vanished();
    std::string proc_root_;
    int64_t last_sweep_ns_ = 0;
    std::deque<std::pair<uint32_t, int64_t>> exited_;
    std::unordered_map<uint32_t, uint32_t> exited_pids_; // pid -> its entries in exited_
    void push_exited(uint32_t pid, int64_t when);        // with mu_ held
    uint64_t exited_grace_ns_ = 0;
    size_t exited_max_ = 0;
};

} // namespace hostprof
