// The TCP collector's snapshot -> Prometheus families: names, labels, base units.
#include <gtest/gtest.h>
#include <linux/types.h>

#include <cmath>
#include <string>

#include "agent/collect/tcp_collector.h"
#include "agent/serve/latency_metrics.h"
#include "tcp.h"

using namespace hostprof;

namespace {

LatencyHistogram one_in_slot(size_t slot, uint64_t n, uint64_t sum) {
    LatencyHistogram h;
    h.slots.assign(HP_TCP_SLOTS, 0);
    h.slots.at(slot) = n;
    h.sum = sum;
    return h;
}

const prometheus::MetricFamily* find(const std::vector<prometheus::MetricFamily>& fams,
                                     const std::string& name) {
    for (const auto& f : fams)
        if (f.name == name)
            return &f;
    return nullptr;
}

TcpSnapshot sample() {
    TcpSnapshot s;
    for (const char* fam : {"ipv4", "ipv6"}) {
        TcpFamilyStats f;
        f.family = fam;
        f.connect = one_in_slot(0, 0, 0);
        f.srtt = one_in_slot(0, 0, 0);
        f.duration = one_in_slot(0, 0, 0);
        f.sent_bytes = one_in_slot(0, 0, 0);
        f.received_bytes = one_in_slot(0, 0, 0);
        f.port = "other";
        s.series.push_back(f);
    }
    TcpFamilyStats& v6 = s.series[1];
    // Three connections of ~1.5 s ([2^30, 2^31) ns), 4095 bytes sent each (slot 11) and
    // 16383 received (slot 13).
    v6.duration = one_in_slot(30, 3, 4'500'000'000);
    v6.sent_bytes = one_in_slot(11, 3, 3 * 4095);
    v6.received_bytes = one_in_slot(13, 3, 3 * 16383);
    v6.retransmits = 7;
    v6.resets_sent = 2;
    v6.resets_received = 5;
    v6.connect_failed = 1;
    s.kernel_stats.assign(HP_TCP_STAT_MAX, 0);
    s.families = s.series; // one port each: the totals are the series
    return s;
}

} // namespace

TEST(TcpMetrics, EveryFamilyHasOneSeriesPerAddressFamily) {
    auto fams = tcp_metric_families(sample());
    const char* names[] = {
        "hostprof_tcp_connect_latency_seconds", "hostprof_tcp_srtt_seconds",
        "hostprof_tcp_retransmits_total",       "hostprof_tcp_resets_total",
        "hostprof_tcp_connect_failures_total",  "hostprof_tcp_connection_duration_seconds",
        "hostprof_tcp_connection_sent_bytes",   "hostprof_tcp_connection_received_bytes"};
    // ... and the collector's own loss counter, by reason.
    ASSERT_EQ(fams.size(), std::size(names) + 1);
    const auto* lost = find(fams, "hostprof_tcp_lost_total");
    ASSERT_TRUE(lost);
    ASSERT_EQ(lost->metric.size(), 2u);
    EXPECT_EQ(lost->metric[0].label.at(0).value, "start_map_full");
    EXPECT_EQ(lost->metric[1].label.at(0).value, "missed_start");
    for (const char* n : names) {
        const auto* f = find(fams, n);
        ASSERT_TRUE(f) << n;
        // resets: a series per family and direction.
        EXPECT_EQ(f->metric.size(), std::string(n) == "hostprof_tcp_resets_total" ? 4u : 2u) << n;
        for (const auto& m : f->metric) {
            bool has_family = false, has_port = false;
            for (const auto& l : m.label) {
                has_family |= l.name == "family" && (l.value == "ipv4" || l.value == "ipv6");
                has_port |= l.name == "port" && l.value == "other";
            }
            EXPECT_TRUE(has_family) << n;
            EXPECT_TRUE(has_port) << n;
        }
    }
}

TEST(TcpMetrics, LifetimeInSecondsAndBytesInBytes) {
    auto fams = tcp_metric_families(sample());
    const auto* dur = find(fams, "hostprof_tcp_connection_duration_seconds");
    const auto* sent = find(fams, "hostprof_tcp_connection_sent_bytes");
    const auto* recv = find(fams, "hostprof_tcp_connection_received_bytes");
    ASSERT_TRUE(dur && sent && recv);
    ASSERT_EQ(dur->type, prometheus::MetricType::Histogram);
    ASSERT_EQ(sent->type, prometheus::MetricType::Histogram);
    const auto& d = dur->metric.at(1);
    EXPECT_EQ(d.label.at(0).value, "ipv6");
    EXPECT_EQ(d.histogram.sample_count, 3u);
    EXPECT_DOUBLE_EQ(d.histogram.sample_sum, 4.5);
    // Slot 30 ends at 2^31 ns = 2.147 s: the cumulative count reaches 3 at that bucket.
    ASSERT_EQ(d.histogram.bucket.size(), static_cast<size_t>(HP_TCP_SLOTS));
    EXPECT_DOUBLE_EQ(d.histogram.bucket[29].upper_bound, std::ldexp(1.0, 30) * 1e-9);
    EXPECT_EQ(d.histogram.bucket[29].cumulative_count, 0u);
    EXPECT_DOUBLE_EQ(d.histogram.bucket[30].upper_bound, std::ldexp(1.0, 31) * 1e-9);
    EXPECT_EQ(d.histogram.bucket[30].cumulative_count, 3u);
    EXPECT_TRUE(std::isinf(d.histogram.bucket.back().upper_bound));

    const auto& s = sent->metric.at(1).histogram;
    EXPECT_DOUBLE_EQ(s.sample_sum, 3.0 * 4095);
    EXPECT_DOUBLE_EQ(s.bucket[11].upper_bound, 4096.0);
    EXPECT_EQ(s.bucket[10].cumulative_count, 0u);
    EXPECT_EQ(s.bucket[11].cumulative_count, 3u);
    const auto& r = recv->metric.at(1).histogram;
    EXPECT_DOUBLE_EQ(r.sample_sum, 3.0 * 16383);
    EXPECT_DOUBLE_EQ(r.bucket[13].upper_bound, 16384.0);
    EXPECT_EQ(r.bucket[12].cumulative_count, 0u);
    EXPECT_EQ(r.bucket[13].cumulative_count, 3u);
    // ipv4 saw nothing: present, empty, every bucket backfilled.
    const auto& e = sent->metric.at(0);
    EXPECT_EQ(e.label.at(0).value, "ipv4");
    EXPECT_EQ(e.histogram.sample_count, 0u);
    EXPECT_EQ(e.histogram.bucket.size(), static_cast<size_t>(HP_TCP_SLOTS));
}

TEST(TcpMetrics, CountersCarryTheSnapshotValues) {
    auto fams = tcp_metric_families(sample());
    const auto* retx = find(fams, "hostprof_tcp_retransmits_total");
    const auto* resets = find(fams, "hostprof_tcp_resets_total");
    const auto* failed = find(fams, "hostprof_tcp_connect_failures_total");
    ASSERT_TRUE(retx && resets && failed);
    EXPECT_EQ(retx->metric.at(1).counter.value, 7.0);
    EXPECT_EQ(failed->metric.at(1).counter.value, 1.0);
    double sent = 0, received = 0;
    for (const auto& m : resets->metric) {
        std::string dir, fam;
        for (const auto& l : m.label) {
            if (l.name == "direction")
                dir = l.value;
            else if (l.name == "family")
                fam = l.value;
        }
        if (fam != "ipv6")
            continue;
        (dir == "sent" ? sent : received) += m.counter.value;
    }
    EXPECT_EQ(sent, 2.0);
    EXPECT_EQ(received, 5.0);
}
