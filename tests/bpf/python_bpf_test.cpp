// Privileged: Python functions in the stacks of Debian's python3 (3.11, no frame pointers),
// with no change to the program. A script with a known call chain runs a pure-Python hot
// loop, a call into a C extension (zlib) and a blocking sleep, on two threads; the real
// binary records it, and the stacks must show the Python chain in order with the native
// frames around it (Py_BytesMain below, libz above), on-CPU, off-CPU and in slow-syscall
// profiles, and `go tool pprof` must name the functions with their file.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bpf_test_util.h"
#include "folded.h"

namespace {

using hostprof::bpftest::run_command;
using namespace hostprof::bpftest;
using Child = hostprof::bpftest::ChildProcess;

const char* kScript = R"(import sys, threading, time, zlib

def leaf(n):
    s = 0
    for i in range(n):
        s += i * i
    return s

def compress(data):
    return zlib.compress(data, 9)

def middle(data):
    leaf(20000)
    compress(data)

def top():
    data = bytes(range(256)) * 512
    while True:
        middle(data)

def spin():
    while True:
        leaf(5000)

def worker():
    spin()

def nap():
    time.sleep(0.02)

def sleeper():
    while True:
        nap()

if sys.argv[1] == "cpu":
    top()
elif sys.argv[1] == "threads":
    threading.Thread(target=worker, daemon=True).start()
    sleeper()
else:
    sleeper()
)";

std::string temp_path(const std::string& name) {
    return "/tmp/hostprof-python-" + std::to_string(::getpid()) + "-" + name;
}

