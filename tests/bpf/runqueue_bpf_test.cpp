// Privileged: run-queue latency with two CPU hogs per CPU and a thread that wakes often.
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "agent/collect/profile_collector.h"
#include "agent/collect/runqueue_collector.h"
#include "agent/serve/latency_metrics.h"
#include "bpf_test_util.h"
#include "kernel-compat/tracefs.h"

using namespace hostprof;
using namespace std::chrono_literals;

namespace {

constexpr int kWakeups = 300;

pid_t fork_hog() {
    pid_t pid = ::fork();
    if (pid == 0) {
        volatile uint64_t x = 0;
        for (;;)
            x = x + 1;
    }
    return pid;
}

class RunQueueModes : public ::testing::TestWithParam<compat::AttachMode> {};

TEST_P(RunQueueModes, WakingThreadWaitsBehindHogs) {
    HOSTPROF_REQUIRE_ROOT();
    const bool classic = GetParam() == compat::AttachMode::Tracepoint;
    if (classic) {
        Status st = compat::ensure_tracefs("/sys/kernel/tracing");
        ASSERT_TRUE(st) << st.error().message();
    }
    // The waker waits for a byte before it starts sleeping and waking.
    int go[2];
    ASSERT_EQ(::pipe(go), 0);
    pid_t waker = ::fork();
    ASSERT_GE(waker, 0);
    if (waker == 0) {
        char c;
        ::close(go[1]);
        if (::read(go[0], &c, 1) != 1)
            ::_exit(1);
        timespec ms{0, 1'000'000};
        for (int i = 0; i < kWakeups; ++i)
            ::nanosleep(&ms, nullptr);
        ::_exit(0);
    }
    ::close(go[0]);

    RunQueueOptions o;
    o.mode = GetParam();
    o.tgid = classic ? 0 : static_cast<uint32_t>(waker); // classic: host-wide
    auto started = RunQueueCollector::start(o);
    if (!started) {
        ::kill(waker, SIGKILL);
        ::waitpid(waker, nullptr, 0);
    }
    ASSERT_TRUE(started) << started.error().message();
    RunQueueCollector& c = *started.value();
    EXPECT_EQ(c.attached().size(), 3u);
    RunQueueSnapshot before = c.snapshot();

    std::vector<pid_t> hogs;
    for (size_t i = 0; i < 2 * online_cpus().size(); ++i)
        hogs.push_back(fork_hog());
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(::write(go[1], "g", 1), 1);
    int status = 0;
    ASSERT_EQ(::waitpid(waker, &status, 0), waker);
    auto elapsed = std::chrono::steady_clock::now() - t0;
    for (pid_t h : hogs)
        ::kill(h, SIGKILL);
    for (pid_t h : hogs)
        ::waitpid(h, nullptr, 0);
    ::close(go[1]);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    RunQueueSnapshot after = c.snapshot();
    uint64_t n = after.latency.count() - before.latency.count();
    uint64_t sum = after.latency.sum - before.latency.sum;
    std::vector<uint64_t> d(after.latency.slots.size());
    for (size_t i = 0; i < d.size(); ++i)
        d[i] = after.latency.slots[i] - before.latency.slots[i];
    std::printf("run-queue waits: %llu, mean %.1f us; by slot (2^i ns):",
                static_cast<unsigned long long>(n),
                n ? static_cast<double>(sum) / 1e3 / static_cast<double>(n) : 0.0);
    for (size_t i = 0; i < d.size(); ++i)
        if (d[i])
            std::printf(" %zu:%llu", i, static_cast<unsigned long long>(d[i]));
    std::printf("\n");

    // A sleep ends with a wakeup and a switch-in, so about one wait per sleep; a few sleeps
    // never block (the timer fires before the thread switches out), hence 90%.
    EXPECT_GE(n, static_cast<uint64_t>(kWakeups) * 9 / 10);
    EXPECT_GT(sum, 0u);
    uint64_t above_1us = 0;
    for (size_t i = 10; i < d.size(); ++i)
        above_1us += d[i];
    EXPECT_GT(above_1us, 0u) << "with two hogs per CPU some waits exceed 1 us";
    if (!classic) {
        // Only the waker is measured: no single wait can outlast the whole run.
        auto run_ns = static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
        for (size_t i = 0; i < d.size(); ++i) {
            if (d[i]) {
                EXPECT_LE(std::ldexp(1.0, static_cast<int>(i)), static_cast<double>(run_ns))
                    << "slot " << i;
            }
        }
    }
    EXPECT_EQ(after.kernel_stats[HP_RQ_STAT_START_FAILED], 0u);
    auto fams = runqueue_metric_families(after);
    ASSERT_EQ(fams.size(), 2u);
    EXPECT_EQ(fams[0].name, "hostprof_runqueue_latency_seconds");
    EXPECT_EQ(fams[0].metric[0].histogram.sample_count, after.latency.count());
}

INSTANTIATE_TEST_SUITE_P(Modes, RunQueueModes,
                         ::testing::Values(compat::AttachMode::TpBtf, compat::AttachMode::RawTp,
                                           compat::AttachMode::Tracepoint),
                         [](const auto& info) {
                             return std::string(compat::to_string(info.param));
                         });

TEST(RunQueueCollector, ProcessFilterNeedsTypedTracepoints) {
    HOSTPROF_REQUIRE_ROOT();
    RunQueueOptions o;
    o.mode = compat::AttachMode::Tracepoint;
    o.tgid = 1;
    EXPECT_FALSE(RunQueueCollector::start(o));
}

} // namespace
