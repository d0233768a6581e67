#include "exporters/metrics.h"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <ostream>

#include "exporters/output.h"

namespace hostprof {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr size_t kMaxExemplarLabelChars = 128; // OpenMetrics 1.0, "Exemplars"

// ---- Accept negotiation ----

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

struct MediaRange {
    std::string_view type;
    std::string_view version;         // empty when absent
    std::string_view proto, encoding; // protobuf's parameters, empty when absent
    double q = 1.0;
};

std::optional<MediaRange> parse_media_range(std::string_view item) {
    MediaRange r;
    size_t semi = item.find(';');
    r.type = trim(item.substr(0, semi));
    if (r.type.empty())
        return std::nullopt;
    while (semi != std::string_view::npos) {
        item.remove_prefix(semi + 1);
        semi = item.find(';');
        const std::string_view param = trim(item.substr(0, semi));
        const size_t eq = param.find('=');
        if (eq == std::string_view::npos)
            continue;
        const std::string_view name = trim(param.substr(0, eq));
        std::string_view value = trim(param.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
            value = value.substr(1, value.size() - 2);
        if (iequals(name, "q")) {
            double q = 0;
            auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), q);
            if (ec != std::errc{} || ptr != value.data() + value.size() || !(q >= 0 && q <= 1))
                return std::nullopt;
            r.q = q;
        } else if (iequals(name, "version")) {
            r.version = value;
        } else if (iequals(name, "proto")) {
            r.proto = value;
        } else if (iequals(name, "encoding")) {
            r.encoding = value;
        }
    }
    return r;
}

// ---- number and string formatting ----

void append_double(std::string& out, double v) {
    if (std::isnan(v)) {
        out += "NaN";
    } else if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
    } else {
        char buf[64];
        auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
        out.append(buf, ec == std::errc{} ? ptr : buf);
    }
}

// Bucket bounds in the canonical OpenMetrics form: "1.0", not "1".
void append_le(std::string& out, double v) {
    const size_t start = out.size();
    append_double(out, v);
    if (std::isfinite(v) && out.find_first_of(".e", start) == std::string::npos)
        out += ".0";
}

void append_uint(std::string& out, uint64_t v) {
    char buf[24];
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, ec == std::errc{} ? ptr : buf);
}

void append_escaped(std::string& out, std::string_view s) {
    for (char c : s) {
        switch (c) {
        case '\\':
            out += "\\\\";
            break;
        case '"':
            out += "\\\"";
            break;
        case '\n':
            out += "\\n";
            break;
        default:
            out += c;
        }
    }
}

void append_labels(std::string& out, const Labels& labels, std::string_view extra_name = {},
                   std::string_view extra_value = {}) {
    if (labels.empty() && extra_name.empty())
        return;
    out += '{';
    bool first = true;
    for (const auto& l : labels) {
        if (!first)
            out += ',';
        first = false;
        out += l.name;
        out += "=\"";
        append_escaped(out, l.value);
        out += '"';
    }
    if (!extra_name.empty()) {
        if (!first)
            out += ',';
        out += extra_name;
        out += "=\"";
        out += extra_value; // already formatted, needs no escaping
        out += '"';
    }
    out += '}';
}

void append_timestamp(std::string& out, const prometheus::ClientMetric& m) {
    if (m.timestamp_ms == 0)
        return;
    out += ' ';
    append_double(out, static_cast<double>(m.timestamp_ms) / 1000.0);
}

