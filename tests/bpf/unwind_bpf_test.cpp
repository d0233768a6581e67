// Privileged: user stacks without frame pointers. The real binary records programs built
// -O2 -fomit-frame-pointer (tests/testprogs/nofp/) and Debian's own python3 (packaged
// without frame pointers); each stack must reach the program's entry with the expected
// chain. python3 is also recorded by `perf record --call-graph dwarf` (a tool nobody
// here wrote) in the same run, and we must reach its entry at least as often.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bpf_test_util.h"
#include "exporters/otlp_profiles.pb.h"
#include "folded.h"

namespace {

using hostprof::bpftest::run_command;
using namespace hostprof::bpftest;

using Child = hostprof::bpftest::ChildProcess;

std::string temp_path(const std::string& name) {
    return "/tmp/hostprof-unwind-" + std::to_string(::getpid()) + "-" + name;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Records `pid` for `seconds` with hostprof (folded), returns the stacks.
std::vector<Stack> record_folded(pid_t pid, int seconds, const std::string& extra,
                                 std::string* log = nullptr) {
    const std::string out = temp_path(std::to_string(pid) + ".folded");
    const std::string l =
        run_command(std::string(HOSTPROF_BINARY) + " record --duration " + std::to_string(seconds) +
                    "s --frequency 99 --format folded " + extra + " --pid " + std::to_string(pid) +
                    " -o " + out + " 2>&1");
    if (log != nullptr)
        *log = l;
    auto stacks = parse_folded(slurp(out));
    std::remove(out.c_str());
    return stacks;
}

const std::string kTarget = std::string(HOSTPROF_TESTPROGS_DIR) + "/unwind_target";

struct Case {
    const char* mode;
    std::vector<std::string> chain; // root first, in order
};

class UnwindChains : public ::testing::TestWithParam<Case> {};

// >= 95% of the samples reach main (or the thread's start) through the expected chain.
TEST_P(UnwindChains, ReachEntryWithoutFramePointers) {
    HOSTPROF_REQUIRE_ROOT();
    const Case& c = GetParam();
    Child target({kTarget, c.mode});
    ::usleep(200 * 1000);
    std::string log;
    const auto stacks = record_folded(target.pid, 3, "", &log);
    const Share s = share(stacks, [&](const Stack& st) { return has_chain(st, c.chain); });
    EXPECT_GE(s.total, 100) << log;
    EXPECT_GE(s.ratio(), 0.95) << c.mode << ": " << s.with << " of " << s.total
                               << " samples have the chain\n"
                               << dump(stacks) << log;
}

// `hostprof record --format otlp` of the same program without frame pointers: an OTLP
// request whose process resource names the executable (path, build id) and whose stacks,
// read through the dictionary, are symbolized and reach main as the folded ones do.
TEST(UnwindOtlp, RecordedRequestCarriesCompleteSymbolizedStacks) {
    HOSTPROF_REQUIRE_ROOT();
    Child target({kTarget, "chain"});
    ::usleep(200 * 1000);
    const std::string out = temp_path("otlp.bin");
    const std::string log = run_command(
        std::string(HOSTPROF_BINARY) + " record --duration 3s --frequency 99 --format otlp --pid " +
        std::to_string(target.pid) + " -o " + out + " 2>&1");
    hostprof::otlp::ExportProfilesServiceRequest req;
    ASSERT_TRUE(req.ParseFromString(slurp(out))) << log;
    std::remove(out.c_str());
    const auto& d = req.dictionary();
    auto str = [&](int32_t i) { return d.string_table(i); };
    ASSERT_EQ(req.resource_profiles_size(), 1) << log;
    std::map<std::string, std::string> attrs;
    for (const auto& kv : req.resource_profiles(0).resource().attributes())
        attrs[kv.key()] = kv.value().has_int_value() ? std::to_string(kv.value().int_value())
                                                     : kv.value().string_value();
    EXPECT_EQ(attrs["process.pid"], std::to_string(target.pid));
    EXPECT_EQ(attrs["process.executable.path"], kTarget);
    EXPECT_EQ(attrs["process.executable.build_id.gnu"].size(), 40u)
        << attrs["process.executable.build_id.gnu"];
    EXPECT_FALSE(attrs["host.name"].empty());
    const auto& profiles = req.resource_profiles(0).scope_profiles(0).profiles();
    ASSERT_EQ(profiles.size(), 1);
    EXPECT_EQ(str(profiles[0].period_type().type_strindex()), "cpu");
    int64_t total = 0, complete = 0;
    for (const auto& sample : profiles[0].samples()) {
        // Root first; a location's inlined functions outermost first.
        std::vector<std::string> chain;
        const auto& locs = d.stack_table(sample.stack_index()).location_indices();
        for (auto it = locs.rbegin(); it != locs.rend(); ++it)
            for (int l = d.location_table(*it).lines_size() - 1; l >= 0; --l)
                chain.push_back(
                    str(d.function_table(d.location_table(*it).lines(l).function_index())
                            .name_strindex()));
        total += sample.values(0);
        // _start, main, chain_a, chain_b in this order (libc's frames may come between).
        size_t at = 0;
        for (const char* want : {"_start", "main", "chain_a", "chain_b"}) {
            while (at < chain.size() && chain[at] != want)
                ++at;
            if (at < chain.size())
                ++at;
            else
                at = chain.size() + 1;
        }
        if (at <= chain.size())
            complete += sample.values(0);
    }
    ASSERT_GT(total, 100) << log;
    EXPECT_GE(complete * 100, total * 95)
        << complete << " of " << total << " samples reach main;chain_a;chain_b";
}

INSTANTIATE_TEST_SUITE_P(
    Modes, UnwindChains,
    ::testing::Values(Case{"chain", {"_start", "main", "chain_a", "chain_b"}},
                      // qsort's callback: libc's frames between sort_loop and by_weight.
                      Case{"qsort", {"_start", "main", "sort_loop"}},
                      // memset through the PLT; samples in libc's assembly.
                      Case{"plt", {"_start", "main", "plt_loop"}},
                      Case{"signal", {"_start", "main", "signal_loop"}},
                      // clock_gettime in the vDSO (its table is built from a copy).
                      Case{"vdso", {"_start", "main", "vdso_loop"}},
                      Case{"threads", {"clone3", "start_thread", "thread_main", "thread_work"}}),
    [](const auto& info) { return std::string(info.param.mode); });

TEST(Unwind, QsortCallbackReachesMain) {
    HOSTPROF_REQUIRE_ROOT();
    Child target({kTarget, "qsort"});
    ::usleep(200 * 1000);
    const auto stacks = record_folded(target.pid, 3, "");
    // Samples in the comparison callback: through libc's qsort back to main.
    const Share s = share(stacks, [](const Stack& st) { return has_frame(st, "by_weight"); });
    const Share full = share(stacks, [](const Stack& st) {
        return has_frame(st, "by_weight") && has_chain(st, {"_start", "main", "sort_loop"});
    });
    ASSERT_GE(s.with, 50) << dump(stacks);
    EXPECT_GE(static_cast<double>(full.with) / s.with, 0.95) << dump(stacks);
}

TEST(Unwind, SignalHandlerFramesReachMain) {
    HOSTPROF_REQUIRE_ROOT();
    Child target({kTarget, "signal"});
    ::usleep(200 * 1000);
    const auto stacks = record_folded(target.pid, 3, "");
    // Samples inside the handler cross the signal frame (__restore_rt) to the
    // interrupted code, then up to main.
    const Share in = share(stacks, [](const Stack& st) { return has_frame(st, "on_signal"); });
    const Share full = share(stacks, [](const Stack& st) {
        return has_frame(st, "on_signal") && has_chain(st, {"_start", "main", "signal_loop"});
    });
    ASSERT_GE(in.with, 10) << dump(stacks);
    EXPECT_GE(static_cast<double>(full.with) / in.with, 0.95) << dump(stacks);
}

TEST(Unwind, DeepRecursionIsComplete) {
    HOSTPROF_REQUIRE_ROOT();
    Child target({kTarget, "deep"});
    ::usleep(200 * 1000);
    const auto stacks = record_folded(target.pid, 3, "");
    // 110 recursive frames below main: the whole chain fits in 127 frames.
    const Share s = share(stacks, [](const Stack& st) {
        int n = 0;
        for (const auto& f : st.frames)
            n += f == "recurse" ? 1 : 0;
        return n == 111 && has_chain(st, {"_start", "main", "recurse"});
    });
    EXPECT_GE(s.total, 100);
    EXPECT_GE(s.ratio(), 0.95) << s.with << " of " << s.total << "\n" << dump(stacks);
}

TEST(Unwind, OffCpuStacksReachMain) {
    HOSTPROF_REQUIRE_ROOT();
    Child target({kTarget, "sleep"});
    ::usleep(200 * 1000);
    const auto stacks = record_folded(target.pid, 3, "--off-cpu");
    const Share s = share(stacks, [](const Stack& st) {
        return has_chain(st, {"_start", "main", "sleep_loop"});
    });
    EXPECT_GE(s.total, 100);
    EXPECT_GE(s.ratio(), 0.95) << dump(stacks);
}

#ifdef HOSTPROF_GO_TESTPROGS_DIR
const std::string kGoProgs = HOSTPROF_GO_TESTPROGS_DIR;
#else
const std::string kGoProgs;
#endif

// The Go test programs are built when the build found a Go toolchain (golang-go, a test
// dependency): without one these skip, as the Go unit tests do.
#define REQUIRE_GO_PROGS()                                                                         \
    do {                                                                                           \
        if (kGoProgs.empty())                                                                      \
            GTEST_SKIP() << "built without a Go toolchain (golang-go)";                            \
    } while (0)

bool rooted_at(const Stack& s, const std::string& root) {
    return !s.frames.empty() && s.frames[0] == root;
}

// Go without frame pointers where it matters: crypto/sha256.block is assembly that uses BP
// as a general register. With the .gopclntab rows every goroutine's stack reaches
// runtime.goexit, and sha256's samples reach main.hashLoop.
TEST(Unwind, GoStacksReachGoexit) {
    HOSTPROF_REQUIRE_ROOT();
    REQUIRE_GO_PROGS();
    Child target({kGoProgs + "/go_hot", "30"});
    ::usleep(300 * 1000);
    std::string log;
    const auto stacks = record_folded(target.pid, 3, "", &log);
    const Share s = share(stacks, [](const Stack& st) {
        return rooted_at(st, "runtime.goexit.abi0") && has_frame(st, "main.main");
    });
    const Share sha =
        share(stacks, [](const Stack& st) { return has_frame(st, "crypto/sha256.block.abi0"); });
    const Share sha_full = share(stacks, [](const Stack& st) {
        return has_frame(st, "crypto/sha256.block.abi0") &&
               has_chain(st, {"runtime.goexit.abi0", "main.main", "main.hashLoop",
                              "crypto/sha256.block.abi0"});
    });
    std::printf("go_hot: %ld/%ld samples from runtime.goexit through main.main (%.1f%%); "
                "%ld/%ld in sha256.block reach main.hashLoop\n",
                s.with, s.total, 100 * s.ratio(), sha_full.with, sha.with);
    EXPECT_GE(s.total, 100) << log;
    EXPECT_GE(s.ratio(), 0.95) << dump(stacks) << log;
    ASSERT_GE(sha.with, 50) << dump(stacks);
    EXPECT_GE(static_cast<double>(sha_full.with) / sha.with, 0.95) << dump(stacks);
}

// cgo: the C function runs on the thread's g0 stack, called by runtime.asmcgocall from the
// goroutine's stack. The walk crosses the switch (HP_UNW_GO_CGO) back to main.main.
TEST(Unwind, GoCgoStacksCrossIntoTheGoroutine) {
    HOSTPROF_REQUIRE_ROOT();
    REQUIRE_GO_PROGS();
    Child target({kGoProgs + "/go_cgo", "30"});
    ::usleep(300 * 1000);
    std::string log;
    const auto stacks = record_folded(target.pid, 3, "", &log);
    const Share in_c = share(stacks, [](const Stack& st) { return has_frame(st, "c_work"); });
    const Share full = share(stacks, [](const Stack& st) {
        return has_frame(st, "c_work") &&
               has_chain(st, {"runtime.goexit.abi0", "runtime.main", "main.main", "runtime.cgocall",
                              "runtime.asmcgocall.abi0", "c_work"});
    });
    std::printf("go_cgo: %ld/%ld samples in c_work reach runtime.goexit through main.main and "
                "runtime.cgocall (%.1f%%), of %ld samples\n",
                full.with, in_c.with, in_c.with ? 100.0 * full.with / in_c.with : 0.0, in_c.total);
    ASSERT_GE(in_c.with, 100) << dump(stacks) << log;
    EXPECT_GE(static_cast<double>(full.with) / in_c.with, 0.95) << dump(stacks) << log;
}

// perf's samples whose call chain holds `entry` (perf script: a header line, then one
// frame per line, a blank line between samples).
Share perf_share(const std::string& script, const std::string& entry) {
    Share s;
    std::istringstream in(script);
    std::string line;
    bool in_sample = false, found = false;
    auto end_sample = [&] {
        if (in_sample) {
            ++s.total;
            s.with += found ? 1 : 0;
        }
        in_sample = found = false;
    };
    while (std::getline(in, line)) {
        if (line.empty()) {
            end_sample();
            continue;
        }
        if (line[0] != ' ' && line[0] != '\t') {
            end_sample();
            in_sample = true;
            continue;
        }
        if (line.find(" " + entry + "+") != std::string::npos ||
            line.find(" " + entry + " ") != std::string::npos)
            found = true;
    }
    end_sample();
    return s;
}

// Debian's python3 (no frame pointers) running pure Python: hostprof and perf's DWARF
// unwinding side by side on the same process at the same time.
TEST(Unwind, DebianPython3ReachesEntryAsOftenAsPerfDwarf) {
    HOSTPROF_REQUIRE_ROOT();
    Child py({"/usr/bin/python3", "-c",
              "def f(n):\n    s = 0\n    for i in range(n): s += i * i\n    return s\n"
              "while True: f(100000)\n"});
    ::usleep(300 * 1000);
    const std::string data = temp_path("perf.data");
    const std::string perf_cmd = "perf record -q -F 99 --call-graph dwarf,16384 -p " +
                                 std::to_string(py.pid) + " -o " + data +
                                 " -- sleep 4 >/dev/null 2>&1";
    // perf in the background for the same 4 s as hostprof.
    pid_t perf = ::fork();
    if (perf == 0) {
        ::execl("/bin/sh", "sh", "-c", perf_cmd.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    const auto stacks = record_folded(py.pid, 4, "");
    ::waitpid(perf, nullptr, 0);
    const std::string script = run_command("perf script -i " + data + " 2>/dev/null");
    std::remove(data.c_str());
    const Share ours = share(stacks, [](const Stack& st) { return has_frame(st, "Py_BytesMain"); });
    const Share theirs = perf_share(script, "Py_BytesMain");
    std::printf("python3: hostprof %ld/%ld reach Py_BytesMain (%.1f%%), perf --call-graph dwarf "
                "%ld/%ld (%.1f%%)\n",
                ours.with, ours.total, 100 * ours.ratio(), theirs.with, theirs.total,
                100 * theirs.ratio());
    ASSERT_GE(ours.total, 100) << dump(stacks);
    ASSERT_GE(theirs.total, 50) << script.substr(0, 2000);
    EXPECT_GE(ours.ratio(), 0.95) << dump(stacks);
    EXPECT_GE(ours.ratio(), theirs.ratio() - 0.01) << dump(stacks);
}

} // namespace

namespace {

// The daemon: slow syscalls' stacks (syscall_latency profile) are complete too.
TEST(Unwind, SyscallLatencyStacksReachMain) {
    HOSTPROF_REQUIRE_ROOT();
    hostprof::bpftest::AgentProcess agent({"--syscall-outlier-threshold", "2ms"});
    ASSERT_TRUE(agent.ready()) << agent.log();
    Child target({kTarget, "sleep"});
    // The agent has just started: every process it samples queues its tables, and this
    // one's first slow calls (before its tables are ready) take frame pointers. Measured
    // once they are built (/metrics' hostprof_unwind_stacks_total shows the start-up).
    ::usleep(1500 * 1000);
    const std::string file = temp_path("sl.pb.gz");
    run_command(
        "curl -s -o " + file + " '" +
        agent.url("/debug/pprof/syscall_latency?seconds=3&pid=" + std::to_string(target.pid)) +
        "'");
    // `go tool pprof -traces`: one block per stack, leaf first, separated by dashes.
    const std::string traces =
        run_command("HOME=/tmp GOCACHE=/tmp/hostprof-gocache go tool pprof -symbolize=none "
                    "-traces " +
                    file + " 2>&1");
    std::remove(file.c_str());
    const TraceCount c = count_traces(traces, "nanosleep", {" main", "sleep_loop"});
    ASSERT_GE(c.blocks, 1) << traces;
    EXPECT_EQ(c.with_all, c.blocks) << traces;
}

} // namespace
