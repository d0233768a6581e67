// Privileged: SIGKILL at any point of start-up leaves nothing a restart cannot clean, and
// the restart is fast. The agent uses BPF links and perf-event fds only (no legacy
// kprobe/uprobe events in tracefs, no pins), so the kernel frees everything when the
// process's descriptors close; this test proves it on the real binary.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bpf_test_util.h"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// The agent binary as a child, its stderr collected.
class Child {
  public:
    explicit Child(int port, std::vector<std::string> extra = {}) {
        int err_pipe[2];
        if (::pipe2(err_pipe, O_CLOEXEC) != 0)
            return;
        started_ = Clock::now();
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(err_pipe[1], STDERR_FILENO);
            std::vector<std::string> args = {HOSTPROF_BINARY, "run",
                                             "--frequency",   "49",
                                             "--listen",      "127.0.0.1:" + std::to_string(port),
                                             "--collectors",  "cpu,offcpu"};
            args.insert(args.end(), extra.begin(), extra.end());
            std::vector<char*> argv;
            for (auto& a : args)
                argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        ::close(err_pipe[1]);
        err_ = err_pipe[0];
        ::fcntl(err_, F_SETFL, O_NONBLOCK);
    }
    ~Child() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (err_ >= 0)
            ::close(err_);
    }
    pid_t pid() const { return pid_; }
    // Reads stderr until `text` appears or the timeout passes.
    bool wait_for(const std::string& text, std::chrono::milliseconds timeout) {
        auto deadline = Clock::now() + timeout;
        while (log_.find(text) == std::string::npos && Clock::now() < deadline) {
            pollfd pfd{err_, POLLIN, 0};
            if (::poll(&pfd, 1, 50) > 0)
                drain();
        }
        return log_.find(text) != std::string::npos;
    }
    void drain() {
        char buf[4096];
        ssize_t n;
        while ((n = ::read(err_, buf, sizeof(buf))) > 0)
            log_.append(buf, static_cast<size_t>(n));
    }
    Clock::duration since_start() const { return Clock::now() - started_; }
    const std::string& log() const { return log_; }
    // Waits for the child and returns its wait status.
    int reap() {
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        drain();
        return status;
    }

  private:
    pid_t pid_ = -1;
    int err_ = -1;
    Clock::time_point started_;
    std::string log_;
};

std::string read_all(const std::string& path) {
    std::ifstream in(path);
    std::stringstream b;
    b << in.rdbuf();
    return b.str();
}

// Legacy probe events and pins: the agent must never create any.
void expect_no_legacy_leftovers() {
    for (const char* tracefs : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
        for (const char* f : {"kprobe_events", "uprobe_events"}) {
            std::string path = std::string(tracefs) + "/" + f;
            if (!std::filesystem::exists(path))
                continue;
            std::string events = read_all(path);
            EXPECT_EQ(events.find("hostprof"), std::string::npos) << path << ":\n" << events;
            EXPECT_EQ(events.find("hp_"), std::string::npos) << path << ":\n" << events;
        }
    }
    std::error_code ec;
    for (const auto& e : std::filesystem::recursive_directory_iterator("/sys/fs/bpf", ec)) {
        std::string name = e.path().filename().string();
        EXPECT_TRUE(name.rfind("hp_", 0) != 0 && name.find("hostprof") == std::string::npos)
            << "pinned: " << e.path();
    }
}

