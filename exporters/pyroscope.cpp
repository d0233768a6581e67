#include "exporters/pyroscope.h"

#include <algorithm>
#include <random>

#include "exporters/proto_writer.h"

namespace hostprof {
namespace {

// push.proto field numbers.
constexpr uint32_t kRequestSeries = 1;
constexpr uint32_t kSeriesLabels = 1, kSeriesSamples = 2;
constexpr uint32_t kSampleRawProfile = 1, kSampleId = 2;
constexpr uint32_t kLabelName = 1, kLabelValue = 2;

void encode_series(const PyroscopeSeries& s, proto::Writer& out) {
    proto::Writer body, inner;
    for (const auto& [name, value] : normalize_labels(s.labels)) {
        inner.clear();
        inner.string_field(kLabelName, name);
        inner.string_field(kLabelValue, value);
        body.len_field(kSeriesLabels, inner.view());
    }
    inner.clear();
    inner.string_field(kSampleRawProfile, s.raw_profile);
    inner.string_field(kSampleId, s.id);
    body.len_field(kSeriesSamples, inner.view());
    out.len_field(kRequestSeries, body.view());
}

} // namespace

std::string encode_push_request(const std::vector<PyroscopeSeries>& series) {
    proto::Writer out;
    for (const PyroscopeSeries& s : series)
        encode_series(s, out);
    return std::string(out.view());
}

size_t encoded_series_size(const PyroscopeSeries& series) {
    proto::Writer out;
    encode_series(series, out);
    return out.size();
}

LabelList normalize_labels(LabelList labels) {
    std::stable_sort(labels.begin(), labels.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    labels.erase(std::unique(labels.begin(), labels.end(),
                             [](const auto& a, const auto& b) { return a.first == b.first; }),
                 labels.end());
    return labels;
}

bool valid_label_name(std::string_view name) {
    if (name.empty())
        return false;
    for (size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

bool parse_label_list(std::string_view text, LabelList* out, std::string* error) {
    LabelList labels;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t comma = text.find(',', pos);
        if (comma == std::string_view::npos)
            comma = text.size();
        std::string_view item = text.substr(pos, comma - pos);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
            item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
            item.remove_suffix(1);
        pos = comma + 1;
        if (item.empty())
            continue;
        const size_t eq = item.find('=');
        if (eq == std::string_view::npos) {
            *error = "'" + std::string(item) + "' is not NAME=VALUE";
            return false;
        }
        std::string_view name = item.substr(0, eq);
        std::string_view value = item.substr(eq + 1);
        if (!valid_label_name(name)) {
            *error = "'" + std::string(name) + "' is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)";
            return false;
        }
        if (name.starts_with("__")) {
            *error = "label names starting with __ are reserved ('" + std::string(name) + "')";
            return false;
        }
        if (value.empty()) {
            *error = "label '" + std::string(name) + "' has an empty value";
            return false;
        }
        for (const auto& [n, v] : labels)
            if (n == name) {
                *error = "label '" + std::string(name) + "' given twice";
                return false;
            }
        labels.emplace_back(name, value);
    }
    *out = std::move(labels);
    return true;
}

std::string random_uuid() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    uint64_t hi = rng(), lo = rng();
    hi = (hi & ~0xF000ULL) | 0x4000ULL;             // version 4
    lo = (lo & ~(0xC0ULL << 56)) | (0x80ULL << 56); // variant 10
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    for (int i = 0; i < 32; ++i) {
        const uint64_t word = i < 16 ? hi : lo;
        const int shift = 60 - 4 * (i % 16);
        out += kHex[(word >> shift) & 0xF];
        if (i == 7 || i == 11 || i == 15 || i == 19)
            out += '-';
    }
    return out;
}

} // namespace hostprof
