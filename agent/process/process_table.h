// Process metadata: pid -> executable, cmdline, start time, cgroup, container, pod,
// service name. Read from a ProcFs root (a parameter, so tests inject a fake tree),
// kept current from exec/exit notices, bounded (least recently used entries go first).
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace hostprof {

// What a cgroup path says about the container runtime (pure parsing, no I/O).
struct ContainerInfo {
    std::string runtime;      // docker, containerd, crio, podman, or empty
    std::string container_id; // 64 hex digits, or empty
    std::string pod_uid;      // Kubernetes pod uid (dashes), or empty
};
ContainerInfo parse_container_info(std::string_view cgroup_path);

// The cgroup v2 path ("0::/path") from /proc/PID/cgroup text; v1 falls back to the
// cpu/cpuacct or name=systemd hierarchy.
std::string parse_cgroup_file(std::string_view text);

// Start times compared at the resolution of /proc/PID/stat (clock ticks).
bool same_start_time(uint64_t a_ns, uint64_t b_ns);

// Field 22 of /proc/PID/stat (start time, clock ticks since boot); handles a comm
// with spaces and parentheses.
std::optional<uint64_t> parse_stat_start_ticks(std::string_view stat_text);
// Field 2 (comm, without its parentheses) and field 3 (state: 'R', 'S', 'Z', ...) of
// /proc/PID/stat; empty and '\0' when the text is not a stat line.
std::string_view parse_stat_comm(std::string_view stat_text);
char parse_stat_state(std::string_view stat_text);

enum class ServiceRule { Auto, Exe, Comm, Cgroup };
std::optional<ServiceRule> service_rule_from_string(std::string_view s);

struct ProcessInfo {
    uint32_t pid = 0;
    uint64_t start_time_ns = 0; // since boot (with pid: identity across pid reuse)
    std::string comm;
    std::string exe;     // /proc/PID/exe target, "" when unreadable (kernel thread, gone)
    std::string cmdline; // NUL-separated arguments joined with spaces, capped
    std::string cgroup;
    ContainerInfo container;
    std::string service_name;
    bool exited = false;
};

struct ProcessTableStats {
    uint64_t lookups = 0;
    uint64_t reads = 0;               // entries (re)read from procfs
    uint64_t read_errors = 0;         // process gone or unreadable when first seen
    uint64_t identity_mismatches = 0; // procfs showed another process under the pid
    uint64_t evictions = 0;
    uint64_t size = 0;
};

class ProcessTable {
  public:
    ProcessTable(std::string proc_root = "/proc", size_t max_entries = 16384,
                 ServiceRule rule = ServiceRule::Auto);

    // The entry for the process (pid, start_time_ns), read from procfs on first use and
    // re-read when the pid now names another process. When procfs no longer has that
    // process (it exited, or the pid was reused), the entry carries only `comm` and an
    // empty exe: never another process's metadata. start_time_ns == 0: do not check.
    const ProcessInfo& get(uint32_t pid, uint64_t start_time_ns, std::string_view comm = {});
    // exec: the old image's metadata is stale; exit: keep the entry (its samples may
    // still be rendered in this window) but mark it for removal by sweep_exited().
    void on_exec(uint32_t pid);
    void on_exit(uint32_t pid);
    // Drops exited processes (call after a window was rendered).
    void sweep_exited();
    ProcessTableStats stats() const;

  private:
    ProcessInfo read(uint32_t pid, uint64_t start_time_ns, std::string_view comm);
    void
    touch(std::unordered_map<uint32_t,
                             std::pair<ProcessInfo, std::list<uint32_t>::iterator>>::iterator it);

    std::string root_;
    size_t max_entries_;
    ServiceRule rule_;
    std::list<uint32_t> lru_; // most recent at front
    std::unordered_map<uint32_t, std::pair<ProcessInfo, std::list<uint32_t>::iterator>> map_;
    ProcessTableStats stats_;
};

} // namespace hostprof
