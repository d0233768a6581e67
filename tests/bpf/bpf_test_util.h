// Helpers for the privileged tests: run as root they must run; without root they skip
// with the reason. Never skip because a program failed to load: that is a failure.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#define HOSTPROF_REQUIRE_ROOT()                                                                    \
    do {                                                                                           \
        if (::geteuid() != 0)                                                                      \
            GTEST_SKIP() << "needs root (CAP_BPF, CAP_PERFMON); CI runs these as root";            \
    } while (0)

namespace hostprof::bpftest {

// A program run as a child (argv[0] a path), SIGKILLed and reaped on destruction.
class ChildProcess {
  public:
    explicit ChildProcess(const std::vector<std::string>& argv);
    ~ChildProcess();
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    pid_t pid = -1;
};

// A test program of tests/testprogs (built into HOSTPROF_TESTPROGS_DIR) with one argument.
struct TestProg : ChildProcess {
    TestProg(const std::string& prog, const std::string& arg)
        : ChildProcess({std::string(HOSTPROF_TESTPROGS_DIR) + "/" + prog, arg}) {}
};

// Runs a shell command and returns its stdout.
std::string run_command(const std::string& cmd);

// Ids of BPF programs (bpftool prog) and links (bpftool link) whose program name starts
// with "hp_", as bpftool reports them.
std::set<int> hostprof_prog_ids();
std::set<int> hostprof_link_ids();

// Ids of the BPF programs ("prog_id") or links ("link_id") that process `pid` holds open,
// from /proc/PID/fdinfo: exactly this process's objects, whatever else runs on the host.
std::set<int> fdinfo_ids(int pid, const std::string& key);

// Waits up to timeout_ms for none of `ids` to be listed any more (the kernel frees
// programs after an RCU grace period, not at close()).
bool wait_until_gone(const std::set<int>& ids, bool links, int timeout_ms);

// The agent binary as a child process listening on a free loopback port (with a
// 2 s profile window, plus `extra` flags), ready when its log says so (up to 20 s).
// SIGTERM and reaped on destruction.
class AgentProcess {
  public:
    explicit AgentProcess(std::vector<std::string> extra = {});
    ~AgentProcess();
    AgentProcess(const AgentProcess&) = delete;
    AgentProcess& operator=(const AgentProcess&) = delete;
    bool ready() const { return log_.find("ready in") != std::string::npos; }
    // Everything the agent logged so far (reads what arrived since the last call).
    const std::string& log() {
        read_log(0);
        return log_;
    }
    int port() const { return port_; }
    pid_t pid() const { return pid_; }
    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }

  private:
    void read_log(int timeout_ms);
    pid_t pid_ = -1;
    int err_ = -1;
    int port_ = 0;
    bool eof_ = false;
    std::string log_;
};

// A real Prometheus server (Debian's `prometheus`) scraping the agent on `agent_port` every
// second, evaluating `rule_files` every second, in a directory of its own; `flags` are
// added to its command line. Stopped and its directory removed on destruction.
class PromServer {
  public:
    PromServer(int agent_port, const std::string& name, std::vector<std::string> flags = {},
               const std::vector<std::string>& rule_files = {});
    ~PromServer();
    PromServer(const PromServer&) = delete;
    PromServer& operator=(const PromServer&) = delete;

    // GET /api/v1/<path> with the query parameters, parsed (null on any failure).
    nlohmann::json api(const std::string& path,
                       const std::vector<std::pair<std::string, std::string>>& params = {}) const;
    // An instant query, evaluated now or at `at` (Unix seconds, as the API takes it).
    nlohmann::json query(const std::string& promql, const std::string& at = "") const {
        std::vector<std::pair<std::string, std::string>> params{{"query", promql}};
        if (!at.empty())
            params.emplace_back("time", at);
        return api("query", params);
    }
    // The first result's value, if there is one.
    std::optional<double> scalar(const std::string& promql, const std::string& at = "") const;
    // True once the agent's target is up (within 30 s).
    bool wait_up() const;
    // The end of its log.
    std::string log() const;

  private:
    std::string dir_;
    int port_;
    pid_t pid_ = -1;
};

} // namespace hostprof::bpftest
