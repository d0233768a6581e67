// Log2 histogram -> Prometheus conversion, and the generated syscall table.
#include <gtest/gtest.h>
#include <linux/types.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <regex>

#include "agent/collect/latency_histogram.h"
#include "kernel-compat/syscall_table.h"
#include "agent/collect/syscall_collector.h"
#include "agent/serve/latency_metrics.h"
#include "syscalls.h"

using namespace hostprof;

TEST(LatencyHistogram, CumulativeBackfilledBucketsInSecondsWithInf) {
    LatencyHistogram h;
    h.slots.assign(6, 0);
    h.slots[1] = 2; // [2, 4) ns
    h.slots[3] = 5; // [8, 16) ns
    h.slots[5] = 1; // >= 32 ns: the open last slot
    h.sum = 2 * 3 + 5 * 10 + 100;
    auto p = to_prometheus_histogram(h, 1e-9);
    ASSERT_EQ(p.bucket.size(), 6u); // 5 finite + +Inf, empty ones included
    const double le[] = {2e-9, 4e-9, 8e-9, 16e-9, 32e-9};
    const uint64_t cum[] = {0, 2, 2, 7, 7};
    for (size_t i = 0; i < 5; ++i) {
        EXPECT_DOUBLE_EQ(p.bucket[i].upper_bound, le[i]) << i;
        EXPECT_EQ(p.bucket[i].cumulative_count, cum[i]) << i;
    }
    EXPECT_TRUE(std::isinf(p.bucket[5].upper_bound));
    EXPECT_EQ(p.bucket[5].cumulative_count, 8u);
    EXPECT_EQ(p.sample_count, 8u);
    EXPECT_DOUBLE_EQ(p.sample_sum, 156e-9);
}

TEST(LatencyHistogram, EmptyHistogramStillHasEveryBucket) {
    LatencyHistogram h;
    h.slots.assign(HP_SYS_SLOTS, 0);
    auto p = to_prometheus_histogram(h, 1.0);
    ASSERT_EQ(p.bucket.size(), static_cast<size_t>(HP_SYS_SLOTS));
    for (const auto& b : p.bucket)
        EXPECT_EQ(b.cumulative_count, 0u);
    EXPECT_EQ(p.bucket.front().upper_bound, 2.0);
    EXPECT_EQ(p.bucket[HP_SYS_SLOTS - 2].upper_bound, std::ldexp(1.0, HP_SYS_SLOTS - 1));
}

TEST(LatencyHistogram, MergeAddsSlotsAndSums) {
    LatencyHistogram a{{1, 2}, 10}, b{{0, 1, 4}, 7};
    a.merge(b);
    EXPECT_EQ(a.slots, (std::vector<uint64_t>{1, 3, 4}));
    EXPECT_EQ(a.sum, 17u);
    EXPECT_EQ(a.count(), 8u);
}

// The table is generated from the UAPI header at build time: check it against that
// header, parsed here independently.
TEST(SyscallTable, MatchesTheUapiHeader) {
    std::ifstream in("/usr/include/x86_64-linux-gnu/asm/unistd_64.h");
    ASSERT_TRUE(in) << "the build reads this header; it must exist";
    std::regex def(R"(^#define __NR_(\w+) (\d+)$)");
    std::string line;
    size_t n = 0;
    while (std::getline(in, line)) {
        std::smatch m;
        if (!std::regex_match(line, m, def))
            continue;
        ++n;
        uint32_t nr = static_cast<uint32_t>(std::stoul(m[2]));
        EXPECT_EQ(syscall_name(nr), m[1].str());
        EXPECT_EQ(syscall_number(m[1].str()), nr);
    }
    EXPECT_GT(n, 300u);
    EXPECT_EQ(syscall_table_size(), n);
    EXPECT_EQ(syscall_name(0), "read");
    EXPECT_EQ(syscall_label(HP_SYS_MAX_NR - 1), "syscall_511");
    EXPECT_EQ(syscall_name(100000), "");
}

TEST(SyscallMetrics, FamiliesNamesLabelsAndErrnoNames) {
    SyscallSnapshot s;
    SyscallStats read;
    read.nr = 0;
    read.name = "read";
    read.latency.slots.assign(HP_SYS_SLOTS, 0);
    read.latency.slots[23] = 3;
    read.latency.sum = 30'000'000;
    read.errors = {{EAGAIN, 4}, {512, 1}};
    s.syscalls.push_back(read);
    s.kernel_stats.assign(HP_SYS_STAT_MAX, 0);
    s.kernel_stats[HP_SYS_STAT_RINGBUF_DROPS] = 2;
    auto fams = syscall_metric_families(s);
    ASSERT_GE(fams.size(), 4u);
    EXPECT_EQ(fams[0].name, "hostprof_syscall_latency_seconds");
    EXPECT_EQ(fams[0].type, prometheus::MetricType::Histogram);
    ASSERT_EQ(fams[0].metric.size(), 1u);
    EXPECT_EQ(fams[0].metric[0].label[0].name, "syscall");
    EXPECT_EQ(fams[0].metric[0].label[0].value, "read");
    EXPECT_DOUBLE_EQ(fams[0].metric[0].histogram.sample_sum, 0.03);
    EXPECT_EQ(fams[0].metric[0].histogram.sample_count, 3u);
    EXPECT_EQ(fams[1].name, "hostprof_syscall_errors_total");
    ASSERT_EQ(fams[1].metric.size(), 2u);
    EXPECT_EQ(fams[1].metric[0].label[0].value, "EAGAIN");
    EXPECT_EQ(fams[1].metric[0].counter.value, 4.0);
    EXPECT_EQ(fams[1].metric[1].label[0].value, "ERESTARTSYS");
    bool drops = false;
    for (const auto& f : fams)
        if (f.name == "hostprof_syscall_lost_total")
            for (const auto& m : f.metric)
                if (m.label[0].value == "ringbuf_full")
                    drops = m.counter.value == 2.0;
    EXPECT_TRUE(drops);
    EXPECT_EQ(errno_label(EBADF), "EBADF");
    EXPECT_EQ(errno_label(9999), "9999");
}
