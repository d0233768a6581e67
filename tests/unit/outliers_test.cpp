#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "agent/pipeline/latency.h"
#include "agent/collect/latency_histogram.h"
#include "agent/aggregate/outliers.h"
#include "agent/serve/latency_metrics.h"
#include "exporters/metrics.h"

using namespace hostprof;

namespace {

Outlier read_outlier(uint64_t ns, uint32_t pid) {
    Outlier o;
    o.family = "hostprof_syscall_latency_seconds";
    o.series = {{"syscall", "read"}};
    o.bucket_le = latency_bucket_le(ns, 36);
    o.pid = pid;
    o.comm = "reader";
    o.duration_ns = ns;
    o.unix_ns = 1'700'000'000'000'000'000;
    return o;
}

} // namespace

TEST(OutlierStore, BoundedOldestEvictedIdsResolve) {
    OutlierStore store(3);
    for (uint32_t i = 1; i <= 5; ++i)
        EXPECT_EQ(store.add(read_outlier(50'000'000, i)), i);
    EXPECT_EQ(store.size(), 3u);
    EXPECT_EQ(store.evicted(), 2u);
    EXPECT_EQ(store.added(), 5u);
    EXPECT_FALSE(store.find(1));
    EXPECT_FALSE(store.find(2));
    ASSERT_TRUE(store.find(3));
    EXPECT_EQ(store.find(3)->pid, 3u);
    EXPECT_EQ(store.find(5)->pid, 5u);
    EXPECT_FALSE(store.find(6));
    auto recent = store.recent(2);
    ASSERT_EQ(recent.size(), 2u);
    EXPECT_EQ(recent[0].id, 5u); // newest first
    EXPECT_EQ(recent[1].id, 4u);
}

TEST(OutlierStore, BucketBoundsMatchTheExportedHistogram) {
    // 50 ms lands in [2^25, 2^26) ns: le = 2^26 ns, computed exactly as the histogram's.
    EXPECT_EQ(latency_bucket_le(50'000'000, 36), log2_slot_upper_bound(25) * 1e-9);
    EXPECT_EQ(latency_bucket_le(1, 36), log2_slot_upper_bound(0) * 1e-9);
    EXPECT_EQ(latency_bucket_le(0, 36), log2_slot_upper_bound(0) * 1e-9);
    // The last slot is open: its exemplar goes on +Inf.
    EXPECT_TRUE(std::isinf(latency_bucket_le(uint64_t{1} << 40, 36)));
    EXPECT_TRUE(std::isinf(latency_bucket_le(uint64_t{1} << 35, 36)));
    EXPECT_FALSE(std::isinf(latency_bucket_le((uint64_t{1} << 35) - 1, 36)));
}

TEST(OutlierStore, ExemplarsLandOnTheirBucketInOpenMetrics) {
    OutlierStore store(16);
    store.add(read_outlier(50'000'000, 100));
    store.add(read_outlier(60'000'000, 101)); // same bucket: the newest wins
    store.add(read_outlier(5'000'000, 102));
    ExemplarSet ex = store.exemplars();
    EXPECT_EQ(ex.size(), 2u);

    LatencyHistogram h;
    h.slots.assign(36, 0);
    h.slots[25] = 2;
    h.slots[22] = 1;
    h.sum = 115'000'000;
    prometheus::MetricFamily f{
        "hostprof_syscall_latency_seconds", "x", prometheus::MetricType::Histogram, {}};
    prometheus::ClientMetric m;
    m.label = {{"syscall", "read"}};
    m.histogram = to_prometheus_histogram(h, 1e-9);
    f.metric.push_back(m);
    std::string text = render_openmetrics({f}, ex);
    EXPECT_NE(text.find("hostprof_syscall_latency_seconds_bucket{syscall=\"read\",le="
                        "\"0.067108864\"} 3 # {outlier_id=\"2\",pid=\"101\",comm=\"reader\"} 0.06"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("le=\"0.008388608\"} 1 # {outlier_id=\"3\",pid=\"102\""), std::string::npos)
        << text;
}

TEST(MatchCgroups, GlobOverPathsBoundedAndSorted) {
    auto root =
        std::filesystem::temp_directory_path() / ("hostprof-cg-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root);
    for (const char* d : {"system.slice/a.service", "system.slice/b.service",
                          "system.slice/c.scope", "kubepods.slice/pod1/cri-containerd-x.scope",
                          "kubepods.slice/pod1/cri-containerd-y.scope", "user.slice"})
        std::filesystem::create_directories(root / d);
    auto [svc, over] = match_cgroups(root.string(), {"/system.slice/*.service"}, 64);
    ASSERT_EQ(svc.size(), 2u);
    EXPECT_EQ(over, 0u);
    struct stat st {};
    ASSERT_EQ(::stat((root / "system.slice/a.service").c_str(), &st), 0);
    EXPECT_EQ(svc.at(st.st_ino), "/system.slice/a.service"); // id = inode of the directory

    auto [ctr, over2] = match_cgroups(root.string(), {"*/cri-containerd-*.scope"}, 1);
    ASSERT_EQ(ctr.size(), 1u);
    EXPECT_EQ(over2, 1u);
    EXPECT_EQ(ctr.begin()->second, "/kubepods.slice/pod1/cri-containerd-x.scope");

    auto [all, over3] = match_cgroups(root.string(), {"/"}, 64);
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all.begin()->second, "/");
    auto [none, over4] = match_cgroups(root.string() + "/missing", {"*"}, 64);
    EXPECT_TRUE(none.empty());
    std::filesystem::remove_all(root);
}
