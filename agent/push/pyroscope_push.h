// Pyroscope push (optional, --pyroscope-url): every interval, the on-CPU and off-CPU
// deltas of the pipeline are split per service, symbolized, rendered as gzipped pprof and
// sent with Pyroscope's Push API (Connect unary call, protobuf; exporters/pyroscope.h).
//
//   Pipeline --ProfileWindow (one interval)--> collector thread: split per service,
//     symbolize, render pprof, batch into PushRequests --bounded queue--> sender thread:
//     libcurl POST {url}/push.v1.PusherService/Push, retries with exponential backoff
//
// Only the sender thread waits on the network, with curl timeouts; profiling never waits
// for it. When the queue is full the oldest request is dropped, and every drop is counted
// by reason in the exported metrics.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/aggregate/aggregator.h"
#include "agent/pipeline/profile_builder.h"
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
    size_t max_queue_bytes = 16u << 20;  // queued request bodies; oldest dropped beyond
    size_t max_request_bytes = 4u << 20; // series are batched into requests up to this
    int max_attempts = 4;                // per request, first try included
    std::chrono::milliseconds initial_backoff{1'000};
    std::chrono::milliseconds max_backoff{30'000};
    std::chrono::milliseconds connect_timeout{3'000};
    std::chrono::milliseconds request_timeout{15'000};
};

// Where the deltas come from: the Pipeline in the agent, synthetic windows in unit tests.
class PushSource {
  public:
    virtual ~PushSource() = default;
    virtual uint64_t subscribe(hp_prof_kind kind) = 0;
    virtual ProfileWindow collect(uint64_t id) = 0;
    virtual Profile symbolize(const ProfileWindow& window) = 0;
};

std::unique_ptr<PushSource> make_pipeline_push_source(Pipeline& pipeline);

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

struct PyroscopePushStats {
    uint64_t requests_ok = 0;
    uint64_t requests_failed = 0; // attempts that failed (network error or HTTP status)
    uint64_t bytes_pushed = 0;    // request bodies accepted by the server
    uint64_t series_pushed = 0;
    std::map<std::string, uint64_t> dropped; // requests, by reason
    size_t queue_requests = 0;
    size_t queue_bytes = 0;
    int last_http_status = 0;
};

class PyroscopePusher {
  public:
    // Validates the options and starts the collector and sender threads.
    static Result<std::unique_ptr<PyroscopePusher>> start(PyroscopePushOptions options,
                                                          std::unique_ptr<PushSource> source);
    ~PyroscopePusher(); // stop()
    PyroscopePusher(const PyroscopePusher&) = delete;
    PyroscopePusher& operator=(const PyroscopePusher&) = delete;

    // Stops both threads (an HTTP transfer in flight is aborted) and releases the
    // subscriptions. Queued requests are dropped (reason "shutdown"). Idempotent.
    void stop();

    PyroscopePushStats stats() const;
    // The push metrics (requests by result, bytes, drops by reason, queue size) as a
    // prometheus-cpp Collectable; it stays valid after the pusher is gone.
    std::shared_ptr<prometheus::Collectable> metrics() const;

    const std::string& push_url() const { return push_url_; }

  private:
    struct Request {
        std::string body;
        size_t series = 0;
        int attempts = 0;
    };
    // What the threads and the metrics share.
    struct Shared {
        mutable std::mutex mu;
        std::condition_variable wake_collector, wake_sender;
        bool stopping = false;
        std::deque<Request> queue;
        size_t queue_bytes = 0;
        PyroscopePushStats stats;
        PyroscopePushStats snapshot() const;
    };
    class Metrics;

    PyroscopePusher(PyroscopePushOptions options, std::unique_ptr<PushSource> source);
    void collector_loop();
    void sender_loop();
    void enqueue(std::vector<PyroscopeSeries> series);
    void push_request(std::string body, size_t n_series);
    // One HTTP attempt: the status code, or 0 on a network error (error text in *why).
    int post(const std::string& body, std::string* why);

    PyroscopePushOptions options_;
    std::unique_ptr<PushSource> source_;
    std::string push_url_;
    LabelList base_labels_;
    std::shared_ptr<Shared> s_ = std::make_shared<Shared>();
    std::atomic<bool> abort_{false}; // aborts a transfer in flight (curl progress callback)
    std::thread collector_, sender_;
};

struct Config;

// The daemon's hook: a running pusher when config.pyroscope_url is set and `pipeline` is
// not null, else null (logged).
std::unique_ptr<PyroscopePusher> start_pyroscope_push(const Config& config, Pipeline* pipeline);

} // namespace hostprof
