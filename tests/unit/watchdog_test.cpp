// The watchdog: per-consumer stall counting with an explicit clock (no sleeps, no timing
// assertions), then with real threads, one of them really blocked.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "agent/host/watchdog.h"
#include "agent/serve/agent_metrics.h"

using namespace hostprof;
using namespace std::chrono_literals;

namespace {

struct FakeClock {
    std::atomic<int64_t> t{1'000'000'000};
    Watchdog::Now fn() {
        return [this] { return std::chrono::nanoseconds(t.load()); };
    }
    void advance(std::chrono::nanoseconds d) { t += d.count(); }
};

const prometheus::ClientMetric* series(const prometheus::MetricFamily& f,
                                       const std::string& consumer) {
    for (const auto& m : f.metric)
        for (const auto& l : m.label)
            if (l.name == "consumer" && l.value == consumer)
                return &m;
    return nullptr;
}

TEST(Watchdog, CountsEachStallOncePerConsumerAndNoticesRecovery) {
    FakeClock clock;
    Watchdog w(5s, clock.fn());
    Watchdog::Consumer& ring = w.watch("profile_ring");
    Watchdog::Consumer& latency = w.watch("latency_ring");
    EXPECT_EQ(&w.watch("profile_ring"), &ring); // same name, same consumer
    EXPECT_EQ(w.check(), 0u);
    clock.advance(4s); // under the timeout: fine
    EXPECT_EQ(w.check(), 0u);
    ring.beat();
    latency.beat();
    clock.advance(5s); // exactly the timeout: not yet
    EXPECT_EQ(w.check(), 0u);
    clock.advance(1ms);
    latency.beat(); // only the latency thread goes on
    EXPECT_EQ(w.check(), 1u);
    EXPECT_EQ(w.stalls("profile_ring"), 1u);
    EXPECT_EQ(w.stalls("latency_ring"), 0u);
    clock.advance(30s); // the same stall goes on (and now the latency thread's starts)
    EXPECT_EQ(w.check(), 2u);
    EXPECT_EQ(w.check(), 2u);
    EXPECT_EQ(w.stalls("profile_ring"), 1u);
    EXPECT_EQ(w.stalls("latency_ring"), 1u);
    EXPECT_DOUBLE_EQ(w.seconds_since_progress("profile_ring"), 35.001);
    EXPECT_DOUBLE_EQ(w.seconds_since_progress("latency_ring"), 30.0);

    ring.beat(); // the loop is back
    EXPECT_EQ(w.check(), 1u);
    EXPECT_DOUBLE_EQ(w.seconds_since_progress("profile_ring"), 0.0);
    clock.advance(6s); // a second stall of the loop
    EXPECT_EQ(w.check(), 2u);
    EXPECT_EQ(w.stalls("profile_ring"), 2u);
    EXPECT_EQ(w.total_stalls(), 3u);
    EXPECT_EQ(w.stalls("no such consumer"), 0u);

    auto families = watchdog_metric_families(w.report());
    ASSERT_EQ(families.size(), 2u);
    EXPECT_EQ(families[0].name, "hostprof_watchdog_stalls_total");
    EXPECT_EQ(families[1].name, "hostprof_watchdog_seconds_since_progress");
    ASSERT_EQ(families[0].metric.size(), 2u);
    ASSERT_NE(series(families[0], "profile_ring"), nullptr);
    EXPECT_EQ(series(families[0], "profile_ring")->counter.value, 2.0);
    EXPECT_EQ(series(families[0], "latency_ring")->counter.value, 1.0);
    EXPECT_DOUBLE_EQ(series(families[1], "profile_ring")->gauge.value, 6.0);
    EXPECT_DOUBLE_EQ(series(families[1], "latency_ring")->gauge.value, 36.0);
}

TEST(Watchdog, AnIdleTaskNeverStallsABusyOneDoes) {
    FakeClock clock;
    Watchdog w(2s, clock.fn());
    Watchdog::Consumer& sym = w.watch("symbolizer", /*starts_idle=*/true);
    clock.advance(1h); // idle for an hour: nobody asked for a profile
    EXPECT_EQ(w.check(), 0u);
    EXPECT_DOUBLE_EQ(w.seconds_since_progress("symbolizer"), 0.0);
    sym.busy();
    for (int i = 0; i < 100; ++i) { // a long profile that progresses frame by frame
        clock.advance(500ms);
        sym.beat();
        EXPECT_EQ(w.check(), 0u);
    }
    clock.advance(3s); // stuck on one frame
    EXPECT_EQ(w.check(), 1u);
    EXPECT_EQ(w.stalls("symbolizer"), 1u);
    sym.idle(); // finished at last: the stall ends, not counted again
    EXPECT_EQ(w.check(), 0u);
    clock.advance(1h);
    EXPECT_EQ(w.check(), 0u);
    EXPECT_EQ(w.stalls("symbolizer"), 1u);
}

TEST(Watchdog, BeatsWithoutChecksNeverCount) {
    FakeClock clock;
    Watchdog w(1s, clock.fn());
    Watchdog::Consumer& c = w.watch("loop");
    for (int i = 0; i < 1000; ++i) {
        clock.advance(500ms);
        c.beat();
        EXPECT_EQ(w.check(), 0u);
    }
    EXPECT_EQ(w.stalls("loop"), 0u);
}

// Real threads and the real clock: one consumer thread keeps beating, another blocks on
// a mutex the test holds (as a consumer stuck on a lock or a read would). The monitor
// thread must count the blocked one, only it, and see it resume. Waits are bounded by
// generous deadlines; nothing asserts how fast anything happens.
TEST(Watchdog, MonitorCountsARealBlockedConsumerThread) {
    Watchdog w(1s);
    Watchdog::Consumer& busy = w.watch("busy");
    Watchdog::Consumer& blocked = w.watch("blocked");
    std::atomic<bool> stop{false};
    std::mutex gate;
    std::unique_lock hold(gate);
    std::thread t1([&] {
        while (!stop) {
            busy.beat();
            std::this_thread::sleep_for(5ms);
        }
    });
    std::thread t2([&] {
        while (!stop) {
            blocked.beat();
            std::lock_guard lock(gate); // blocks while the test holds the gate
        }
    });
    w.start_monitor(20ms);
    w.start_monitor(20ms); // idempotent
    auto wait_until = [](auto pred) {
        for (int i = 0; i < 3000 && !pred(); ++i)
            std::this_thread::sleep_for(10ms);
        return pred();
    };
    EXPECT_TRUE(wait_until([&] { return w.stalls("blocked") == 1; }));
    EXPECT_EQ(w.stalls("busy"), 0u);
    EXPECT_GT(w.seconds_since_progress("blocked"), 1.0);
    hold.unlock(); // the consumer resumes
    EXPECT_TRUE(wait_until([&] { return w.seconds_since_progress("blocked") < 1.0; }));
    stop = true;
    t1.join();
    t2.join();
    EXPECT_EQ(w.stalls("blocked"), 1u); // one stall, counted once
}

} // namespace
