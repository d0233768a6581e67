// Privileged: the CPU profiler end to end. The real binary records real test programs,
// and the real `go tool pprof` (a tool nobody here wrote) reads the files.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "bpf_test_util.h"

namespace {

using hostprof::bpftest::run_command;

using Child = hostprof::bpftest::TestProg;

std::string temp_path(const std::string& name) {
    return "/tmp/hostprof-test-" + std::to_string(::getpid()) + "-" + name;
}

std::string record(const std::string& args, const std::string& out) {
    std::string cmd = std::string(HOSTPROF_BINARY) + " record " + args + " -o " + out + " 2>&1";
    return run_command(cmd);
}

std::string pprof(const std::string& args, const std::string& file) {
    return run_command("HOME=/tmp GOCACHE=/tmp/hostprof-gocache PPROF_BINARY_PATH=/nonexistent "
                       "go tool pprof -symbolize=none " +
                       args + " " + file + " 2>&1");
}

// Parses `go tool pprof -top` lines "flat flat% sum% cum cum% name" into name -> cum.
std::map<std::string, double> cum_by_function(const std::string& top) {
    std::map<std::string, double> out;
    std::istringstream in(top);
    std::string line;
    static const std::regex row(
        R"(^\s*([0-9.]+)\w*\s+[0-9.]+%\s+[0-9.]+%\s+([0-9.]+)\w*\s+[0-9.]+%\s+(\S+))");
    while (std::getline(in, line)) {
        std::smatch m;
        if (std::regex_search(line, m, row))
            out[m[3]] = std::stod(m[2]);
    }
    return out;
}

// Both sampling clocks: the scheduler tick (the default where the frequency is at most
// HZ) and the cpu-clock perf event. Each is forced, so neither can hide behind the other.
class CpuProfile : public ::testing::TestWithParam<std::string> {
  protected:
    // "tick", "cpu-clock", or "tick/MODE": the tick sampler's MODE variant (raw_tp, or a
    // classic tracepoint through tracefs) forced by --attach-mode.
    std::string clock_flag() const {
        const std::string& p = GetParam();
        const size_t slash = p.find('/');
        if (slash == std::string::npos)
            return "--sampling-clock " + p + " ";
        return "--sampling-clock " + p.substr(0, slash) + " --attach-mode " + p.substr(slash + 1) +
               " ";
    }
};

TEST_P(CpuProfile, ThreeToOneRatioWithCallChainReadByGoPprof) {
    HOSTPROF_REQUIRE_ROOT();
    // ~10 s at 249 Hz: ~2,500 samples. The 3:1 split of a sampled workload is itself
    // binomial (sd of the ratio ~0.2 at 1,200 samples, where ±15% was ~2.2 sd and failed a
    // fresh-clone run at 2.53); at 2,500 the same bound is ~3.2 sd.
    Child prog("cpu_ratio", "16");
    ASSERT_GT(prog.pid, 0);
    std::string file = temp_path("ratio.pb.gz");
    std::string log = record(
        clock_flag() + "--duration 10s --frequency 249 --pid " + std::to_string(prog.pid), file);
    ASSERT_NE(log.find("wrote"), std::string::npos) << log;

    std::string top = pprof("-top -cum -nodecount=100 -sample_index=samples", file);
    auto cum = cum_by_function(top);
    ASSERT_TRUE(cum.contains("hot_three_quarters")) << top;
    ASSERT_TRUE(cum.contains("hot_one_quarter")) << top;
    double ratio = cum["hot_three_quarters"] / cum["hot_one_quarter"];
    EXPECT_GT(ratio, 3.0 * 0.85) << top;
    EXPECT_LT(ratio, 3.0 * 1.15) << top;
    // ~10 s at 249 Hz on one CPU is ~2500 samples when the workload has a CPU to itself;
    // on a loaded 2-CPU machine it gets less. Enough samples for the ratio to mean
    // something (±15% of 3:1), whatever else runs.
    EXPECT_GT(cum["run_workload"], 300) << top;

    // The call chain from main is intact: a trace with spin <- hot_three_quarters <-
    // run_workload <- main, leaf first.
    std::string traces = pprof("-traces", file);
    static const std::regex chain(
        R"(spin\s*\n\s*hot_three_quarters\s*\n\s*run_workload\s*\n\s*main)");
    EXPECT_TRUE(std::regex_search(traces, chain)) << traces.substr(0, 4000);
    std::remove(file.c_str());
}

TEST_P(CpuProfile, SyscallStacksHaveKernelFramesUnderUserFrames) {
    HOSTPROF_REQUIRE_ROOT();
    Child prog("syscall_heavy", "10");
    ASSERT_GT(prog.pid, 0);
    std::string file = temp_path("sys.pb.gz");
    std::string log = record(
        clock_flag() + "--duration 4s --frequency 199 --pid " + std::to_string(prog.pid), file);
    ASSERT_NE(log.find("wrote"), std::string::npos) << log;
    std::string traces = pprof("-traces", file);
    // Kernel syscall entry, then (rootward) the user function that made the call.
    static const std::regex mixed(
        R"((entry_SYSCALL_64|do_syscall_64)[^-]*\n[\s\S]*?make_syscalls\s*\n\s*main)");
    EXPECT_TRUE(std::regex_search(traces, mixed)) << traces.substr(0, 4000);
    EXPECT_NE(traces.find("ksys_write"), std::string::npos) << traces.substr(0, 4000);
    // A sample's kernel stack starts where the task was: the tick sampler walks from
    // inside the timer interrupt and must cut those frames (and its own) off. (Interrupt
    // frames deeper in a stack are real: softirq work on an earlier interrupt's exit.)
    for (const char* frame : {"hp_tick", "hp_cpu_sample", "bpf_trace_run"})
        EXPECT_EQ(traces.find(frame), std::string::npos) << frame << "\n" << traces.substr(0, 4000);
    static const std::regex leaf(R"(^\s*[0-9.]+\w*\s+(\S+)\s*$)");
    std::istringstream lines(traces);
    int leaves = 0;
    for (std::string line; std::getline(lines, line);) {
        std::smatch m;
        if (!std::regex_match(line, m, leaf))
            continue;
        ++leaves;
        EXPECT_NE(m[1], "__hrtimer_run_queues") << line;
        EXPECT_NE(m[1], "hrtimer_interrupt") << line;
    }
    EXPECT_GT(leaves, 5) << traces.substr(0, 2000);
    std::remove(file.c_str());
}

INSTANTIATE_TEST_SUITE_P(Clocks, CpuProfile,
                         ::testing::Values("tick", "tick/raw_tp", "tick/tracepoint", "cpu-clock"),
                         [](const auto& info) {
                             std::string name;
                             for (char c : info.param)
                                 name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                             return name;
                         });

TEST(OffCpuProfile, HundredMillisecondSleepsInTheirFunction) {
    HOSTPROF_REQUIRE_ROOT();
    Child prog("offcpu_sleep", "40");
    ASSERT_GT(prog.pid, 0);
    std::string file = temp_path("off.pb.gz");
    std::string log = record("--off-cpu --duration 3s --pid " + std::to_string(prog.pid), file);
    ASSERT_NE(log.find("wrote"), std::string::npos) << log;
    auto calls = cum_by_function(pprof("-top -cum -nodecount=100 -sample_index=samples", file));
    auto ms =
        cum_by_function(pprof("-top -cum -nodecount=100 -sample_index=off_cpu -unit=ms", file));
    ASSERT_TRUE(calls.contains("sleepy_function")) << log;
    ASSERT_TRUE(ms.contains("sleepy_function"));
    // About 30 blocked intervals in 3 s, each about 100 ms.
    EXPECT_GE(calls["sleepy_function"], 20);
    double per_call = ms["sleepy_function"] / calls["sleepy_function"];
    EXPECT_GT(per_call, 95.0);
    EXPECT_LT(per_call, 130.0);
    // The kernel side of the block sits on top of the user stack: the sleep syscall's
    // path, and none of our own BPF program's frames.
    EXPECT_TRUE(calls.contains("do_nanosleep") || calls.contains("hrtimer_nanosleep") ||
                calls.contains("__x64_sys_clock_nanosleep"))
        << log;
    for (const auto& [fn, n] : calls)
        EXPECT_EQ(fn.find("hp_offcpu"), std::string::npos) << fn;
    // ... and under it the whole user chain, kept behind the kernel frames.
    EXPECT_GE(calls["main"], calls["sleepy_function"]) << log;
    std::remove(file.c_str());
}

TEST(Record, FoldedAndHtmlFormats) {
    HOSTPROF_REQUIRE_ROOT();
    Child prog("cpu_ratio", "6");
    std::string folded = temp_path("p.folded"), html = temp_path("p.html");
    std::string pid = std::to_string(prog.pid);
    ASSERT_NE(
        record("--duration 2s --frequency 99 --format folded --pid " + pid, folded).find("wrote"),
        std::string::npos);
    ASSERT_NE(record("--duration 2s --frequency 99 --format html --pid " + pid, html).find("wrote"),
              std::string::npos);
    std::ifstream f(folded);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("main;run_workload;hot_three_quarters;spin "), std::string::npos)
        << text.substr(0, 2000);
    std::ifstream h(html);
    std::string page((std::istreambuf_iterator<char>(h)), std::istreambuf_iterator<char>());
    EXPECT_NE(page.find("hot_one_quarter"), std::string::npos);
    std::remove(folded.c_str());
    std::remove(html.c_str());
}

TEST(Record, BadArgumentsAreClearErrors) {
    std::string out = run_command(std::string(HOSTPROF_BINARY) +
                                  " record --frequency 5000 -o /tmp/x.pb.gz 2>&1; echo rc=$?");
    EXPECT_NE(out.find("frequency"), std::string::npos) << out;
    EXPECT_NE(out.find("rc=2"), std::string::npos) << out;
}

} // namespace