size_t utf8_chars(std::string_view s) {
    return static_cast<size_t>(std::count_if(
        s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

void append_exemplar(std::string& out, const Exemplar& e) {
    if (!exemplar_fits(e))
        return;
    out += " # ";
    if (e.labels.empty())
        out += "{}";
    else
        append_labels(out, e.labels);
    out += ' ';
    append_double(out, e.value);
    if (e.timestamp_seconds) {
        out += ' ';
        append_double(out, *e.timestamp_seconds);
    }
}

Labels sorted(Labels labels) {
    std::sort(labels.begin(), labels.end());
    return labels;
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() > suffix.size() && s.ends_with(suffix);
}

// The unit OpenMetrics lets us declare: the name's suffix, when it is a base unit.
std::string_view unit_of(std::string_view name) {
    static constexpr std::array<std::string_view, 9> kUnits = {
        "seconds", "bytes", "ratio", "celsius", "meters", "volts", "amperes", "joules", "grams"};
    for (std::string_view unit : kUnits) {
        if (ends_with(name, unit) && name[name.size() - unit.size() - 1] == '_')
            return unit;
    }
    return {};
}

std::string_view om_type(prometheus::MetricType t) {
    switch (t) {
    case prometheus::MetricType::Counter:
        return "counter";
    case prometheus::MetricType::Gauge:
        return "gauge";
    case prometheus::MetricType::Summary:
        return "summary";
    case prometheus::MetricType::Histogram:
        return "histogram";
    case prometheus::MetricType::Untyped:
        break;
    }
    return "unknown";
}

void append_sample(std::string& out, std::string_view name, std::string_view suffix,
                   const prometheus::ClientMetric& m, double value) {
    out += name;
    out += suffix;
    append_labels(out, m.label);
    out += ' ';
    append_double(out, value);
    append_timestamp(out, m);
    out += '\n';
}

void append_count(std::string& out, std::string_view name, std::string_view suffix,
                  const prometheus::ClientMetric& m, uint64_t value) {
    out += name;
    out += suffix;
    append_labels(out, m.label);
    out += ' ';
    append_uint(out, value);
    append_timestamp(out, m);
    out += '\n';
}

void append_histogram(std::string& out, const std::string& family, std::string_view name,
                      const prometheus::ClientMetric& m, const ExemplarSet& exemplars) {
    const bool any_exemplars = exemplars.size() > 0;
    const Labels key_labels = any_exemplars ? sorted(m.label) : Labels{};
    std::string le;
    double last = -kInf;
    auto bucket = [&](double upper, uint64_t count) {
        le.clear();
        append_le(le, upper);
        out += name;
        out += "_bucket";
        append_labels(out, m.label, "le", le);
        out += ' ';
        append_uint(out, count);
        append_timestamp(out, m);
        if (any_exemplars)
            if (const Exemplar* e = exemplars.find(family, key_labels, upper))
                append_exemplar(out, *e);
        out += '\n';
    };
    for (const auto& b : m.histogram.bucket) {
        bucket(b.upper_bound, b.cumulative_count);
        last = b.upper_bound;
    }
    if (last != kInf)
        bucket(kInf, m.histogram.sample_count);
    append_count(out, name, "_count", m, m.histogram.sample_count);
    append_sample(out, name, "_sum", m, m.histogram.sample_sum);
}

} // namespace

prometheus::MetricFamily metric_family(std::string name, std::string help,
                                       prometheus::MetricType type) {
    prometheus::MetricFamily f;
    f.name = std::move(name);
    f.help = std::move(help);
    f.type = type;
    return f;
}

void add_metric_value(prometheus::MetricFamily& f, double v, Labels labels) {
    prometheus::ClientMetric m;
    m.label = std::move(labels);
    if (f.type == prometheus::MetricType::Counter)
        m.counter.value = v;
    else
        m.gauge.value = v;
    f.metric.push_back(std::move(m));
}

bool exemplar_fits(const Exemplar& e) {
    size_t chars = 0;
    for (const auto& l : e.labels)
        chars += utf8_chars(l.name) + utf8_chars(l.value);
    return chars <= kMaxExemplarLabelChars;
}

MetricsFormat choose_format(std::string_view accept_header) {
    double q_protobuf = 0;
    double q_openmetrics = 0;
    double q_text = 0;
    size_t pos = 0;
    while (pos <= accept_header.size()) {
        size_t comma = accept_header.find(',', pos);
        if (comma == std::string_view::npos)
            comma = accept_header.size();
        const std::optional<MediaRange> r =
            parse_media_range(accept_header.substr(pos, comma - pos));
        pos = comma + 1;
        if (!r)
            continue;
        if (iequals(r->type, "application/vnd.google.protobuf")) {
            if (r->proto == "io.prometheus.client.MetricFamily" && r->encoding == "delimited")
                q_protobuf = std::max(q_protobuf, r->q);
        } else if (iequals(r->type, "application/openmetrics-text")) {
            if (r->version.empty() || r->version == "1.0.0" || r->version == "0.0.1")
                q_openmetrics = std::max(q_openmetrics, r->q);
        } else if (iequals(r->type, "text/plain")) {
            if (r->version.empty() || r->version == "0.0.4")
                q_text = std::max(q_text, r->q);
        } else if (iequals(r->type, "text/*") || r->type == "*/*") {
            q_text = std::max(q_text, r->q);
        }
    }
    if (q_protobuf > 0 && q_protobuf >= q_openmetrics && q_protobuf >= q_text)
        return MetricsFormat::kProtobuf;
    return q_openmetrics > 0 && q_openmetrics >= q_text ? MetricsFormat::kOpenMetrics
                                                        : MetricsFormat::kPrometheusText;
}

std::string_view content_type(MetricsFormat format) {
    switch (format) {
    case MetricsFormat::kProtobuf:
        return kProtobufContentType;
    case MetricsFormat::kOpenMetrics:
        return kOpenMetricsContentType;
    case MetricsFormat::kPrometheusText:
        break;
    }
    return kPrometheusTextContentType;
}

std::string render_prometheus_text(const std::vector<prometheus::MetricFamily>& families) {
    // prometheus-cpp 1.0.1 writes HELP verbatim, so a '\n' in it breaks the exposition
    // (promtool: "expected float as value"). Escape '\\' and '\n' as 0.0.4 requires, on
    // a copy only when some HELP needs it.
    auto needs_escape = [](const prometheus::MetricFamily& f) {
        return f.help.find_first_of("\\\n") != std::string::npos;
    };
    // Written into a string reserved from the last render's size (exporters/output.h),
    // not the growing buffer of the std::ostringstream Serialize(families) returns.
    static SizeHint hint;
    std::string out;
    reserve_prefaulted(out, hint.next());
    StringAppendBuf buf(out);
    std::ostream os(&buf);
    if (std::none_of(families.begin(), families.end(), needs_escape)) {
        prometheus::TextSerializer{}.Serialize(os, families);
        hint.update(out.size());
        return out;
    }
    std::vector<prometheus::MetricFamily> escaped = families;
    for (prometheus::MetricFamily& f : escaped) {
        if (!needs_escape(f))
            continue;
        std::string help;
        for (char c : f.help)
            help += c == '\\' ? "\\\\" : c == '\n' ? "\\n" : std::string(1, c);
        f.help = std::move(help);
    }
    prometheus::TextSerializer{}.Serialize(os, escaped);
    hint.update(out.size());
    return out;
}

void ExemplarSet::set(std::string family, Labels series_labels, double upper_bound, Exemplar e) {
    exemplars_.insert_or_assign(
        Key{std::move(family), sorted(std::move(series_labels)), upper_bound}, std::move(e));
}

const Exemplar* ExemplarSet::find(const std::string& family, const Labels& series_labels,
                                  double upper_bound) const {
    // Callers pass sorted labels on the hot path; sort here only if they are not.
    const bool is_sorted = std::is_sorted(series_labels.begin(), series_labels.end());
    auto it = exemplars_.find(
        Key{family, is_sorted ? series_labels : sorted(series_labels), upper_bound});
    return it == exemplars_.end() ? nullptr : &it->second;
}

void NativeHistogramSet::set(std::string family, Labels series_labels, NativeBuckets b) {
    natives_.insert_or_assign({std::move(family), sorted(std::move(series_labels))}, std::move(b));
}

const NativeBuckets* NativeHistogramSet::find(const std::string& family,
                                              const Labels& series_labels) const {
    const bool is_sorted = std::is_sorted(series_labels.begin(), series_labels.end());
    auto it = natives_.find({family, is_sorted ? series_labels : sorted(series_labels)});
    return it == natives_.end() ? nullptr : &it->second;
}

std::string render_openmetrics(const std::vector<prometheus::MetricFamily>& families,
                               const ExemplarSet& exemplars) {
    static SizeHint hint;
    std::string out;
    reserve_prefaulted(out, hint.next());
    for (const prometheus::MetricFamily& f : families) {
        std::string_view name = f.name;
        if (f.type == prometheus::MetricType::Counter && ends_with(name, "_total"))
            name.remove_suffix(6);
        out += "# TYPE ";
        out += name;
        out += ' ';
        out += om_type(f.type);
        out += '\n';
        if (const std::string_view unit = unit_of(name); !unit.empty()) {
            out += "# UNIT ";
            out += name;
            out += ' ';
            out += unit;
            out += '\n';
        }
        if (!f.help.empty()) {
            out += "# HELP ";
            out += name;
            out += ' ';
            append_escaped(out, f.help);
            out += '\n';
        }
        for (const prometheus::ClientMetric& m : f.metric) {
            switch (f.type) {
            case prometheus::MetricType::Counter:
                append_sample(out, name, "_total", m, m.counter.value);
                break;
            case prometheus::MetricType::Gauge:
                append_sample(out, name, "", m, m.gauge.value);
                break;
            case prometheus::MetricType::Untyped:
                append_sample(out, name, "", m, m.untyped.value);
                break;
            case prometheus::MetricType::Summary: {
                std::string q;
                for (const auto& quantile : m.summary.quantile) {
                    q.clear();
                    append_double(q, quantile.quantile);
                    out += name;
                    append_labels(out, m.label, "quantile", q);
                    out += ' ';
                    append_double(out, quantile.value);
                    append_timestamp(out, m);
                    out += '\n';
                }
                append_count(out, name, "_count", m, m.summary.sample_count);
                append_sample(out, name, "_sum", m, m.summary.sample_sum);
                break;
            }
            case prometheus::MetricType::Histogram:
                append_histogram(out, f.name, name, m, exemplars);
                break;
            }
        }
    }
    out += "# EOF\n";
    hint.update(out.size());
    return out;
}

std::pair<std::string, std::string>
render_metrics_negotiated(const std::vector<prometheus::MetricFamily>& families,
                          std::string_view accept_header, const ExemplarSet& exemplars,
                          const NativeHistogramSet& natives) {
    const MetricsFormat format = choose_format(accept_header);
    std::string body;
    switch (format) {
    case MetricsFormat::kProtobuf:
        body = render_prometheus_protobuf(families, exemplars, natives);
        break;
    case MetricsFormat::kOpenMetrics:
        body = render_openmetrics(families, exemplars);
        break;
    case MetricsFormat::kPrometheusText:
        body = render_prometheus_text(families);
        break;
    }
    return {std::string(content_type(format)), std::move(body)};
}

double log2_bucket_upper_bound(size_t i, double unit_in_base) {
    return std::ldexp(1.0, static_cast<int>(i) + 1) * unit_in_base;
}

prometheus::ClientMetric log2_histogram_metric(const Log2Histogram& h) {
    prometheus::ClientMetric m;
    m.label = h.labels;
    uint64_t cumulative = 0;
    double estimated_sum = 0;
    m.histogram.bucket.reserve(h.counts.size() + 1);
    for (size_t i = 0; i < h.counts.size(); ++i) {
        cumulative += h.counts[i];
        estimated_sum +=
            1.5 * std::ldexp(1.0, static_cast<int>(i)) * static_cast<double>(h.counts[i]);
        m.histogram.bucket.push_back({cumulative, log2_bucket_upper_bound(i, h.unit_in_base)});
    }
    m.histogram.bucket.push_back({cumulative, kInf});
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = h.sum.value_or(estimated_sum) * h.unit_in_base;
    return m;
}

prometheus::MetricFamily log2_histogram_family(std::string name, std::string help,
                                               std::span<const Log2Histogram> series) {
    prometheus::MetricFamily f;
    f.name = std::move(name);
    f.help = std::move(help);
    f.type = prometheus::MetricType::Histogram;
    f.metric.reserve(series.size());
    for (const Log2Histogram& h : series)
        f.metric.push_back(log2_histogram_metric(h));
    return f;
}

} // namespace hostprof
