// A process in another mount namespace symbolizes: its binary lives only in a private
// tmpfs of that namespace, so only /proc/PID/root/... reaches it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "bpf_test_util.h"
#include "symbolizer/symbolizer.h"

namespace hostprof::sym {
namespace {

TEST(SymbolizerNamespaces, ProcessInAnotherMountNamespaceSymbolizes) {
    HOSTPROF_REQUIRE_ROOT();
    const std::string prog = std::string(HOSTPROF_TESTPROGS_DIR) + "/sym_target";
    ASSERT_TRUE(std::filesystem::exists(prog));
    const std::string dir = "/tmp/hostprof-ns-" + std::to_string(::getpid());
    const std::string out = dir + ".out";
    std::filesystem::create_directories(dir);
    // In a new mount namespace: a tmpfs over `dir`, the program copied into it, run from it
    // with stdin held open by a sleep so it stays alive until we kill the group.
    const std::string script = "mount -t tmpfs none " + dir + " && cp " + prog + " " + dir +
                               "/nsprog && exec " + dir + "/nsprog > " + out + " < <(sleep 30)";
    pid_t child = ::fork();
    if (child == 0) {
        ::setpgid(0, 0);
        ::execlp("unshare", "unshare", "-m", "--propagation", "private", "bash", "-c",
                 script.c_str(), nullptr);
        ::_exit(127);
    }
    ASSERT_GT(child, 0);
    std::map<std::string, uint64_t> functions;
    for (int i = 0; i < 100 && functions.size() < 3; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        std::ifstream in(out);
        std::string name, addr;
        functions.clear();
        while (in >> name >> addr)
            functions[name] = std::stoull(addr, nullptr, 16);
    }
    ASSERT_EQ(functions.size(), 3u) << "target did not start";
    // Not visible from our mount namespace: the directory is empty here.
    EXPECT_FALSE(std::filesystem::exists(dir + "/nsprog"));

    Symbolizer s(SymbolizerOptions{});
    const uint32_t pid = static_cast<uint32_t>(child); // exec'd in place by unshare and bash
    s.process_seen(pid);
    for (const auto& [name, addr] : functions) {
        FrameResult r = s.user(pid, addr);
        ASSERT_FALSE(r.frames.empty()) << name << ": " << miss_reason_name(r.miss);
        EXPECT_EQ(r.frames.back().function, name);
        EXPECT_EQ(r.module, dir + "/nsprog");
    }
    ::kill(-child, SIGKILL);
    int st;
    ::waitpid(child, &st, 0);
    std::filesystem::remove_all(dir);
    std::filesystem::remove(out);
}

} // namespace
} // namespace hostprof::sym
