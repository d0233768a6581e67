// Parsing of request query strings, pure so it is unit-tested and fuzzed (tests/fuzz):
// "a=1&b=x%20y" -> URL-decoded values, and the profile endpoints' parameters
// (?seconds=, pid=, cgroup=, container=, service=, comm=) -> ProfileRequest.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "agent/aggregate/aggregator.h"
#include "common/result.h"

namespace hostprof {

// Bounds on what a query may carry; beyond them a request gets 400, not work.
inline constexpr size_t kMaxQueryBytes = 8192;
inline constexpr size_t kMaxQueryValueBytes = 1024;

// "%41" -> "A", '+' -> ' '. nullopt on a bad or truncated %-escape.
std::optional<std::string> url_decode(std::string_view s);

// The URL-decoded value of `key` (the first occurrence); "" for a bare "key". nullopt when
// the key is absent or its value has a bad %-escape.
std::optional<std::string> query_param(std::string_view query, std::string_view key);

struct EndpointLimits {
    int default_seconds = 30;
    int max_seconds = 300;
    int max_concurrent_profiles = 4;
};

struct ProfileRequest {
    int seconds = 30;
    ProfileFilter filter;
};

// Parses ?seconds= and the filters. Unknown keys are ignored (clients add their own);
// a known key given twice, a bad %-escape, an overlong value or a value out of range is
// an error whose message is the 400 body.
Result<ProfileRequest> parse_profile_request(std::string_view query, const EndpointLimits& limits);

} // namespace hostprof
