// Log2 histogram -> Prometheus conversion, and the generated syscall table.
#include <gtest/gtest.h>
#include <linux/types.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <regex>

#include "agent/collect/latency_histogram.h"
#include "kernel-compat/syscall_table.h"
#include "agent/collect/syscall_collector.h"
#include "agent/serve/latency_metrics.h"
#include "bpf/native.h"
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

// Every duration falls in the native bucket Prometheus defines for it: bucket i of schema s
// holds (2^((i-1)/2^s), 2^(i/2^s)] seconds, checked in long double for durations around
// every bound and spread over the whole range.
TEST(NativeBuckets, BoundsPutEveryDurationInItsPrometheusBucket) {
    for (int schema = 0; schema <= HP_NATIVE_MAX_SCHEMA; ++schema) {
        SCOPED_TRACE(schema);
        const std::vector<uint64_t> bounds = native_bounds_ns(schema);
        const uint32_t buckets = native_bucket_count(schema);
        ASSERT_EQ(bounds.size() + 1, buckets);
        ASSERT_LE(bounds.size(), static_cast<size_t>(HP_NATIVE_MAX_BOUNDS - 1));
        EXPECT_EQ(bounds.back(), 16384'000'000'000ULL); // 2^14 s
        EXPECT_TRUE(std::is_sorted(bounds.begin(), bounds.end()));
        const long double per_octave = std::ldexp(1.0L, schema);
        auto check = [&](uint64_t d) {
            const uint32_t k = native_bucket_of(bounds, d);
            const long double seconds = static_cast<long double>(d) / 1e9L;
            auto bound = [&](long double k_) {
                return std::exp2(HP_NATIVE_LOW_EXP + k_ / per_octave);
            };
            if (k == 0) {
                EXPECT_LE(seconds, bound(0)) << d;
            } else if (k + 1 == buckets) {
                EXPECT_GT(seconds, bound(static_cast<long double>(buckets - 2))) << d;
            } else {
                EXPECT_GT(seconds, bound(k - 1)) << d << " bucket " << k;
                EXPECT_LE(seconds, bound(k)) << d << " bucket " << k;
                // ...and the index Prometheus would give it.
                const auto index = static_cast<int64_t>(native_first_index(schema)) + k - 1;
                EXPECT_EQ(index, static_cast<int64_t>(std::ceil(std::log2(seconds) * per_octave)))
                    << d;
            }
        };
        for (uint64_t b : bounds)
            for (uint64_t d : {b, b + 1, b > 0 ? b - 1 : 0})
                check(d);
        for (long double d = 1; d < 1e14L; d *= 1.0137L)
            check(static_cast<uint64_t>(d));
        check(UINT64_MAX);
    }
    EXPECT_EQ(native_bucket_count(-1), 0u);
    EXPECT_EQ(native_bucket_count(4), 0u);
    EXPECT_EQ(native_bucket_count(3), 354u);
    EXPECT_EQ(native_first_index(0), -29);
    EXPECT_EQ(native_first_index(3), -239);
}

// The BPF programs search the bounds without branches (bpf/lib/hp_native.h): the same
// arithmetic on the padded table gives the same buckets as a binary search.
TEST(NativeBuckets, BranchFreeSearchOfTheKernelTableAgrees) {
    for (int schema = 0; schema <= HP_NATIVE_MAX_SCHEMA; ++schema) {
        const std::vector<uint64_t> bounds = native_bounds_ns(schema);
        std::vector<uint64_t> table(HP_NATIVE_MAX_BOUNDS, HP_NATIVE_PAD);
        std::copy(bounds.begin(), bounds.end(), table.begin());
        auto kernel_bucket = [&](uint64_t d) {
            d = std::min<uint64_t>(d, HP_NATIVE_MAX_DURATION);
            uint32_t k = 0;
            for (uint32_t step = HP_NATIVE_MAX_BOUNDS / 2; step > 0; step >>= 1)
                k += static_cast<uint32_t>((table[k + step - 1] - d) >> 63) * step;
            return std::min(k, native_bucket_count(schema) - 1);
        };
        for (uint64_t b : bounds)
            for (uint64_t d : {b, b + 1})
                EXPECT_EQ(kernel_bucket(d), native_bucket_of(bounds, d)) << schema << " " << d;
        for (uint64_t d : std::vector<uint64_t>{0, 1, HP_NATIVE_MAX_DURATION, UINT64_MAX})
            EXPECT_EQ(kernel_bucket(d), native_bucket_of(bounds, d)) << schema << " " << d;
    }
}

TEST(NativeBuckets, MergeKeepsThemOnlyWhenBothSidesHaveThem) {
    LatencyHistogram a{{1, 2}, 10, {3, {0, 1, 2}}}, b{{0, 1}, 7, {3, {1, 0, 0}}};
    a.merge(b);
    EXPECT_EQ(a.native.schema, 3);
    EXPECT_EQ(a.native.buckets, (std::vector<uint64_t>{1, 1, 2}));
    LatencyHistogram empty, none{{4}, 0, {}};
    empty.merge(b); // an empty histogram takes the other's
    EXPECT_EQ(empty.native.buckets, b.native.buckets);
    a.merge(LatencyHistogram{{0, 0}, 0, {}}); // nothing observed: nothing changes
    EXPECT_EQ(a.native.schema, 3);
    a.merge(none); // observations without native buckets: none for the sum
    EXPECT_EQ(a.native.schema, -1);
    EXPECT_TRUE(a.native.buckets.empty());
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
