// libFuzzer target: query strings of the HTTP endpoints (url_decode, query_param and the
// profile endpoints' parameters, including compiling and running the comm pattern).
#include <cstdint>
#include <string_view>

#include "agent/serve/http_query.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view q(reinterpret_cast<const char*>(data), size);
    (void)hostprof::url_decode(q);
    for (const char* key : {"seconds", "pid", "comm", ""})
        (void)hostprof::query_param(q, key);
    hostprof::EndpointLimits limits;
    auto r = hostprof::parse_profile_request(q, limits);
    if (r.ok()) {
        if (r->seconds < 1 || r->seconds > limits.max_seconds)
            __builtin_trap(); // an accepted request is always within the limits
        if (r->filter.comm) {
            // comm is at most 15 bytes in the kernel: the regex runs on strings like these.
            for (const char* comm : {"python3", "aaaaaaaaaaaaaaa", "kworker/0:1H-kb", ""})
                (void)r->filter.comm->matches(comm);
        }
    }
    return 0;
}
