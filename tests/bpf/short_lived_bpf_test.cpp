// Privileged: processes that live ~20 ms are symbolized. `hostprof record` profiles at
// 999 Hz while tests/testprogs/short_burn (20 ms of CPU in short_burn_hot, then exit) is
// started 30 times in a row. Its /proc/PID is gone a few ms after its first sample, so
// this passes only if the agent reads the mappings at once (the BPF program wakes the
// consumer on a process's first sample) and again once the libraries are mapped.
// Before that change: 30% of the program's samples carried the name, 64% had no user frame
// named at all.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "bpf_test_util.h"

namespace {

using hostprof::bpftest::run_command;
using namespace std::chrono_literals;

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A folded stack (root first, user frames then kernel frames) is symbolized when every user
// frame from the leaf up has a name. Unnamed frames at the root end alone do not count:
// they are a frame-pointer walk that ran into code built without frame pointers (ld.so's
// start-up, whose leaf frames do have names), not a missing mapping. A missing mapping
// leaves the leaf unnamed too.
bool symbolized(const std::string& stack) {
    std::string rest = stack;
    while (rest.rfind("[unknown];", 0) == 0)
        rest.erase(0, 10);
    if (rest.empty() || rest == "[unknown]" || rest.rfind("entry_", 0) == 0 ||
        rest.rfind("asm_", 0) == 0)
        return false; // no named user frame at all
    return rest.find("[unknown]") == std::string::npos;
}

TEST(ShortLived, TwentyMillisecondProcessesAreSymbolized) {
    HOSTPROF_REQUIRE_ROOT();
    const std::string base = "/tmp/hostprof-test-" + std::to_string(::getpid()) + "-short";
    const std::string out = base + ".folded", log = base + ".log";
    std::thread recorder([&] {
        // The consumer must get a CPU within milliseconds of its wakeup. Other sessions'
        // compilers keep this shared 2-CPU machine busy, and at nice 0 about 1 run in
        // 10 was missed whole (process gone before the capture): nice -10 isolates what is
        // tested here, the wakeup path, from that scheduling delay (docs/profiling.md).
        run_command("nice -n -10 " + std::string(HOSTPROF_BINARY) +
                    " record --frequency 999 --comm short_burn --format folded --duration 8s -o " +
                    out + " >" + log + " 2>&1");
    });
    for (int i = 0; i < 200 && slurp(log).find("recording") == std::string::npos; ++i)
        std::this_thread::sleep_for(50ms);
    ASSERT_NE(slurp(log).find("recording"), std::string::npos) << slurp(log);

    const std::string prog = std::string(HOSTPROF_TESTPROGS_DIR) + "/short_burn";
    for (int i = 0; i < 30; ++i) {
        pid_t p = ::fork();
        ASSERT_GE(p, 0);
        if (p == 0) {
            ::execl(prog.c_str(), prog.c_str(), "20", static_cast<char*>(nullptr));
            ::_exit(127);
        }
        int status = 0;
        ::waitpid(p, &status, 0);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    recorder.join();
    const std::string folded = slurp(out);
    ASSERT_FALSE(folded.empty()) << slurp(log);

    // "frame;frame;... count" per line, root first; "[unknown]" is an unsymbolized frame.
    long total = 0, unknown = 0, named = 0;
    std::string missed; // the stacks not symbolized
    std::istringstream in(folded);
    std::string line;
    while (std::getline(in, line)) {
        size_t sp = line.rfind(' ');
        if (sp == std::string::npos)
            continue;
        long n = std::stol(line.substr(sp + 1));
        total += n;
        if (!symbolized(line.substr(0, sp))) {
            unknown += n;
            missed += line + "\n";
        }
        if (line.find("short_burn_hot") != std::string::npos)
            named += n;
    }
    std::printf("short_burn: %ld samples, %ld not symbolized, %ld in short_burn_hot\n", total,
                unknown, named);
    // 30 x 20 ms at 999 Hz: about 600 samples; far fewer means the profiler missed them.
    ASSERT_GE(total, 200) << folded;
    EXPECT_GE(static_cast<double>(total - unknown) / static_cast<double>(total), 0.9)
        << unknown << " of " << total << " samples are not symbolized:\n"
        << missed;
    EXPECT_GE(static_cast<double>(named) / static_cast<double>(total), 0.5)
        << named << " of " << total << " samples in short_burn_hot:\n"
        << folded;
    std::remove(out.c_str());
    std::remove(log.c_str());
}

} // namespace
