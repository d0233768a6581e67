// debuginfod against the real elfutils server (Debian's `debuginfod` package) on loopback,
// serving the separate debug file of a stripped sym_target: the stripped binary gains
// symbols and file:line once the lookup completes; the on-disk cache answers with the
// server gone; an unknown build-id and a server that never answers are counted failures,
// the latter bounded by the configured timeout.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "common/unique_fd.h"
#include "symbolizer/symbolizer.h"
#include "run_command.h"

namespace hostprof::sym {
namespace {

namespace fs = std::filesystem;

using test::run_command;

// A loopback TCP socket bound to a free port; listening when `listen_now`.
UniqueFd loopback_socket(int& port, bool listen_now) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
        return {};
    if (listen_now && ::listen(fd.get(), 16) != 0)
        return {};
    port = ntohs(a.sin_port);
    return fd;
}

class SymbolizerDebuginfod : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("hostprof-dbgd-" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "served");
        const std::string prog = fs::read_symlink("/proc/self/exe").parent_path() / "sym_target";
        ASSERT_TRUE(fs::exists(prog)) << prog;
        std::istringstream nm(run_command("nm --defined-only " + prog));
        std::string addr, type, name;
        while (nm >> addr >> type >> name)
            if (name == "sym_target_alpha")
                alpha_ = std::stoull(addr, nullptr, 16);
        ASSERT_NE(alpha_, 0u);
        const std::string d = dir_.string();
        ASSERT_EQ(run_command("set -e; objcopy --only-keep-debug " + prog + " " + d +
                              "/served/sym_target.debug; strip --strip-all -o " + d + "/stripped " +
                              prog + "; echo ok"),
                  "ok\n");
        ASSERT_EQ(run_command("command -v debuginfod >/dev/null && echo ok"), "ok\n")
            << "the debuginfod server is needed (scripts/install-deps.sh --test)";
        UniqueFd probe = loopback_socket(port_, false);
        ASSERT_TRUE(probe);
        probe.reset(); // debuginfod binds it next (a race with other binds, rare)
        server_ = ::fork();
        if (server_ == 0) {
            const std::string port = std::to_string(port_), db = d + "/db.sqlite";
            int devnull = ::open("/dev/null", O_WRONLY);
            ::dup2(devnull, 1);
            ::dup2(devnull, 2);
            ::execlp("debuginfod", "debuginfod", "-F", "-p", port.c_str(), "-d", db.c_str(), "-t",
                     "0", "-g", "0", "-c", "1", (d + "/served").c_str(), nullptr);
            ::_exit(127);
        }
        ASSERT_GT(server_, 0);
        build_id_ = run_command("readelf -n " + d + "/stripped | awk '/Build ID/ {print $3}'");
        build_id_.erase(build_id_.find_last_not_of('\n') + 1);
        ASSERT_EQ(build_id_.size(), 40u);
        // Ready when the scan has indexed the debug file (the first scan runs at start).
        const std::string url = "http://127.0.0.1:" + std::to_string(port_);
        std::string code;
        for (int i = 0; i < 600 && code != "200"; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            code = run_command("curl -s -o /dev/null -w '%{http_code}' " + url + "/buildid/" +
                               build_id_ + "/debuginfo");
        }
        ASSERT_EQ(code, "200") << "debuginfod did not serve the debug file";
        url_ = url;
    }
    void TearDown() override {
        stop_server();
        fs::remove_all(dir_);
    }
    void stop_server() {
        if (server_ > 0) {
            ::kill(server_, SIGKILL);
            ::waitpid(server_, nullptr, 0);
            server_ = -1;
        }
    }
    SymbolizerOptions options(const std::string& url, const std::string& cache) const {
        SymbolizerOptions o;
        o.debug_dirs = {};
        o.debuginfod.urls = {url};
        o.debuginfod.cache_dir = (dir_ / cache).string();
        o.debuginfod.timeout_ms = 20'000;
        return o;
    }

    fs::path dir_;
    uint64_t alpha_ = 0;
    int port_ = 0;
    pid_t server_ = -1;
    std::string build_id_, url_;
};

