// Pyroscope push (optional, --pyroscope-url): every interval, the on-CPU and off-CPU
// deltas of the pipeline are split per service, symbolized, rendered as gzipped pprof and
// sent with Pyroscope's Push API (Connect unary call, protobuf; exporters/pyroscope.h) to
// {url}/push.v1.PusherService/Push. The threads, queue, retries and drop accounting are
// ProfilePusher's (profile_pusher.h).
#pragma once

#include <prometheus/collectable.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/aggregate/aggregator.h"
#include "agent/push/profile_pusher.h"
#include "common/profile.h"
#include "common/result.h"
#include "exporters/pyroscope.h"

namespace hostprof {

class Pipeline;

struct PyroscopePushOptions {
    std::string url; // base URL, e.g. http://pyroscope:4040 (credentials may be in it)
    std::chrono::milliseconds interval{15'000};
    LabelList static_labels;
    std::string hostname;  // the "hostname" label; empty: gethostname()
    std::string tenant_id; // X-Scope-OrgID header when not empty
    bool on_cpu = true;
    bool off_cpu = true;
    size_t max_request_bytes = 4u << 20; // series are batched into requests up to this
    PushRetryOptions retry;
};

// The Pyroscope profile name (__name__) of a window kind: process_cpu (what Pyroscope's
// own eBPF agent sends; with our sample types it reads as
// process_cpu:cpu:nanoseconds:cpu:nanoseconds) or off_cpu
// (off_cpu:off_cpu:nanoseconds:off_cpu:nanoseconds).
const char* pyroscope_profile_name(hp_prof_kind kind);

// One window split by the service_name of its processes ("unknown" without metadata).
std::map<std::string, ProfileWindow> split_by_service(ProfileWindow window);

// The series of one window: one per service with samples, labelled __name__,
// service_name, hostname and the static labels. Sample labels are left out of the pushed
// pprof: Pyroscope would turn each pid into a series of its own.
std::vector<PyroscopeSeries> build_push_series(ProfileWindow window, PushSource& source,
                                               const LabelList& base_labels);

// Validates the options and starts a ProfilePusher speaking Pyroscope's Push API to
// {url}/push.v1.PusherService/Push; its metrics are hostprof_pyroscope_* (items: series).
Result<std::unique_ptr<ProfilePusher>> start_pyroscope_pusher(const PyroscopePushOptions& options,
                                                              std::unique_ptr<PushSource> source);

struct Config;

// The daemon's hook: a running pusher when config.pyroscope_url is set and `pipeline` is
// not null, else null (logged).
std::unique_ptr<ProfilePusher> start_pyroscope_push(const Config& config, Pipeline* pipeline);

} // namespace hostprof
