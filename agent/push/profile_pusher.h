// The machinery every profile push shares (Pyroscope, OTLP): a collector thread that takes
// the pipeline's on-CPU and off-CPU deltas every interval and turns them into request
// bodies (the protocol's Build function), and a sender thread that POSTs them.
//
//   Pipeline --ProfileWindow (one interval)--> collector thread: Build(windows) -> bodies
//     --bounded queue--> sender thread: libcurl POST to the URL, retries with exponential
//     backoff
//
// Only the sender thread waits on the network, with curl timeouts; profiling never waits
// for it. When the queue is full the oldest request is dropped, and every drop is counted
// by reason in the exported metrics (hostprof_<protocol>_*).
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
#include "common/profile.h"
#include "common/result.h"

namespace hostprof {

class Pipeline;

// Where the deltas come from: the Pipeline in the agent, synthetic windows in unit tests.
class PushSource {
  public:
    virtual ~PushSource() = default;
    virtual uint64_t subscribe(hp_prof_kind kind) = 0;
    virtual ProfileWindow collect(uint64_t id) = 0;
    virtual Profile symbolize(const ProfileWindow& window) = 0;
};

std::unique_ptr<PushSource> make_pipeline_push_source(Pipeline& pipeline);

// One request body and the number of items (series, profiles) it carries.
struct PushBody {
    std::string body;
    size_t items = 0;
};

struct PushStats {
    uint64_t requests_ok = 0;
    uint64_t requests_failed = 0;            // attempts that failed (network error or HTTP status)
    uint64_t bytes_pushed = 0;               // request bodies accepted by the server
    uint64_t items_pushed = 0;               // series (Pyroscope) or profiles (OTLP) accepted
    std::map<std::string, uint64_t> dropped; // requests, by reason
    size_t queue_requests = 0;
    size_t queue_bytes = 0;
    int last_http_status = 0;
};

// The queue and retry knobs every push shares.
struct PushRetryOptions {
    size_t max_queue_bytes = 16u << 20; // queued request bodies; oldest dropped beyond
    int max_attempts = 4;               // per request, first try included
    std::chrono::milliseconds initial_backoff{1'000};
    std::chrono::milliseconds max_backoff{30'000};
    std::chrono::milliseconds connect_timeout{3'000};
    std::chrono::milliseconds request_timeout{15'000};
};

struct ProfilePusherOptions {
    std::string protocol;  // "pyroscope", "otlp": log messages, metric names
    std::string item_noun; // "series", "profiles": hostprof_<protocol>_<noun>_pushed_total
    std::string item_help; // what one item is, for that metric's help
    std::string server;    // "the Pyroscope server", for help texts
    std::string url;       // where requests are POSTed
    std::vector<std::string> headers; // "Name: value"
    std::chrono::milliseconds interval{15'000};
    bool on_cpu = true;
    bool off_cpu = true;
    PushRetryOptions retry;
};

class ProfilePusher {
  public:
    // Turns one interval's windows (on-CPU first, then off-CPU, as enabled) into requests.
    using Build = std::function<std::vector<PushBody>(std::vector<ProfileWindow>, PushSource&)>;

    // Starts the collector and sender threads (libcurl initialized on first use).
    static Result<std::unique_ptr<ProfilePusher>>
    start(ProfilePusherOptions options, std::unique_ptr<PushSource> source, Build build);
    ~ProfilePusher(); // stop()
    ProfilePusher(const ProfilePusher&) = delete;
    ProfilePusher& operator=(const ProfilePusher&) = delete;

    // Stops both threads (an HTTP transfer in flight is aborted) and releases the
    // subscriptions. Queued requests are dropped (reason "shutdown"). Idempotent.
    void stop();

    PushStats stats() const;
    // The push metrics (requests by result, bytes, items, drops by reason, queue size) as a
    // prometheus-cpp Collectable; it stays valid after the pusher is gone.
    std::shared_ptr<prometheus::Collectable> metrics() const;
    const std::string& url() const { return options_.url; }

  private:
    struct Request {
        std::string body;
        size_t items = 0;
        int attempts = 0;
    };
    // What the threads and the metrics share.
    struct Shared {
        mutable std::mutex mu;
        std::condition_variable wake_collector, wake_sender;
        bool stopping = false;
        std::deque<Request> queue;
        size_t queue_bytes = 0;
        PushStats stats;
        PushStats snapshot() const;
    };
    class Metrics;

    ProfilePusher(ProfilePusherOptions options, std::unique_ptr<PushSource> source, Build build);
    void collector_loop();
    void sender_loop();
    void push_request(PushBody body);
    // One HTTP attempt: the status code, or 0 on a network error (error text in *why).
    int post(const std::string& body, std::string* why);

    ProfilePusherOptions options_;
    std::unique_ptr<PushSource> source_;
    Build build_;
    std::shared_ptr<Shared> s_ = std::make_shared<Shared>();
    std::atomic<bool> abort_{false}; // aborts a transfer in flight (curl progress callback)
    std::thread collector_, sender_;
};

// The host's name (gethostname), "unknown" when it has none.
std::string local_hostname();

} // namespace hostprof
