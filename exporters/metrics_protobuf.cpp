// The Prometheus protobuf exposition (exporters/metrics.proto), with native histograms.
// Encoded straight into proto::Writer buffers: a message is written into a scratch
// writer, then copied into its parent as a length-delimited field.
#include <algorithm>
#include <cmath>
#include <limits>

#include "exporters/metrics.h"
#include "exporters/proto_writer.h"

namespace hostprof {

namespace {

// Field numbers of exporters/metrics.proto.
namespace field {
constexpr uint32_t kFamilyName = 1, kFamilyHelp = 2, kFamilyType = 3, kFamilyMetric = 4;
constexpr uint32_t kMetricLabel = 1, kMetricGauge = 2, kMetricCounter = 3, kMetricSummary = 4,
                   kMetricUntyped = 5, kMetricTimestampMs = 6, kMetricHistogram = 7;
constexpr uint32_t kLabelName = 1, kLabelValue = 2;
constexpr uint32_t kValue = 1; // Gauge, Counter, Untyped
constexpr uint32_t kSummaryCount = 1, kSummarySum = 2, kSummaryQuantile = 3;
constexpr uint32_t kQuantileQuantile = 1, kQuantileValue = 2;
constexpr uint32_t kHistCount = 1, kHistSum = 2, kHistBucket = 3, kHistSchema = 5,
                   kHistZeroThreshold = 6, kHistZeroCount = 7, kHistPositiveSpan = 12,
                   kHistPositiveDelta = 13, kHistExemplars = 16;
constexpr uint32_t kBucketCumulativeCount = 1, kBucketUpperBound = 2, kBucketExemplar = 3;
constexpr uint32_t kSpanOffset = 1, kSpanLength = 2;
constexpr uint32_t kExemplarLabel = 1, kExemplarValue = 2, kExemplarTimestamp = 3;
constexpr uint32_t kTimestampSeconds = 1, kTimestampNanos = 2;
} // namespace field

// MetricType of metrics.proto.
uint64_t type_code(prometheus::MetricType t) {
    switch (t) {
    case prometheus::MetricType::Counter:
        return 0;
    case prometheus::MetricType::Gauge:
        return 1;
    case prometheus::MetricType::Summary:
        return 2;
    case prometheus::MetricType::Untyped:
        break;
    case prometheus::MetricType::Histogram:
        return 4;
    }
    return 3;
}

// Up to this many empty buckets are written inside a span rather than starting a new one
// (two cost less than a new span's offset and length).
constexpr size_t kMaxGapInSpan = 2;

// Scratch writers, one per nesting level, reused for every message of that level.
struct Scratch {
    proto::Writer metric, value, item, exemplar, label;
};

void write_label(proto::Writer& parent, uint32_t field, proto::Writer& scratch,
                 const prometheus::ClientMetric::Label& l) {
    scratch.clear();
    scratch.string_field(field::kLabelName, l.name);
    scratch.string_field(field::kLabelValue, l.value);
    parent.len_field(field, scratch.view());
}

void write_exemplar(proto::Writer& parent, uint32_t field, Scratch& s, const Exemplar& e) {
    s.exemplar.clear();
    for (const auto& l : e.labels)
        write_label(s.exemplar, field::kExemplarLabel, s.label, l);
    s.exemplar.double_field(field::kExemplarValue, e.value);
    if (e.timestamp_seconds) {
        const double secs = std::floor(*e.timestamp_seconds);
        s.label.clear();
        s.label.int64_field(field::kTimestampSeconds, static_cast<int64_t>(secs));
        s.label.int64_field(field::kTimestampNanos,
                            std::llround((*e.timestamp_seconds - secs) * 1e9) % 1'000'000'000);
        s.exemplar.len_field(field::kExemplarTimestamp, s.label.view());
    }
    parent.len_field(field, s.exemplar.view());
}

void write_histogram(proto::Writer& out, Scratch& s, const std::string& family,
                     const prometheus::ClientMetric& m, const ExemplarSet& exemplars,
                     const NativeHistogramSet& natives) {
    const auto& h = m.histogram;
    const bool any_exemplars = exemplars.size() > 0;
    Labels key_labels = m.label;
    if (any_exemplars || natives.size() > 0)
        std::sort(key_labels.begin(), key_labels.end());
    const NativeBuckets* exact = natives.size() > 0 ? natives.find(family, key_labels) : nullptr;
    uint64_t count = h.sample_count;
    if (exact != nullptr) {
        // The native buckets were read from the kernel just after the classic ones: the
        // count is theirs, so that a native histogram's buckets never exceed its count.
        count = exact->zero_count;
        for (uint64_t c : exact->counts)
            count += c;
    }
    out.uint64_field(field::kHistCount, count);
    out.double_field(field::kHistSum, h.sample_sum);
    std::vector<const Exemplar*> timestamped; // for the native histogram's own list
    auto bucket = [&](double upper, uint64_t cumulative) {
        s.item.clear();
        s.item.uint64_field(field::kBucketCumulativeCount, cumulative);
        s.item.double_field(field::kBucketUpperBound, upper);
        if (any_exemplars)
            if (const Exemplar* e = exemplars.find(family, key_labels, upper);
                e != nullptr && exemplar_fits(*e)) {
                write_exemplar(s.item, field::kBucketExemplar, s, *e);
                if (e->timestamp_seconds)
                    timestamped.push_back(e);
            }
        out.len_field(field::kHistBucket, s.item.view());
    };
    double last = -std::numeric_limits<double>::infinity();
    for (const auto& b : h.bucket) {
        bucket(b.upper_bound, b.cumulative_count);
        last = b.upper_bound;
    }
    if (last != std::numeric_limits<double>::infinity())
        bucket(std::numeric_limits<double>::infinity(), h.sample_count);

    const std::optional<NativeBuckets> derived =
        exact == nullptr ? native_buckets(h) : std::optional<NativeBuckets>();
    const NativeBuckets* native = exact != nullptr ? exact : derived ? &*derived : nullptr;
    if (native == nullptr)
        return;
    // Spans over the non-empty buckets. A positive zero threshold marks the histogram as
    // native for every Prometheus since 2.40 (2.42 looks no further, so an empty native
    // histogram would otherwise read as a classic one).
    out.sint64_field(field::kHistSchema, native->schema);
    out.double_field(field::kHistZeroThreshold, native->zero_threshold);
    out.uint64_field(field::kHistZeroCount, native->zero_count);
    std::vector<int64_t> deltas;
    int64_t previous_count = 0;
    size_t span_start = 0, span_end = 0; // [start, end) of the open span in counts
    bool open = false;
    // A span's offset: the index of its first bucket for the first span, else the number
    // of buckets between the previous span's end and its start.
    std::optional<int64_t> previous_span_end_index;
    auto close_span = [&] {
        const int64_t start_index = native->first_index + static_cast<int64_t>(span_start);
        s.item.clear();
        s.item.sint64_field(field::kSpanOffset, start_index - previous_span_end_index.value_or(0));
        s.item.uint64_field(field::kSpanLength, span_end - span_start);
        out.len_field(field::kHistPositiveSpan, s.item.view());
        previous_span_end_index = native->first_index + static_cast<int64_t>(span_end);
    };
    for (size_t j = 0; j < native->counts.size(); ++j) {
        if (native->counts[j] == 0)
            continue;
        if (open && j - span_end > kMaxGapInSpan) {
            close_span();
            open = false;
        }
        if (!open) {
            span_start = j;
            span_end = j;
            open = true;
        }
        for (; span_end <= j; ++span_end) { // the gap's empty buckets, then bucket j
            const auto count = static_cast<int64_t>(native->counts[span_end]);
            deltas.push_back(count - previous_count);
            previous_count = count;
        }
    }
    if (open)
        close_span();
    out.packed_field(field::kHistPositiveDelta, deltas.begin(), deltas.end(),
                     [](int64_t d) { return proto::zigzag(d); });
    for (const Exemplar* e : timestamped)
        write_exemplar(out, field::kHistExemplars, s, *e);
}

void write_metric(proto::Writer& out, Scratch& s, const prometheus::MetricFamily& f,
                  const prometheus::ClientMetric& m, const ExemplarSet& exemplars,
                  const NativeHistogramSet& natives) {
    for (const auto& l : m.label)
        write_label(out, field::kMetricLabel, s.item, l);
    s.value.clear();
    switch (f.type) {
    case prometheus::MetricType::Counter:
        s.value.double_field(field::kValue, m.counter.value);
        out.len_field(field::kMetricCounter, s.value.view());
        break;
    case prometheus::MetricType::Gauge:
        s.value.double_field(field::kValue, m.gauge.value);
        out.len_field(field::kMetricGauge, s.value.view());
        break;
    case prometheus::MetricType::Untyped:
        s.value.double_field(field::kValue, m.untyped.value);
        out.len_field(field::kMetricUntyped, s.value.view());
        break;
    case prometheus::MetricType::Summary:
        s.value.uint64_field(field::kSummaryCount, m.summary.sample_count);
        s.value.double_field(field::kSummarySum, m.summary.sample_sum);
        for (const auto& q : m.summary.quantile) {
            s.item.clear();
            s.item.double_field(field::kQuantileQuantile, q.quantile);
            s.item.double_field(field::kQuantileValue, q.value);
            s.value.len_field(field::kSummaryQuantile, s.item.view());
        }
        out.len_field(field::kMetricSummary, s.value.view());
        break;
    case prometheus::MetricType::Histogram:
        write_histogram(s.value, s, f.name, m, exemplars, natives);
        out.len_field(field::kMetricHistogram, s.value.view());
        break;
    }
    out.int64_field(field::kMetricTimestampMs, m.timestamp_ms);
}

} // namespace

std::optional<NativeBuckets> native_buckets(const prometheus::ClientMetric::Histogram& h) {
    size_t finite = 0;
    while (finite < h.bucket.size() && std::isfinite(h.bucket[finite].upper_bound))
        ++finite;
    if (finite < 2 || !(h.bucket[0].upper_bound > 0))
        return std::nullopt;
    NativeBuckets nb;
    nb.counts.reserve(finite + 1);
    uint64_t below = 0;
    for (size_t i = 0; i < finite; ++i) {
        const auto& b = h.bucket[i];
        if ((i > 0 && b.upper_bound != 2 * h.bucket[i - 1].upper_bound) ||
            b.cumulative_count < below)
            return std::nullopt;
        nb.counts.push_back(b.cumulative_count - below);
        below = b.cumulative_count;
    }
    if (h.sample_count < below)
        return std::nullopt;
    if (h.sample_count > below)
        nb.counts.push_back(h.sample_count - below);
    const double first = std::round(std::log2(h.bucket[0].upper_bound));
    if (!(first > -1000 && first < 1000)) // bounds of doubles: never hit by real ones
        return std::nullopt;
    nb.first_index = static_cast<int32_t>(first);
    return nb;
}

std::string render_prometheus_protobuf(const std::vector<prometheus::MetricFamily>& families,
                                       const ExemplarSet& exemplars,
                                       const NativeHistogramSet& natives) {
    proto::Writer out, family;
    Scratch s;
    for (const prometheus::MetricFamily& f : families) {
        family.clear();
        family.string_field(field::kFamilyName, f.name);
        family.string_field(field::kFamilyHelp, f.help);
        family.uint64_field(field::kFamilyType, type_code(f.type));
        for (const prometheus::ClientMetric& m : f.metric) {
            s.metric.clear();
            write_metric(s.metric, s, f, m, exemplars, natives);
            family.len_field(field::kFamilyMetric, s.metric.view());
        }
        out.varint(family.size());
        out.bytes(family.view());
    }
    return std::string(out.view());
}

} // namespace hostprof
