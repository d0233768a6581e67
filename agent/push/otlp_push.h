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
    size_t max_queue_bytes = 16u << 20;
    int max_attempts = 4;
    std::chrono::milliseconds initial_backoff{1'000};
    std::chrono::milliseconds max_backoff{30'000};
    std::chrono::milliseconds connect_timeout{3'000};
    std::chrono::milliseconds request_timeout{15'000};
};

// One interval's windows as request bodies: the symbolized windows in one request,
// gzipped; none when no window has samples. `items` counts the OTLP profiles (one per
// process and window kind).
std::vector<PushBody> build_otlp_requests(std::vector<ProfileWindow> windows, PushSource& source,
                                          const std::string& hostname);

class OtlpPusher {
  public:
    // Validates the options and starts the collector and sender threads.
    static Result<std::unique_ptr<OtlpPusher>> start(OtlpPushOptions options,
                                                     std::unique_ptr<PushSource> source);
    void stop() { pusher_->stop(); }
    PushStats stats() const { return pusher_->stats(); }
    // hostprof_otlp_* (requests by result, bytes, profiles, drops by reason, queue).
    std::shared_ptr<prometheus::Collectable> metrics() const { return pusher_->metrics(); }
    const std::string& push_url() const { return pusher_->url(); }

  private:
    explicit OtlpPusher(std::unique_ptr<ProfilePusher> p) : pusher_(std::move(p)) {}
    std::unique_ptr<ProfilePusher> pusher_;
};

struct Config;
class Pipeline;

// The daemon's hook: a running pusher when config.otlp_url is set and `pipeline` is not
// null, else null (logged).
std::unique_ptr<OtlpPusher> start_otlp_push(const Config& config, Pipeline* pipeline);

} // namespace hostprof