TEST(Restart, SigkillDuringStartupLeavesNothingAndRestartIsFast) {
    HOSTPROF_REQUIRE_ROOT();
    const int port = 20000 + (::getpid() % 20000) + 7;
    std::set<int> all_progs, all_links;
    // Kill points after exec; -1: after "ready".
    for (int kill_after_ms : {50, 150, 300, 600, -1}) {
        SCOPED_TRACE("SIGKILL at " + (kill_after_ms < 0 ? std::string("ready")
                                                        : std::to_string(kill_after_ms) + " ms"));
        Child c(port);
        ASSERT_GT(c.pid(), 0);
        if (kill_after_ms < 0)
            ASSERT_TRUE(c.wait_for("ready in", 30s)) << c.log();
        else
            c.wait_for("\x01never\x01", std::chrono::milliseconds(kill_after_ms));
        // Freeze it, so the objects it holds are exactly the ones listed, then kill it.
        ASSERT_EQ(::kill(c.pid(), SIGSTOP), 0);
        std::set<int> progs = hostprof::bpftest::fdinfo_ids(c.pid(), "prog_id");
        std::set<int> links = hostprof::bpftest::fdinfo_ids(c.pid(), "link_id");
        ASSERT_EQ(::kill(c.pid(), SIGKILL), 0);
        int status = c.reap();
        EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << c.log();
        std::printf("SIGKILL at %s: held %zu programs, %zu links\n",
                    kill_after_ms < 0 ? "ready" : (std::to_string(kill_after_ms) + " ms").c_str(),
                    progs.size(), links.size());
        if (kill_after_ms < 0) {
            EXPECT_GE(progs.size(), 4u) << "cpu, exec, exit, sched_switch programs";
            EXPECT_GE(links.size(), 3u);
        }
        EXPECT_TRUE(hostprof::bpftest::wait_until_gone(progs, false, 5000))
            << "programs of a SIGKILLed agent left behind";
        EXPECT_TRUE(hostprof::bpftest::wait_until_gone(links, true, 5000))
            << "links of a SIGKILLed agent left behind";
        all_progs.insert(progs.begin(), progs.end());
        all_links.insert(links.begin(), links.end());
        expect_no_legacy_leftovers();
    }
    EXPECT_GE(all_progs.size(), 4u) << "at least one kill point found loaded programs";

    // The restart after all that: ready, serving, and a clean SIGTERM. With a non-default
    // ring buffer size, which the kernel's map must then have.
    Child c(port, {"--ring-buffer-size", "4MiB"});
    ASSERT_TRUE(c.wait_for("ready in", 30s)) << c.log();
    auto to_ready = std::chrono::duration_cast<std::chrono::milliseconds>(c.since_start());
    std::string curl = hostprof::bpftest::run_command(
        "curl -s --max-time 10 http://127.0.0.1:" + std::to_string(port) + "/readyz");
    EXPECT_NE(curl.find("\"ready\""), std::string::npos) << curl;
    std::set<int> progs = hostprof::bpftest::fdinfo_ids(c.pid(), "prog_id");
    std::set<int> links = hostprof::bpftest::fdinfo_ids(c.pid(), "link_id");
    for (int id : progs)
        EXPECT_FALSE(all_progs.contains(id)) << "program id " << id << " survived a SIGKILL";
    std::string rings =
        hostprof::bpftest::run_command("grep -A3 -h '^map_type:[[:space:]]*27$' /proc/" +
                                       std::to_string(c.pid()) + "/fdinfo/* 2>/dev/null");
    EXPECT_NE(rings.find("max_entries:\t4194304"), std::string::npos)
        << "the profile ring buffer should be 4 MiB:\n"
        << rings;
    ASSERT_EQ(::kill(c.pid(), SIGTERM), 0);
    int status = c.reap();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << c.log();
    EXPECT_TRUE(hostprof::bpftest::wait_until_gone(progs, false, 5000));
    EXPECT_TRUE(hostprof::bpftest::wait_until_gone(links, true, 5000));
    expect_no_legacy_leftovers();
    std::string line = c.log().substr(c.log().find("ready in"));
    std::printf("restart to ready: %lld ms from exec (agent's own: %s)\n",
                static_cast<long long>(to_ready.count()), line.substr(0, line.find('\n')).c_str());
    ::testing::Test::RecordProperty("restart_to_ready_ms", static_cast<int>(to_ready.count()));
}

} // namespace
