// `hostprof record`: a one-shot profile to a file, perf-record style, without the daemon.
#pragma once

#include <optional>
#include <string>

#include "agent/config/config.h"

namespace hostprof {

struct RecordOptions {
    std::string output = "profile.pb.gz";
    std::string format = "pprof"; // pprof | folded | html
    bool off_cpu = false;         // record off-CPU time instead of on-CPU samples
    std::optional<uint32_t> pid;
    std::string cgroup;
    std::string container;
    std::string service;
    std::string comm;
};

// Returns the exit code.
int run_record(Config config, const RecordOptions& options);

} // namespace hostprof