TEST_F(SymbolizerDebuginfod, StrippedBinaryGainsSymbolsAndLinesFromTheServerThenTheCache) {
    const std::string stripped = (dir_ / "stripped").string();
    {
        Symbolizer s(options(url_, "cache"));
        ASSERT_TRUE(s.debuginfod_error().empty()) << s.debuginfod_error();
        FrameResult r = s.elf(stripped, alpha_ + 2);
        EXPECT_TRUE(r.frames.empty()) << "symbols before any download?";
        EXPECT_EQ(r.miss, MissReason::Stripped);
        ASSERT_TRUE(s.wait_debuginfod_idle(120'000));
        r = s.elf(stripped, alpha_ + 2);
        ASSERT_FALSE(r.frames.empty()) << miss_reason_name(r.miss);
        EXPECT_EQ(r.frames.back().function, "sym_target_alpha");
        EXPECT_NE(r.frames.back().file.find("sym_target.c"), std::string::npos);
        EXPECT_GT(r.frames.back().line, 0);
        SymbolizerStats st = s.stats();
        EXPECT_TRUE(st.debuginfod_enabled);
        EXPECT_EQ(st.debuginfod_lookups, 1u);
        EXPECT_EQ(st.debuginfod_hits, 1u);
        EXPECT_EQ(st.debuginfod_failures, 0u);
        EXPECT_TRUE(fs::exists(dir_ / "cache" / build_id_ / "debuginfo"));
    }
    // The server gone, the on-disk cache answers.
    stop_server();
    {
        Symbolizer s(options(url_, "cache"));
        (void)s.elf(stripped, alpha_ + 2);
        ASSERT_TRUE(s.wait_debuginfod_idle(120'000));
        FrameResult r = s.elf(stripped, alpha_ + 2);
        ASSERT_FALSE(r.frames.empty()) << miss_reason_name(r.miss);
        EXPECT_EQ(r.frames.back().function, "sym_target_alpha");
        EXPECT_EQ(s.stats().debuginfod_hits, 1u);
    }
}

TEST_F(SymbolizerDebuginfod, UnknownBuildIdAndSilentServerAreBoundedCountedFailures) {
    // A build-id the server does not have.
    const std::string other = std::string(HOSTPROF_TEST_DATA) + "/symbolizer/base.elf";
    {
        Symbolizer s(options(url_, "cache-unknown"));
        (void)s.elf(other, 0x1129);
        ASSERT_TRUE(s.wait_debuginfod_idle(120'000));
        SymbolizerStats st = s.stats();
        EXPECT_EQ(st.debuginfod_lookups, 1u);
        EXPECT_EQ(st.debuginfod_failures, 1u);
        EXPECT_EQ(st.debuginfod_hits, 0u);
        // Its own .symtab still symbolizes it.
        EXPECT_EQ(s.elf(other, 0x1129).frames.at(0).function, "base_function");
    }
    // A server that accepts connections and never answers: the timeout (1 s) ends the
    // lookup. The watchdog is generous: this asserts completion, not speed.
    int port = 0;
    UniqueFd silent = loopback_socket(port, true);
    ASSERT_TRUE(silent);
    SymbolizerOptions o = options("http://127.0.0.1:" + std::to_string(port), "cache-silent");
    o.debuginfod.timeout_ms = 1000;
    Symbolizer s(o);
    FrameResult r = s.elf((dir_ / "stripped").string(), alpha_ + 2);
    EXPECT_TRUE(r.frames.empty());
    ASSERT_TRUE(s.wait_debuginfod_idle(120'000)) << "lookup not bounded by its timeout";
    EXPECT_EQ(s.stats().debuginfod_failures, 1u);
    EXPECT_TRUE(s.elf((dir_ / "stripped").string(), alpha_ + 2).frames.empty());
}

TEST(SymbolizerDebuginfodConfig, BadUrlDisablesItWithAReason) {
    SymbolizerOptions o;
    o.debuginfod.urls = {"ftp://example.invalid"};
    Symbolizer s(o);
    EXPECT_NE(s.debuginfod_error().find("not an http(s) URL"), std::string::npos);
    EXPECT_FALSE(s.stats().debuginfod_enabled);
}

} // namespace
} // namespace hostprof::sym