std::string script_path() {
    static const std::string path = [] {
        const std::string p = temp_path("chain.py");
        std::ofstream(p) << kScript;
        return p;
    }();
    return path;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<Stack> record(pid_t pid, int seconds, const std::string& extra,
                          const std::string& format = "folded", std::string* file = nullptr) {
    const std::string out = temp_path(std::to_string(pid) + "." + format);
    run_command(std::string(HOSTPROF_BINARY) + " record --duration " + std::to_string(seconds) +
                "s --frequency 99 --format " + format + " " + extra + " --pid " +
                std::to_string(pid) + " -o " + out + " 2>&1");
    if (file != nullptr) {
        *file = out;
        return {};
    }
    auto stacks = parse_folded(slurp(out));
    std::remove(out.c_str());
    return stacks;
}

// Debian's python3 running the script in `mode`, given 300 ms to start.
struct PyProg : Child {
    explicit PyProg(const std::string& mode) : Child({"/usr/bin/python3", script_path(), mode}) {
        ::usleep(300 * 1000);
    }
};

// On-CPU: >= 90% of the samples show the Python chain in order inside the native stack:
// Py_BytesMain below <module>;top;middle, then leaf (pure Python) or compress with native
// frames of the C call above it (zlib.compress: libz's deflate, deflateReset, deflateEnd,
// CPython's allocation of the result, libc's free; on a VM where brk and page faults are
// dear, half of compress's samples were outside deflate itself). libz's deflate must be
// among them somewhere.
TEST(Python, OnCpuChainInOrderWithNativeFramesAround) {
    HOSTPROF_REQUIRE_ROOT();
    PyProg py("cpu");
    const auto stacks = record(py.pid, 4, "");
    const std::vector<std::string> base{"Py_BytesMain", "<module>", "top", "middle"};
    const Share chain = share(stacks, [&](const Stack& st) {
        if (!has_chain(st, base))
            return false;
        const size_t m = find_frame(st, "middle");
        // Nothing of the interpreter loop is left between Python frames.
        if (find_frame(st, "_PyEval_EvalFrameDefault") != std::string::npos)
            return false;
        if (find_frame(st, "leaf", m) == m + 1)
            return true;
        const size_t c = find_frame(st, "compress", m);
        return c == m + 1 && c + 1 < st.frames.size();
    });
    const Share in_c = share(stacks, [&](const Stack& st) {
        return has_chain(st, {"middle", "compress", "deflate"});
    });
    const Share in_leaf = share(stacks, [&](const Stack& st) {
        return has_chain(st, {"middle", "leaf"});
    });
    std::printf("python3 on-CPU: %ld/%ld samples with the chain (%.1f%%): leaf %ld, compress "
                "(in libz) %ld\n",
                chain.with, chain.total, 100 * chain.ratio(), in_leaf.with, in_c.with);
    ASSERT_GE(chain.total, 100) << dump(stacks);
    EXPECT_GE(chain.ratio(), 0.90) << dump(stacks);
    EXPECT_GT(in_leaf.with, 0) << dump(stacks);
    EXPECT_GT(in_c.with, 0) << dump(stacks);
}

// Off-CPU: the Python function that slept, under its callers, above the native sleep.
TEST(Python, OffCpuShowsTheFunctionThatSlept) {
    HOSTPROF_REQUIRE_ROOT();
    PyProg py("sleep");
    const auto stacks = record(py.pid, 3, "--off-cpu");
    const Share s = share(stacks, [](const Stack& st) {
        return has_chain(st, {"Py_BytesMain", "<module>", "sleeper", "nap"}) &&
               find_frame(st, "_PyEval_EvalFrameDefault") == std::string::npos;
    });
    ASSERT_GE(s.total, 50) << dump(stacks);
    EXPECT_GE(s.ratio(), 0.90) << dump(stacks);
}

// Threads: each thread's samples show its own functions (the walk finds the thread's own
// state, not the GIL holder's), the worker's under the thread start.
TEST(Python, ThreadsShowTheirOwnFunctions) {
    HOSTPROF_REQUIRE_ROOT();
    PyProg py("threads");
    const auto stacks = record(py.pid, 3, "");
    const Share worker = share(stacks, [](const Stack& st) {
        return has_chain(st, {"start_thread", "worker", "spin", "leaf"});
    });
    const Share mixed = share(stacks, [](const Stack& st) {
        return find_frame(st, "worker") != std::string::npos &&
               find_frame(st, "sleeper") != std::string::npos;
    });
    ASSERT_GE(worker.total, 100) << dump(stacks);
    EXPECT_GE(worker.ratio(), 0.90) << dump(stacks);
    EXPECT_EQ(mixed.with, 0) << dump(stacks);
}

// pprof: `go tool pprof -top` names the Python functions, with -lines their file:line.
TEST(Python, PprofNamesFunctionsWithTheirFiles) {
    HOSTPROF_REQUIRE_ROOT();
    PyProg py("cpu");
    std::string file;
    record(py.pid, 3, "", "pprof", &file);
    // -symbolize=none: the names in the profile, not pprof's own lookup in local binaries.
    // (pprof shortens "<module>" away as if it were C++ template arguments: not checked.)
    const std::string go = "HOME=/tmp GOCACHE=/tmp/hostprof-gocache go tool pprof -symbolize=none ";
    const std::string top = run_command(go + "-top -cum " + file + " 2>&1");
    const std::string lines = run_command(go + "-top -lines " + file + " 2>&1");
    std::remove(file.c_str());
    for (const char* f : {" middle", " top", " leaf", " compress", " Py_BytesMain"})
        EXPECT_NE(top.find(f), std::string::npos) << f << "\n" << top;
    // leaf's loop is lines 5-6 of the script.
    const std::string path = script_path();
    EXPECT_TRUE(lines.find("leaf " + path + ":5") != std::string::npos ||
                lines.find("leaf " + path + ":6") != std::string::npos)
        << lines;
}

// Slow syscalls (the daemon's syscall_latency profile): the Python function that waited.
TEST(Python, SyscallLatencyStacksNameThePythonFunction) {
    HOSTPROF_REQUIRE_ROOT();
    hostprof::bpftest::AgentProcess agent({"--syscall-outlier-threshold", "5ms"});
    ASSERT_TRUE(agent.ready()) << agent.log();
    PyProg py("sleep");
    ::usleep(1500 * 1000); // its tables and interpreter found (the first calls may precede)
    const std::string file = temp_path("sl.pb.gz");
    run_command("curl -s -o " + file + " '" +
                agent.url("/debug/pprof/syscall_latency?seconds=3&pid=" + std::to_string(py.pid)) +
                "'");
    const std::string traces = run_command(
        "HOME=/tmp GOCACHE=/tmp/hostprof-gocache go tool pprof -traces " + file + " 2>&1");
    std::remove(file.c_str());
    const TraceCount c = count_traces(traces, "nanosleep", {" nap", " sleeper"});
    ASSERT_GE(c.blocks, 1) << traces;
    EXPECT_EQ(c.with_all, c.blocks) << traces;
}

} // namespace
