// Prometheus exposition: text format 0.0.4 (prometheus-cpp's TextSerializer), our own
// OpenMetrics 1.0 text with exemplars, the protobuf format with native histograms
// (metrics_protobuf.cpp), Accept negotiation, and log2 histograms.
#pragma once

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace hostprof {

enum class MetricsFormat { kPrometheusText, kOpenMetrics, kProtobuf };

inline constexpr std::string_view kPrometheusTextContentType =
    "text/plain; version=0.0.4; charset=utf-8";
inline constexpr std::string_view kOpenMetricsContentType =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
inline constexpr std::string_view kProtobufContentType =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

// Of the formats the Accept header names, the one with the highest q-value; on a tie
// protobuf, then OpenMetrics, then text. Protobuf: application/vnd.google.protobuf with
// proto=io.prometheus.client.MetricFamily and encoding=delimited (what Prometheus asks for
// with native histograms on). OpenMetrics: application/openmetrics-text, version 1.0.0,
// 0.0.1 or none. Text 0.0.4: text/plain (version 0.0.4 or none), text/* or */*, and any
// empty or unparsable header.
MetricsFormat choose_format(std::string_view accept_header);
std::string_view content_type(MetricsFormat format);

// Prometheus text format 0.0.4, by prometheus-cpp's TextSerializer.
std::string render_prometheus_text(const std::vector<prometheus::MetricFamily>& families);

using Labels = std::vector<prometheus::ClientMetric::Label>;

// One OpenMetrics exemplar: the labels of the outlier (e.g. pid, comm, stack_id) and
// its observed value in the metric's base unit.
struct Exemplar {
    Labels labels;
    double value = 0;
    std::optional<double> timestamp_seconds; // Unix time
};

// Exemplars keyed by (family name, label set of the series without `le`, bucket upper
// bound). Label order does not matter. One exemplar per bucket: the last one set wins.
class ExemplarSet {
  public:
    void set(std::string family, Labels series_labels, double upper_bound, Exemplar e);
    const Exemplar* find(const std::string& family, const Labels& series_labels,
                         double upper_bound) const;
    size_t size() const { return exemplars_.size(); }

  private:
    using Key = std::tuple<std::string, Labels, double>;
    std::map<Key, Exemplar> exemplars_;
};

// OpenMetrics 1.0 text: '# TYPE', '# UNIT' when the name ends with a base unit suffix,
// '# HELP', counters as '<name>_total' (the family name without '_total'), histograms as
// cumulative '_bucket{le=...}' ending with '+Inf' (added when missing), '_count', '_sum',
// exemplars on buckets, untyped as 'unknown', then '# EOF'. An exemplar whose label names
// and values exceed the 128 characters OpenMetrics allows is left out.
std::string render_openmetrics(const std::vector<prometheus::MetricFamily>& families,
                               const ExemplarSet& exemplars = {});

// Building families by hand: an empty family, and one series (a counter's or a gauge's
// value, by the family's type) appended to it.
prometheus::MetricFamily metric_family(std::string name, std::string help,
                                       prometheus::MetricType type);
void add_metric_value(prometheus::MetricFamily& f, double v, Labels labels = {});

// Whether an exemplar's label names and values fit the 128 characters OpenMetrics allows
// (Prometheus drops larger ones whatever the format).
bool exemplar_fits(const Exemplar& e);

// A classic histogram as the buckets of a native histogram of schema 0, whose bucket k
// holds (2^(k-1), 2^k]. Mapped only when every finite bound is twice the one before (at
// least two of them): every log2 histogram of ours is. Bucket i is then native bucket
// first_index + i, where first_index = round(log2(first bound)): exact when the bounds are
// powers of two (bytes); for nanoseconds shown in seconds (2^i ns is not a power of two of
// seconds) each kernel bucket goes to the native bucket that holds 90% of it on a log scale,
// whose bounds are 7% below the kernel's (1e-9 s = 2^-29.897 s). Observations above the
// last finite bound go one bucket further. The first bucket also holds observations of 0.
struct NativeBuckets {
    int32_t schema = 0; // 2^schema buckets per power of two: bucket i holds (b^(i-1), b^i]
    int32_t first_index = 0;
    std::vector<uint64_t> counts;     // counts[j]: native bucket first_index + j
    double zero_threshold = 0x1p-128; // the zero bucket: observations in [0, zero_threshold]
    uint64_t zero_count = 0;
};
std::optional<NativeBuckets> native_buckets(const prometheus::ClientMetric::Histogram& h);

// Native buckets counted exactly where the data is kept (the latency collectors with the
// native_schema setting), keyed by (family name, label set of the series): a histogram
// found here is written with these buckets instead of the ones native_buckets() derives
// from its classic buckets, and its count is theirs (zero_count + counts). Label order
// does not matter.
class NativeHistogramSet {
  public:
    void set(std::string family, Labels series_labels, NativeBuckets b);
    const NativeBuckets* find(const std::string& family, const Labels& series_labels) const;
    size_t size() const { return natives_.size(); }

  private:
    std::map<std::pair<std::string, Labels>, NativeBuckets> natives_;
};

// A source of metric families whose histograms may have exact native buckets: the
// /metrics handler collects it with a NativeHistogramSet.
class NativeHistogramSource {
  public:
    virtual ~NativeHistogramSource() = default;
    virtual std::vector<prometheus::MetricFamily>
    collect_with_native(NativeHistogramSet& natives) const = 0;
};

// The Prometheus protobuf exposition: io.prometheus.client.MetricFamily messages, each
// preceded by its length as a varint (exporters/metrics.proto is the schema, written from
// the published field numbers). Histograms carry their classic buckets with exemplars and
// a native form too: the exact buckets of `natives` where it has the series, else what
// native_buckets() derives (schema 0). A Prometheus with native histograms on stores the
// native form, one without it the classic buckets.
std::string render_prometheus_protobuf(const std::vector<prometheus::MetricFamily>& families,
                                       const ExemplarSet& exemplars = {},
                                       const NativeHistogramSet& natives = {});

// Renders in the format chosen by choose_format; returns {Content-Type, body}.
std::pair<std::string, std::string>
render_metrics_negotiated(const std::vector<prometheus::MetricFamily>& families,
                          std::string_view accept_header, const ExemplarSet& exemplars = {},
                          const NativeHistogramSet& natives = {});

// A log2 histogram as the kernel keeps it: counts[i] events in [2^i, 2^(i+1)) units
// (bucket 0 also holds 0). `unit_in_base` converts one unit to the metric's base unit
// (1e-9 for nanoseconds -> seconds, 1e-6 for microseconds, 1 for bytes).
struct Log2Histogram {
    std::span<const uint64_t> counts;
    double unit_in_base = 1.0;
    // Sum of the observations, in units. When the kernel did not keep one it is
    // estimated as 1.5 * 2^i per event of bucket i (the middle of the bucket).
    std::optional<double> sum;
    Labels labels;
};

// One histogram series in base units: every bucket le=2^(i+1)*unit_in_base for
// i < counts.size() (empty ones too, so the series set never changes between scrapes),
// cumulative, then +Inf; sample_count = total.
prometheus::ClientMetric log2_histogram_metric(const Log2Histogram& h);

// The `le` of bucket i: 2^(i+1) * unit_in_base. Use it as the ExemplarSet key so an
// exemplar lands on exactly the bucket log2_histogram_metric emits.
double log2_bucket_upper_bound(size_t i, double unit_in_base);

prometheus::MetricFamily log2_histogram_family(std::string name, std::string help,
                                               std::span<const Log2Histogram> series);

} // namespace hostprof
