// The watchdog with an explicit clock: no sleeps, no timing assertions.
#include <gtest/gtest.h>

#include "agent/watchdog.h"

using namespace hostprof;
using namespace std::chrono_literals;

namespace {

struct FakeClock {
    std::chrono::nanoseconds t{1'000'000'000};
    Watchdog::Now fn() {
        return [this] { return t; };
    }
};

double value(const prometheus::MetricFamily& f) {
    return f.type == prometheus::MetricType::Counter ? f.metric.at(0).counter.value
                                                     : f.metric.at(0).gauge.value;
}

TEST(Watchdog, CountsEachStallOnceAndNoticesRecovery) {
    FakeClock clock;
    Watchdog w(5s, clock.fn());
    EXPECT_FALSE(w.check());
    clock.t += 4s; // under the timeout: fine
    EXPECT_FALSE(w.check());
    w.heartbeat();
    clock.t += 5s; // exactly the timeout: not yet
    EXPECT_FALSE(w.check());
    clock.t += 1ms;
    EXPECT_TRUE(w.check());
    EXPECT_EQ(w.stalls(), 1u);
    clock.t += 30s; // the same stall goes on: still one
    EXPECT_TRUE(w.check());
    EXPECT_TRUE(w.check());
    EXPECT_EQ(w.stalls(), 1u);
    EXPECT_DOUBLE_EQ(w.seconds_since_heartbeat(), 35.001);

    w.heartbeat(); // the loop is back
    EXPECT_FALSE(w.check());
    EXPECT_DOUBLE_EQ(w.seconds_since_heartbeat(), 0.0);
    clock.t += 6s; // a second stall
    EXPECT_TRUE(w.check());
    EXPECT_EQ(w.stalls(), 2u);

    auto families = w.Collect();
    ASSERT_EQ(families.size(), 2u);
    EXPECT_EQ(families[0].name, "hostprof_watchdog_stalls_total");
    EXPECT_EQ(value(families[0]), 2.0);
    EXPECT_EQ(families[1].name, "hostprof_watchdog_seconds_since_poll");
    EXPECT_DOUBLE_EQ(value(families[1]), 6.0);
}

TEST(Watchdog, HeartbeatsWithoutChecksNeverCount) {
    FakeClock clock;
    Watchdog w(1s, clock.fn());
    for (int i = 0; i < 1000; ++i) {
        clock.t += 500ms;
        w.heartbeat();
        EXPECT_FALSE(w.check());
    }
    EXPECT_EQ(w.stalls(), 0u);
}

TEST(Watchdog, MonitorThreadStopsWithTheObject) {
    FakeClock clock;
    {
        Watchdog w(1s, clock.fn());
        w.start_monitor(1ms);
        w.start_monitor(1ms); // idempotent
    }                         // joins; a hang here is the failure
    SUCCEED();
}

} // namespace
