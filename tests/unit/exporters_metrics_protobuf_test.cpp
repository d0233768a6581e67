// The Prometheus protobuf exposition: every field decoded with classes generated from
// exporters/metrics.proto, the native (schema 0) form of log2 histograms, Accept
// negotiation, and a real Prometheus with native histograms on scraping it.
#include <gtest/gtest.h>

#include <google/protobuf/io/coded_stream.h>

#include <cmath>
#include <iostream>
#include <map>
#include <sstream>

#include "exporters/metrics.h"
#include "exporters/metrics.pb.h"
#include "exporters_fixture.h"
#include "metrics_fixture.h"

namespace hostprof {
namespace {

namespace pb = io::prometheus::client;
using prometheus::MetricFamily;
using prometheus::MetricType;
using testing::fixture_exemplars;
using testing::fixture_families;
using testing::kNs;

// What Prometheus 2.42 sends with --enable-feature=native-histograms.
constexpr const char* kNativeAccept =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,"
    "application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

// The body as a list of messages: each a varint length, then that many bytes.
std::vector<pb::MetricFamily> decode(const std::string& body) {
    std::vector<pb::MetricFamily> out;
    google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(body.data()),
                                              static_cast<int>(body.size()));
    uint32_t len = 0;
    while (in.ReadVarint32(&len)) {
        std::string msg;
        EXPECT_TRUE(in.ReadString(&msg, static_cast<int>(len)));
        pb::MetricFamily f;
        EXPECT_TRUE(f.ParseFromString(msg));
        out.push_back(std::move(f));
    }
    EXPECT_EQ(in.CurrentPosition(), static_cast<int>(body.size()));
    return out;
}

// The native buckets of a decoded histogram as {index: count}.
std::map<int64_t, int64_t> native_counts(const pb::Histogram& h) {
    std::map<int64_t, int64_t> out;
    int64_t index = 0, count = 0;
    int d = 0;
    for (int s = 0; s < h.positive_span_size(); ++s) {
        index += h.positive_span(s).offset();
        for (uint32_t i = 0; i < h.positive_span(s).length(); ++i, ++index) {
            count += h.positive_delta(d++);
            out[index] = count;
        }
    }
    EXPECT_EQ(d, h.positive_delta_size());
    return out;
}

TEST(ExportersMetricsProtobuf, ChooseFormat) {
    EXPECT_EQ(choose_format(kNativeAccept), MetricsFormat::kProtobuf);
    EXPECT_EQ(choose_format("application/vnd.google.protobuf; "
                            "proto=io.prometheus.client.MetricFamily; encoding=delimited"),
              MetricsFormat::kProtobuf);
    // Another message, another encoding, or a lower q: not ours.
    EXPECT_EQ(choose_format("application/vnd.google.protobuf;proto=foo.Bar;encoding=delimited"),
              MetricsFormat::kPrometheusText);
    EXPECT_EQ(choose_format("application/vnd.google.protobuf;"
                            "proto=io.prometheus.client.MetricFamily;encoding=text"),
              MetricsFormat::kPrometheusText);
    EXPECT_EQ(choose_format("application/vnd.google.protobuf;proto=io.prometheus.client."
                            "MetricFamily;encoding=delimited;q=0.4,application/openmetrics-text"),
              MetricsFormat::kOpenMetrics);
    EXPECT_EQ(content_type(MetricsFormat::kProtobuf), kProtobufContentType);
    const auto [ct, body] = render_metrics_negotiated(fixture_families(), kNativeAccept);
    EXPECT_EQ(ct, kProtobufContentType);
    EXPECT_EQ(decode(body).size(), fixture_families().size());
}

TEST(ExportersMetricsProtobuf, NativeBucketsOfLog2Histograms) {
    // Bytes: bounds 2, 4, 8, ... are powers of two, so bucket i is native bucket i + 1.
    const std::vector<uint64_t> counts = {1, 0, 2, 0, 5};
    auto nb = native_buckets(log2_histogram_metric({counts, 1.0, std::nullopt, {}}).histogram);
    ASSERT_TRUE(nb.has_value());
    EXPECT_EQ(nb->first_index, 1);
    EXPECT_EQ(nb->counts, counts);
    // Nanoseconds in seconds: bucket i, [2^i, 2^(i+1)) ns, is native bucket i - 29,
    // (2^(i-30), 2^(i-29)] s = (0.93 * 2^i, 1.86 * 2^i] ns.
    nb = native_buckets(log2_histogram_metric({counts, kNs, std::nullopt, {}}).histogram);
    ASSERT_TRUE(nb.has_value());
    EXPECT_EQ(nb->first_index, -29);
    // Observations above the last bound go one bucket further.
    prometheus::ClientMetric::Histogram h{9, 0, {{1, 1.0}, {3, 2.0}, {3, 4.0}}};
    nb = native_buckets(h);
    ASSERT_TRUE(nb.has_value());
    EXPECT_EQ(nb->first_index, 0);
    EXPECT_EQ(nb->counts, (std::vector<uint64_t>{1, 2, 0, 6}));
    // Not doubling, a single bound, a decreasing count: classic only.
    EXPECT_FALSE(native_buckets({3, 0, {{1, 1.0}, {3, 3.0}}}).has_value());
    EXPECT_FALSE(native_buckets({3, 0, {{3, 1.0}}}).has_value());
    EXPECT_FALSE(native_buckets({3, 0, {{2, 1.0}, {1, 2.0}}}).has_value());
    EXPECT_FALSE(native_buckets({3, 0, {{1, 0.0}, {3, 0.0}}}).has_value());
}

TEST(ExportersMetricsProtobuf, EveryFieldDecodes) {
    const auto families =
        decode(render_prometheus_protobuf(fixture_families(), fixture_exemplars()));
    ASSERT_EQ(families.size(), 5u);

    const pb::MetricFamily& lat = families[0];
    EXPECT_EQ(lat.name(), "hostprof_syscall_latency_seconds");
    EXPECT_EQ(lat.help(), "Syscall latency.");
    EXPECT_EQ(lat.type(), pb::HISTOGRAM);
    ASSERT_EQ(lat.metric_size(), 2);
    const pb::Metric& read = lat.metric(0);
    ASSERT_EQ(read.label_size(), 1);
    EXPECT_EQ(read.label(0).name(), "syscall");
    EXPECT_EQ(read.label(0).value(), "read");
    const pb::Histogram& h = read.histogram();
    EXPECT_EQ(h.sample_count(), 18u);
    EXPECT_DOUBLE_EQ(h.sample_sum(), 123456.0 * kNs);
    // Classic: 15 finite buckets and +Inf, cumulative, as the text formats have them.
    ASSERT_EQ(h.bucket_size(), 16);
    EXPECT_DOUBLE_EQ(h.bucket(0).upper_bound(), 2 * kNs);
    EXPECT_EQ(h.bucket(10).cumulative_count(), 3u);
    EXPECT_EQ(h.bucket(11).cumulative_count(), 13u);
    EXPECT_TRUE(std::isinf(h.bucket(15).upper_bound()));
    EXPECT_EQ(h.bucket(15).cumulative_count(), 18u);
    // The exemplar on bucket 14, [16384, 32768) ns, with its timestamp.
    ASSERT_TRUE(h.bucket(14).has_exemplar());
    const pb::Exemplar& e = h.bucket(14).exemplar();
    ASSERT_EQ(e.label_size(), 3);
    EXPECT_EQ(e.label(0).name(), "pid");
    EXPECT_EQ(e.label(0).value(), "4242");
    EXPECT_EQ(e.label(2).value(), "9f1c");
    EXPECT_DOUBLE_EQ(e.value(), 2.1e-05);
    EXPECT_EQ(e.timestamp().seconds(), 1700000000);
    EXPECT_EQ(e.timestamp().nanos(), 500000000);
    for (int i = 0; i < 14; ++i)
        EXPECT_FALSE(h.bucket(i).has_exemplar()) << i;
    // Native: schema 0, a zero bucket that marks it native, buckets i - 29 (read has
    // 3, 10, 4, 0, 1 in kernel buckets 10..14: one span, the empty bucket inside it).
    EXPECT_EQ(h.schema(), 0);
    EXPECT_GT(h.zero_threshold(), 0.0);
    EXPECT_LT(h.zero_threshold(), 1e-30);
    EXPECT_EQ(h.zero_count(), 0u);
    ASSERT_EQ(h.positive_span_size(), 1);
    EXPECT_EQ(h.positive_span(0).offset(), -19);
    EXPECT_EQ(native_counts(h),
              (std::map<int64_t, int64_t>{{-19, 3}, {-18, 10}, {-17, 4}, {-16, 0}, {-15, 1}}));
    // Timestamped exemplars also go to the native histogram's own list.
    ASSERT_EQ(h.exemplars_size(), 1);
    EXPECT_DOUBLE_EQ(h.exemplars(0).value(), 2.1e-05);

    // write: an exemplar without a timestamp stays on its classic bucket only; the
    // over-long one is left out everywhere.
    const pb::Histogram& w = lat.metric(1).histogram();
    EXPECT_TRUE(w.bucket(13).has_exemplar());
    EXPECT_FALSE(w.bucket(12).has_exemplar());
    EXPECT_EQ(w.exemplars_size(), 0);
    EXPECT_EQ(native_counts(w), (std::map<int64_t, int64_t>{{-17, 2}, {-16, 2}}));

    EXPECT_EQ(families[1].name(), "hostprof_ringbuf_events_total");
    EXPECT_EQ(families[1].type(), pb::COUNTER);
    ASSERT_EQ(families[1].metric_size(), 2);
    EXPECT_TRUE(families[1].metric(0).has_counter());
    EXPECT_EQ(families[1].metric(0).counter().value(), 1234);
    EXPECT_EQ(families[1].metric(1).counter().value(), 56);
    EXPECT_EQ(families[2].type(), pb::GAUGE);
    EXPECT_EQ(families[2].metric(0).gauge().value(), 52428800);
    EXPECT_EQ(families[3].type(), pb::UNTYPED);
    EXPECT_EQ(families[3].help(), "Attach mode per hook \"quoted\"\nsecond line \\.");
    EXPECT_EQ(families[3].metric(0).label(1).value(), "tp_btf \"x\"\\y\nz");
    EXPECT_EQ(families[3].metric(0).untyped().value(), 1);
    EXPECT_EQ(families[4].type(), pb::SUMMARY);
    EXPECT_EQ(families[4].metric(0).summary().sample_count(), 10u);
    EXPECT_EQ(families[4].metric(0).summary().quantile(1).quantile(), 0.99);
    EXPECT_EQ(families[4].metric(0).summary().quantile(1).value(), 0.125);
}

TEST(ExportersMetricsProtobuf, SpansSplitAtGapsAndEmptyHistogramsStayNative) {
    std::vector<uint64_t> counts(40, 0);
    counts[3] = 5;
    counts[4] = 1;
    counts[7] = 2;  // two empty buckets before it: same span
    counts[20] = 9; // twelve: a new span
    const std::vector<Log2Histogram> series = {{counts, 1.0, 100.0, {}}};
    MetricFamily f = log2_histogram_family("x_bytes", "", series);
    static const std::vector<uint64_t> none(40, 0);
    f.metric.push_back(log2_histogram_metric({none, 1.0, std::nullopt, {{"k", "empty"}}}));
    const auto families = decode(render_prometheus_protobuf({f}));
    ASSERT_EQ(families.size(), 1u);
    const pb::Histogram& h = families[0].metric(0).histogram();
    ASSERT_EQ(h.positive_span_size(), 2);
    EXPECT_EQ(h.positive_span(0).offset(), 4);
    EXPECT_EQ(h.positive_span(0).length(), 5u);
    EXPECT_EQ(h.positive_span(1).offset(), 12);
    EXPECT_EQ(h.positive_span(1).length(), 1u);
    EXPECT_EQ(native_counts(h),
              (std::map<int64_t, int64_t>{{4, 5}, {5, 1}, {6, 0}, {7, 0}, {8, 2}, {21, 9}}));
    const pb::Histogram& empty = families[0].metric(1).histogram();
    EXPECT_EQ(empty.sample_count(), 0u);
    EXPECT_EQ(empty.positive_span_size(), 0);
    EXPECT_GT(empty.zero_threshold(), 0.0);
    // A histogram with other bounds is classic only.
    MetricFamily linear{"y_seconds", "", MetricType::Histogram, {}};
    linear.metric.resize(1);
    linear.metric[0].histogram = {3, 1, {{1, 0.1}, {2, 0.2}, {3, 0.3}}};
    const auto decoded = decode(render_prometheus_protobuf({linear}));
    ASSERT_EQ(decoded.size(), 1u);
    const pb::Histogram& c = decoded[0].metric(0).histogram();
    EXPECT_EQ(c.bucket_size(), 4);
    EXPECT_EQ(c.zero_threshold(), 0.0);
    EXPECT_EQ(c.positive_span_size(), 0);
}

// A histogram with exact native buckets (NativeHistogramSet) is written with them: its
// schema, zero bucket and counts, and a count that is theirs; the classic buckets and
// exemplars stay. A series not in the set keeps the derived schema-0 form.
TEST(ExportersMetricsProtobuf, ExactNativeBucketsReplaceTheDerivedOnes) {
    std::vector<uint64_t> counts(10, 0);
    counts[4] = 3;
    const std::vector<Log2Histogram> series = {{counts, kNs, 60.0, {{"syscall", "read"}}},
                                               {counts, kNs, 60.0, {{"syscall", "write"}}}};
    MetricFamily f = log2_histogram_family("hostprof_syscall_latency_seconds", "", series);
    NativeHistogramSet natives;
    NativeBuckets exact;
    exact.schema = 3;
    exact.first_index = -239;
    exact.counts = {0, 1, 0, 0, 0, 2}; // native buckets -239 and -234
    exact.zero_threshold = 0x1p-30;
    exact.zero_count = 1;
    natives.set("hostprof_syscall_latency_seconds", {{"syscall", "read"}}, exact);
    EXPECT_NE(natives.find("hostprof_syscall_latency_seconds", {{"syscall", "read"}}), nullptr);
    EXPECT_EQ(natives.find("hostprof_syscall_latency_seconds", {{"syscall", "write"}}), nullptr);

    const auto families = decode(render_prometheus_protobuf({f}, {}, natives));
    ASSERT_EQ(families.size(), 1u);
    ASSERT_EQ(families[0].metric_size(), 2);
    const pb::Histogram& read = families[0].metric(0).histogram();
    EXPECT_EQ(read.schema(), 3);
    EXPECT_EQ(read.zero_threshold(), 0x1p-30);
    EXPECT_EQ(read.zero_count(), 1u);
    EXPECT_EQ(read.sample_count(), 4u);      // 1 + 1 + 2: the native buckets' own count
    EXPECT_EQ(read.bucket_size(), 11);       // classic buckets kept
    EXPECT_EQ(read.positive_span_size(), 2); // a gap of three empty buckets
    EXPECT_EQ(native_counts(read), (std::map<int64_t, int64_t>{{-238, 1}, {-234, 2}}));
    const pb::Histogram& write = families[0].metric(1).histogram();
    EXPECT_EQ(write.schema(), 0);
    EXPECT_EQ(write.sample_count(), 3u);
    EXPECT_EQ(native_counts(write), (std::map<int64_t, int64_t>{{-25, 3}}));
}

// A Debian `prometheus` (2.42) with native histograms on scrapes the protobuf body from a
// loopback stub: it asks for protobuf, stores the native form, and histogram_count,
// histogram_sum and histogram_quantile answer from it; an empty histogram scrapes too.
TEST(ExportersMetricsProtobuf, RealPrometheusStoresNativeHistograms) {
    HOSTPROF_REQUIRE_TOOL("prometheus");
    HOSTPROF_REQUIRE_TOOL("/usr/bin/python3");
    auto families = fixture_families();
    static const std::vector<uint64_t> none(20, 0);
    const std::vector<Log2Histogram> empty = {{none, kNs, std::nullopt, {}}};
    families.push_back(log2_histogram_family("hostprof_empty_seconds", "Never observed.", empty));
    const auto r = testing::scrape_with_prometheus(
        render_prometheus_protobuf(families, fixture_exemplars()),
        std::string(kProtobufContentType), "--enable-feature=native-histograms",
        "histogram_count(hostprof_empty_seconds)",
        {{"up", "up{job=\"exp\"}"},
         {"counter", "hostprof_ringbuf_events_total{ringbuf=\"profile\"}"},
         {"count", "histogram_count(hostprof_syscall_latency_seconds{syscall=\"read\"})"},
         {"sum", "histogram_sum(hostprof_syscall_latency_seconds{syscall=\"read\"})"},
         {"p50", "histogram_quantile(0.5, hostprof_syscall_latency_seconds{syscall=\"read\"})"},
         {"classic", "count(hostprof_syscall_latency_seconds_bucket)"},
         {"empty", "histogram_count(hostprof_empty_seconds)"}});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::cout << r.output;
    for (const char* want : {"up 1\n", "counter 1234\n", "count 18\n", "empty 0\n",
                             "classic None\n"}) // 2.42 keeps the native form only
        EXPECT_NE(r.output.find(want), std::string::npos) << "missing: " << want << "\n"
                                                          << r.output;
    auto number = [&](const std::string& key) {
        const size_t at = r.output.find(key + " ");
        return at == std::string::npos ? NAN : std::stod(r.output.substr(at + key.size() + 1));
    };
    EXPECT_NEAR(number("sum"), 123456e-9, 1e-12) << r.output;
    // The classic median is 3.2768 us (RealPrometheusScrapesOpenMetrics): rank 9 of 18,
    // 6/10 into [2.048, 4.096] us. Native bucket -18 is (1.907, 3.815] us: the same rank
    // lands within 10% of it (the native bounds are 7% lower).
    const double p50 = number("p50");
    EXPECT_GT(p50, 0.9 * 3.2768e-06) << r.output;
    EXPECT_LT(p50, 1.0 * 3.2768e-06) << r.output;
    const size_t accept = r.output.find("accept ");
    ASSERT_NE(accept, std::string::npos);
    const std::string header =
        r.output.substr(accept + 7, r.output.find('\n', accept) - accept - 7);
    EXPECT_EQ(choose_format(header), MetricsFormat::kProtobuf) << header;
}

} // namespace
} // namespace hostprof
