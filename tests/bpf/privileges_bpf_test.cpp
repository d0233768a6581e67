// Privileged: the agent refuses to start without the capabilities loading needs (naming
// the missing one), and after attaching keeps only CAP_SYS_PTRACE + CAP_DAC_READ_SEARCH +
// CAP_SYSLOG (+ CAP_CHECKPOINT_RESTORE) in every one of its threads while still serving
// metrics.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "agent/host/privileges.h"
#include "bpf_test_util.h"

using hostprof::bpftest::run_command;

namespace {

TEST(Privileges, ParsesStatusAndNamesCapabilities) {
    auto caps = hostprof::parse_capabilities("Name:\tx\nCapPrm:\t0000000000080004\n"
                                             "CapEff:\t0000000000080004\n");
    EXPECT_EQ(caps.effective, 0x80004u);
    EXPECT_EQ(hostprof::capability_names(caps.effective), "CAP_DAC_READ_SEARCH,CAP_SYS_PTRACE");
    EXPECT_FALSE(hostprof::check_load_capabilities(caps));
}

TEST(Privileges, MissingCapabilityIsNamed) {
    HOSTPROF_REQUIRE_ROOT();
    // setpriv (util-linux) removes the capabilities from the bounding set before exec.
    std::string out =
        run_command("setpriv --bounding-set -bpf,-sys_admin " + std::string(HOSTPROF_BINARY) +
                    " run --duration 1s 2>&1; echo rc=$?");
    EXPECT_NE(out.find("missing capability CAP_BPF"), std::string::npos) << out;
    EXPECT_NE(out.find("rc=1"), std::string::npos) << out;
    out = run_command("setpriv --bounding-set -perfmon,-sys_admin " + std::string(HOSTPROF_BINARY) +
                      " run --duration 1s 2>&1; echo rc=$?");
    EXPECT_NE(out.find("missing capability CAP_PERFMON"), std::string::npos) << out;
}

TEST(Privileges, RunningAgentKeepsOnlyRuntimeCapabilities) {
    HOSTPROF_REQUIRE_ROOT();
    int port = 40000 + ::getpid() % 10000;
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        std::string listen = "127.0.0.1:" + std::to_string(port);
        ::execl(HOSTPROF_BINARY, HOSTPROF_BINARY, "run", "--listen", listen.c_str(), "--log-level",
                "warn", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    std::string metrics;
    for (int i = 0; i < 100 && metrics.find("hostprof_") == std::string::npos; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        metrics = run_command("curl -s http://127.0.0.1:" + std::to_string(port) + "/metrics");
    }
    // Capabilities are per thread: every thread, those started before the drop (the
    // unwind-table worker) as well as after (HTTP workers).
    std::vector<std::pair<std::string, hostprof::CapabilitySets>> threads;
    for (const auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
        std::ifstream in(e.path() / "status");
        std::stringstream status;
        status << in.rdbuf();
        std::ifstream comm(e.path() / "comm");
        std::string name;
        std::getline(comm, name);
        threads.emplace_back(name + " " + e.path().filename().string(),
                             hostprof::parse_capabilities(status.str()));
    }
    ::kill(pid, SIGTERM);
    int st = 0;
    ::waitpid(pid, &st, 0);
    EXPECT_NE(metrics.find("hostprof_program_attached"), std::string::npos);
    EXPECT_GE(threads.size(), 3u); // main, unwind-table worker, HTTP
    for (const auto& [name, caps] : threads) {
        EXPECT_EQ(caps.effective, hostprof::runtime_capability_mask())
            << name << ": " << hostprof::capability_names(caps.effective);
        EXPECT_EQ(caps.permitted, hostprof::runtime_capability_mask()) << name;
    }
    // Detaching needs no capability: a clean exit.
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

} // namespace
