// Pyroscope Push API request bodies (exporters/push.proto): series of labelled pprof
// profiles, encoded for `POST {url}/push.v1.PusherService/Push` (Connect protocol,
// Content-Type application/proto). Pure: bytes in, bytes out.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hostprof {

using LabelList = std::vector<std::pair<std::string, std::string>>;

struct PyroscopeSeries {
    LabelList labels;        // __name__, service_name, hostname, static labels
    std::string raw_profile; // gzipped pprof
    std::string id;          // unique profile id (Pyroscope deduplicates on it)
};

// Labels are written sorted by name (Prometheus order); a series' labels are expected to
// have distinct names (see normalize_labels).
std::string encode_push_request(const std::vector<PyroscopeSeries>& series);

// The encoded size of one series inside a request, to batch series under a size limit.
size_t encoded_series_size(const PyroscopeSeries& series);

// Sorts by name and keeps the first value of a repeated name.
LabelList normalize_labels(LabelList labels);

// Prometheus label-name syntax: [a-zA-Z_][a-zA-Z0-9_]*.
bool valid_label_name(std::string_view name);

// "k=v,k2=v2" -> labels. Errors name the bad item; names starting with "__" are reserved.
// Returns false and sets *error on bad input.
bool parse_label_list(std::string_view text, LabelList* out, std::string* error);

// A random RFC 4122 version-4 UUID in its 36-character text form.
std::string random_uuid();

} // namespace hostprof
