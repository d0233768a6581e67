// The agent's HTTP surface (read-only):
//   /healthz                    alive
//   /readyz                     JSON: collectors, hooks, attach modes, what is degraded and why
//   /metrics                    Prometheus text 0.0.4, or OpenMetrics 1.0 by Accept
//   /debug/pprof/profile        Go-compatible CPU profile (?seconds=N, pid=, cgroup=,
//                               container=, service=, comm=)
//   /debug/pprof/offcpu         the same for off-CPU time
//   /debug/pprof/syscall_latency the stacks of slow syscalls, weighted by their latency
//   /debug/outliers             JSON: recent slow syscalls and I/O (?id=N: one, with its
//                               symbolized stack; ids are the exemplars' outlier_id)
//   /flamegraph                 self-contained interactive flame graph page (?kind=cpu,
//                               offcpu or syscall_latency)
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <prometheus/collectable.h>

#include "agent/serve/agent_metrics.h"
#include "agent/serve/http_query.h"
#include "agent/serve/http_server.h"
#include "agent/aggregate/outliers.h"
#include "agent/pipeline/pipeline.h"

namespace hostprof {

struct CollectorState {
    std::string name;
    bool running = false;
    std::string reason; // why not running
};

// Everything the handlers read. Owned by the daemon; outlives the HTTP server.
struct AgentState {
    Pipeline* pipeline = nullptr;     // null when profiling is not running
    OutlierStore* outliers = nullptr; // null when no latency collector runs
    std::vector<CollectorState> collectors;
    std::vector<ProgramState> programs;
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables;
    EndpointLimits limits;
    std::atomic<int> active_profiles{0};
    // Exported with /metrics: requests refused with 400 (bad query) and 429 (over the limit).
    std::atomic<uint64_t> bad_requests{0};
    std::atomic<uint64_t> throttled_profiles{0};

    // The last completed continuous on-CPU window, for /flamegraph without waiting.
    std::mutex last_mu;
    std::optional<ProfileWindow> last_on_cpu;
};

std::map<std::string, HttpServer::Handler> make_routes(AgentState& state);

} // namespace hostprof
