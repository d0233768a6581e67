// OTLP profiles push (optional, --otlp-url): every interval, the on-CPU and off-CPU deltas
// of the pipeline are symbolized, encoded as one ExportProfilesServiceRequest
// (exporters/otlp.h: a resource per process, a profile per window kind), gzipped and POSTed
// to {url}/v1development/profiles (OTLP/HTTP, protobuf). The threads, queue, retries and
// drop accounting are ProfilePusher's (profile_pusher.h); metrics hostprof_otlp_*.
#pragma once

#include <prometheus/collectable.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agent/push/profile_pusher.h"
#include "common/result.h"

namespace hostprof {

struct OtlpPushOptions {
    std::string url; // base URL, e.g. http://otel-collector:4318
    std::chrono::milliseconds interval{15'000};
    std::vector<std::pair<std::string, std::string>> headers; // e.g. Authorization
    std::string hostname;                                     // host.name; empty: gethostname()
    bool on_cpu = true;
    bool off_cpu = true;
    PushRetryOptions retry;
};

// One interval's windows as request bodies: the symbolized windows in one request,
// gzipped; none when no window has samples. `items` counts the OTLP profiles (one per
// process and window kind).
std::vector<PushBody> build_otlp_requests(const std::vector<ProfileWindow>& windows,
                                          PushSource& source, const std::string& hostname);

// Validates the options and starts a ProfilePusher POSTing to {url}/v1development/profiles;
// its metrics are hostprof_otlp_* (items: profiles).
Result<std::unique_ptr<ProfilePusher>> start_otlp_pusher(const OtlpPushOptions& options,
                                                         std::unique_ptr<PushSource> source);

struct Config;
class Pipeline;

// The daemon's hook: a running pusher when config.otlp_url is set and `pipeline` is not
// null, else null (logged).
std::unique_ptr<ProfilePusher> start_otlp_push(const Config& config, Pipeline* pipeline);

} // namespace hostprof
