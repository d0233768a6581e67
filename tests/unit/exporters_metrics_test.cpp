// Prometheus text 0.0.4 and OpenMetrics 1.0: golden files, promtool, the Python
// client's strict OpenMetrics parser, Accept negotiation, log2 histograms.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "exporters/metrics.h"
#include "exporters_fixture.h"
#include "metrics_fixture.h"

namespace hostprof {
namespace {

using prometheus::MetricFamily;
using prometheus::MetricType;
using testing::fixture_exemplars;
using testing::fixture_families;

TEST(ExportersMetrics, Log2HistogramIsCumulativeBackfilledInBaseUnits) {
    const std::vector<uint64_t> counts = {1, 0, 2, 0, 5};
    const auto m = log2_histogram_metric({counts, 1e-6, std::nullopt, {{"disk", "vda"}}});
    ASSERT_EQ(m.histogram.bucket.size(), 6u);
    const std::vector<uint64_t> cumulative = {1, 1, 3, 3, 8, 8};
    for (size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(m.histogram.bucket[i].cumulative_count, cumulative[i]) << i;
        EXPECT_DOUBLE_EQ(m.histogram.bucket[i].upper_bound, std::ldexp(1.0, int(i) + 1) * 1e-6);
    }
    EXPECT_TRUE(std::isinf(m.histogram.bucket[5].upper_bound));
    EXPECT_EQ(m.histogram.bucket[5].cumulative_count, 8u);
    EXPECT_EQ(m.histogram.sample_count, 8u);
    // Estimated sum: 1.5 * (1*1 + 2*4 + 5*16) us.
    EXPECT_DOUBLE_EQ(m.histogram.sample_sum, 1.5 * 89 * 1e-6);
    EXPECT_EQ(m.label.size(), 1u);
    const auto exact = log2_histogram_metric({counts, 1.0, 1000.0, {}});
    EXPECT_DOUBLE_EQ(exact.histogram.sample_sum, 1000.0);
    EXPECT_DOUBLE_EQ(exact.histogram.bucket[0].upper_bound, 2.0);
}

TEST(ExportersMetrics, ChooseFormat) {
    EXPECT_EQ(choose_format(""), MetricsFormat::kPrometheusText);
    EXPECT_EQ(choose_format("*/*"), MetricsFormat::kPrometheusText);
    EXPECT_EQ(choose_format("text/plain"), MetricsFormat::kPrometheusText);
    // What Prometheus 2.x sends.
    EXPECT_EQ(choose_format(
                  "application/openmetrics-text;version=1.0.0,application/"
                  "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
              MetricsFormat::kOpenMetrics);
    EXPECT_EQ(choose_format("application/openmetrics-text"), MetricsFormat::kOpenMetrics);
    EXPECT_EQ(choose_format("Application/OpenMetrics-Text; Version=\"1.0.0\""),
              MetricsFormat::kOpenMetrics);
    EXPECT_EQ(choose_format("text/plain;q=1, application/openmetrics-text;q=0.5"),
              MetricsFormat::kPrometheusText);
    EXPECT_EQ(choose_format("application/openmetrics-text;version=2.0.0"),
              MetricsFormat::kPrometheusText);
    EXPECT_EQ(choose_format("application/openmetrics-text;q=0"), MetricsFormat::kPrometheusText);
    EXPECT_EQ(choose_format("application/openmetrics-text;q=abc"), MetricsFormat::kPrometheusText);
    EXPECT_EQ(choose_format(",,;;, application/openmetrics-text ; q=0.9 ,"),
              MetricsFormat::kOpenMetrics);
    EXPECT_EQ(content_type(MetricsFormat::kPrometheusText),
              "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(content_type(MetricsFormat::kOpenMetrics),
              "application/openmetrics-text; version=1.0.0; charset=utf-8");
    const auto [ct, body] =
        render_metrics_negotiated(fixture_families(), "application/openmetrics-text");
    EXPECT_EQ(ct, kOpenMetricsContentType);
    EXPECT_TRUE(body.ends_with("# EOF\n"));
}

TEST(ExportersMetrics, PrometheusTextGolden) {
    const std::string text = render_prometheus_text(fixture_families());
    EXPECT_NE(
        text.find("hostprof_syscall_latency_seconds_bucket{syscall=\"read\",le=\"+Inf\"} 18\n"),
        std::string::npos)
        << text;
    EXPECT_EQ(
        text.find("le=\"+Inf\"} "
                  "18\nhostprof_syscall_latency_seconds_bucket{syscall=\"read\",le=\"+Inf\"}"),
        std::string::npos)
        << "+Inf bucket must appear once";
    testing::expect_golden("metrics.prom", text);
}

TEST(ExportersMetrics, OpenMetricsGolden) {
    const std::string om = render_openmetrics(fixture_families(), fixture_exemplars());
    EXPECT_NE(om.find("# TYPE hostprof_ringbuf_events counter\n"), std::string::npos) << om;
    EXPECT_NE(om.find("hostprof_ringbuf_events_total{ringbuf=\"profile\"} 1234\n"),
              std::string::npos);
    EXPECT_NE(om.find("# UNIT hostprof_syscall_latency_seconds seconds\n"), std::string::npos);
    EXPECT_NE(om.find("# UNIT hostprof_resident_memory_bytes bytes\n"), std::string::npos);
    EXPECT_NE(
        om.find("hostprof_syscall_latency_seconds_bucket{syscall=\"read\",le=\"3.2768e-05\"} 18 "
                "# {pid=\"4242\",comm=\"postgres\",stack_id=\"9f1c\"} 2.1e-05 1700000000.5\n"),
        std::string::npos)
        << om;
    EXPECT_NE(
        om.find("hostprof_syscall_latency_seconds_bucket{syscall=\"write\",le=\"4.096e-06\"} 0\n"),
        std::string::npos)
        << "over-long exemplar must be left out\n"
        << om;
    EXPECT_NE(om.find("# TYPE hostprof_program_attached unknown\n"), std::string::npos);
    EXPECT_TRUE(om.ends_with("\n# EOF\n"));
    testing::expect_golden("metrics.om", om);
}

TEST(ExportersMetrics, OpenMetricsCanonicalBoundsAndInfAdded) {
    MetricFamily h{"x_bytes", "", MetricType::Histogram, {}};
    h.metric.resize(1);
    h.metric[0].histogram = {3, 10, {{1, 1.0}, {3, 1024.0}}};
    h.metric[0].timestamp_ms = 1500;
    const std::string om = render_openmetrics({h});
    EXPECT_EQ(om, "# TYPE x_bytes histogram\n"
                  "# UNIT x_bytes bytes\n"
                  "x_bytes_bucket{le=\"1.0\"} 1 1.5\n"
                  "x_bytes_bucket{le=\"1024.0\"} 3 1.5\n"
                  "x_bytes_bucket{le=\"+Inf\"} 3 1.5\n"
                  "x_bytes_count 3 1.5\n"
                  "x_bytes_sum 10 1.5\n"
                  "# EOF\n");
}

TEST(ExportersMetrics, ExemplarLookupIgnoresLabelOrder) {
    ExemplarSet ex;
    ex.set("f", {{"b", "2"}, {"a", "1"}}, 0.5, {{{"id", "x"}}, 0.4, std::nullopt});
    ASSERT_NE(ex.find("f", {{"a", "1"}, {"b", "2"}}, 0.5), nullptr);
    EXPECT_NE(ex.find("f", {{"b", "2"}, {"a", "1"}}, 0.5), nullptr);
    EXPECT_EQ(ex.find("f", {{"a", "1"}}, 0.5), nullptr);
    EXPECT_EQ(ex.find("f", {{"a", "1"}, {"b", "2"}}, 1.0), nullptr);
    EXPECT_EQ(ex.find("g", {{"a", "1"}, {"b", "2"}}, 0.5), nullptr);
}

// The real promtool (prometheus package) lints the 0.0.4 text: it must report nothing.
TEST(ExportersMetrics, PromtoolCheckMetrics) {
    HOSTPROF_REQUIRE_TOOL("promtool");
    const auto dir = testing::temp_dir("promtool");
    const std::string file = (dir / "metrics.prom").string();
    testing::write_file(file, render_prometheus_text(fixture_families()));
    const auto r = testing::run_command("promtool check metrics < " + file + " 2>&1");
    std::filesystem::remove_all(dir);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "") << r.output;

    // And it does catch problems: a counter without _total is reported.
    const auto bad_dir = testing::temp_dir("promtool-bad");
    MetricFamily bad{"hostprof_events", "Events.", MetricType::Counter, {}};
    bad.metric.resize(1);
    testing::write_file((bad_dir / "m").string(), render_prometheus_text({bad}));
    const auto rb =
        testing::run_command("promtool check metrics < " + (bad_dir / "m").string() + " 2>&1");
    std::filesystem::remove_all(bad_dir);
    EXPECT_NE(rb.exit_code, 0);
    EXPECT_NE(rb.output.find("_total"), std::string::npos) << rb.output;
}

// python3-prometheus-client's OpenMetrics parser is strict (it rejects a missing # EOF,
// non-canonical le, non-cumulative buckets, bad exemplars). Parse ours and print what it
// understood.
TEST(ExportersMetrics, PythonOpenMetricsParserAcceptsOutput) {
    HOSTPROF_REQUIRE_TOOL("/usr/bin/python3");
    const auto probe = testing::run_command(
        "/usr/bin/python3 -c 'import prometheus_client.openmetrics.parser' 2>&1");
    if (probe.exit_code != 0) {
        if (testing::in_ci())
            FAIL() << "python3-prometheus-client is required: " << probe.output;
        GTEST_SKIP() << "python3-prometheus-client not installed";
    }
    const auto dir = testing::temp_dir("om");
    const std::string file = (dir / "metrics.om").string();
    testing::write_file(file, render_openmetrics(fixture_families(), fixture_exemplars()));
    const std::string script = R"PY(
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for f in text_string_to_metric_families(open(sys.argv[1]).read()):
    print("family", f.name, f.type, f.unit)
    for s in f.samples:
        ex = ""
        if s.exemplar:
            ex = " exemplar=" + ",".join(k + "=" + v for k, v in sorted(s.exemplar.labels.items())) + \
                 " " + repr(s.exemplar.value) + " " + str(s.exemplar.timestamp)
        print(" ", s.name, sorted(s.labels.items()), repr(s.value) + ex)
)PY";
    testing::write_file((dir / "parse.py").string(), script);
    const auto r = testing::run_command("/usr/bin/python3 " + (dir / "parse.py").string() + " " +
                                        file + " 2>&1");
    std::filesystem::remove_all(dir);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    for (const char* want : {
             "family hostprof_syscall_latency_seconds histogram seconds",
             "family hostprof_ringbuf_events counter ",
             "family hostprof_resident_memory_bytes gauge bytes",
             "family hostprof_program_attached unknown ",
             "family hostprof_symbolize_duration_seconds summary seconds",
             "hostprof_ringbuf_events_total [('ringbuf', 'profile')] 1234\n",
             "hostprof_syscall_latency_seconds_bucket [('le', '3.2768e-05'), ('syscall', 'read')] "
             "18 "
             "exemplar=comm=postgres,pid=4242,stack_id=9f1c 2.1e-05 1700000000.500000000",
             "hostprof_syscall_latency_seconds_count [('syscall', 'write')] 4\n",
             "('mode', 'tp_btf \"x\"\\\\y\\nz')",
         })
        EXPECT_NE(r.output.find(want), std::string::npos) << "missing: " << want << "\n"
                                                          << r.output;
}

// The real thing: a Debian `prometheus` server scrapes our OpenMetrics (with exemplar
// storage on) from a loopback HTTP stub, then we read back values, a histogram_quantile,
// the exemplar, the target's health, and the Accept header Prometheus sent (which
// choose_format must map to OpenMetrics).
TEST(ExportersMetrics, RealPrometheusScrapesOpenMetrics) {
    HOSTPROF_REQUIRE_TOOL("prometheus");
    HOSTPROF_REQUIRE_TOOL("/usr/bin/python3");
    const auto r = testing::scrape_with_prometheus(
        render_openmetrics(fixture_families(), fixture_exemplars()),
        std::string(kOpenMetricsContentType), "--enable-feature=exemplar-storage",
        "hostprof_ringbuf_events_total{ringbuf=\"profile\"}",
        {{"up", "up{job=\"exp\"}"},
         {"counter", "hostprof_ringbuf_events_total{ringbuf=\"profile\"}"},
         {"bucket", "hostprof_syscall_latency_seconds_bucket{syscall=\"read\",le=\"3.2768e-05\"}"},
         {"p50",
          "histogram_quantile(0.5, hostprof_syscall_latency_seconds_bucket{syscall=\"read\"})"},
         {"rss", "hostprof_resident_memory_bytes"}},
        "hostprof_syscall_latency_seconds_bucket");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    for (const char* want :
         {"health up error ''\n", "up 1\n", "counter 1234\n", "bucket 18\n", "rss 52428800\n",
          "exemplar 3.2768e-05 [('comm', 'postgres'), ('pid', '4242'), ('stack_id', "
          "'9f1c')] 0.000021\n",
          "exemplar 1.6384e-05 [('pid', '77')] 0.000012\n"})
        EXPECT_NE(r.output.find(want), std::string::npos) << "missing: " << want << "\n"
                                                          << r.output;
    // Median of 18 reads: rank 9 in (2.048us, 4.096us] holding ranks 4..13 -> 3.2768us.
    const size_t p50 = r.output.find("p50 ");
    ASSERT_NE(p50, std::string::npos) << r.output;
    EXPECT_NEAR(std::stod(r.output.substr(p50 + 4)), 3.2768e-06, 1e-12) << r.output;
    const size_t accept = r.output.find("accept ");
    ASSERT_NE(accept, std::string::npos);
    const std::string header =
        r.output.substr(accept + 7, r.output.find('\n', accept) - accept - 7);
    EXPECT_EQ(choose_format(header), MetricsFormat::kOpenMetrics) << header;
}

} // namespace
} // namespace hostprof
