// Aggregation: stack records of one time window folded into stack -> (count, weight)
// per process (and thread, optionally). A process is (pid, start time), as the BPF
// program reports it, so pid reuse never mixes two executables.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/process/comm_pattern.h"
#include "agent/process/process_table.h"
#include "agent/collect/profile_records.h"
#include "agent/aggregate/stack_table.h"

namespace hostprof {

// Which processes a profile covers (empty fields match everything).
struct ProfileFilter {
    std::optional<uint32_t> pid;
    std::string cgroup_prefix;
    std::string container_id; // full id or a prefix of at least 12 hex digits
    std::string service;
    std::optional<CommPattern> comm;

    bool matches(const ProcessInfo& p) const;
};

struct ProfileWindow {
    hp_prof_kind kind = HP_PROF_ON_CPU;
    int64_t start_unix_ns = 0;
    int64_t end_unix_ns = 0;
    StackTable stacks;
    // Metadata of each (pid, start time) as it was when first sampled in the window.
    std::map<std::pair<uint32_t, uint64_t>, ProcessInfo> processes;
    uint64_t records = 0;
    uint64_t filtered = 0;
};

class ProfileAggregator {
  public:
    ProfileAggregator(hp_prof_kind kind, ProfileFilter filter = {}, bool per_thread = false,
                      size_t max_stacks = 200'000);

    // meta: the process table (read on the first sample of a process in the window).
    // True when the record is of this aggregator's kind and its process passes the filter.
    bool add(const StackRecordView& r, ProcessTable& meta);

    // The process pid exec'd: same pid and start time, new image. Its next sample is
    // admitted (filtered) and labelled anew, from the metadata of the new image.
    void on_exec(uint32_t pid);

    // Returns the window so far and starts a new one.
    ProfileWindow take();
    uint64_t dropped_stacks() const { return dropped_; } // over max_stacks

  private:
    hp_prof_kind kind_;
    ProfileFilter filter_;
    bool per_thread_;
    size_t max_stacks_;
    ProfileWindow window_;
    // (pid, start time) -> matches the filter?
    std::map<std::pair<uint32_t, uint64_t>, bool> admitted_;
    // The last process looked up in admitted_ and its answer: consecutive samples are
    // often of one process.
    std::optional<std::pair<std::pair<uint32_t, uint64_t>, bool>> last_admitted_;
    uint64_t dropped_ = 0;
};

int64_t unix_now_ns();

} // namespace hostprof
