#include "agent/push/profile_pusher.h"

#include <curl/curl.h>
#include <limits.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "agent/pipeline/pipeline.h"
#include "exporters/metrics.h"

namespace hostprof {
namespace {

using prometheus::MetricFamily;
using prometheus::MetricType;

const char* const kDropReasons[] = {"queue_full", "retries_exhausted", "rejected", "too_large",
                                    "shutdown"};

class PipelinePushSource : public PushSource {
  public:
    explicit PipelinePushSource(Pipeline& p) : p_(p) {}
    uint64_t subscribe(hp_prof_kind kind) override { return p_.subscribe(kind, {}); }
    ProfileWindow collect(uint64_t id) override { return p_.collect(id); }
    Profile symbolize(const ProfileWindow& w) override {
        BuildOptions o;
        o.frequency_hz = p_.frequency_hz();
        return p_.symbolize(w, o);
    }

  private:
    Pipeline& p_;
};

// libcurl callbacks.
size_t keep_some_body(char* data, size_t size, size_t n, void* user) {
    auto* out = static_cast<std::string*>(user);
    const size_t len = size * n;
    if (out->size() < 512)
        out->append(data, std::min(len, 512 - out->size()));
    return len;
}

int abort_when_stopping(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<const std::atomic<bool>*>(user)->load() ? 1 : 0;
}

struct CurlDeleter {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

} // namespace

std::string local_hostname() {
    char buf[HOST_NAME_MAX + 1] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0')
        return "unknown";
    return buf;
}

std::unique_ptr<PushSource> make_pipeline_push_source(Pipeline& pipeline) {
    return std::make_unique<PipelinePushSource>(pipeline);
}

Result<std::unique_ptr<ProfilePusher>> ProfilePusher::start(ProfilePusherOptions options,
                                                            std::unique_ptr<PushSource> source,
                                                            Build build) {
    if (options.interval.count() <= 0 || !source || !build)
        return Error{0, options.protocol + " push: bad interval or no profile source"};
    // Thread-safe in the libcurl of Debian 12 (7.88); done before any thread uses curl.
    static const CURLcode global_init = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (global_init != CURLE_OK)
        return Error{0, std::string("libcurl initialization failed: ") +
                            curl_easy_strerror(global_init)};
    std::unique_ptr<ProfilePusher> p(
        new ProfilePusher(std::move(options), std::move(source), std::move(build)));
    p->collector_ = std::thread([raw = p.get()] { raw->collector_loop(); });
    p->sender_ = std::thread([raw = p.get()] { raw->sender_loop(); });
    return p;
}

ProfilePusher::ProfilePusher(ProfilePusherOptions options, std::unique_ptr<PushSource> source,
                             Build build)
    : options_(std::move(options)), source_(std::move(source)), build_(std::move(build)) {
    for (const char* reason : kDropReasons)
        s_->stats.dropped[reason] = 0;
}

ProfilePusher::~ProfilePusher() {
    stop();
}

void ProfilePusher::stop() {
    {
        std::lock_guard lock(s_->mu);
        s_->stopping = true;
    }
    abort_.store(true);
    s_->wake_collector.notify_all();
    s_->wake_sender.notify_all();
    if (collector_.joinable())
        collector_.join();
    if (sender_.joinable())
        sender_.join();
    std::lock_guard lock(s_->mu);
    if (!s_->queue.empty()) {
        s_->stats.dropped["shutdown"] += s_->queue.size();
        s_->queue.clear();
        s_->queue_bytes = 0;
    }
}

void ProfilePusher::collector_loop() {
    struct Stream {
        hp_prof_kind kind;
        uint64_t id;
    };
    std::vector<Stream> streams;
    if (options_.on_cpu)
        streams.push_back({HP_PROF_ON_CPU, source_->subscribe(HP_PROF_ON_CPU)});
    if (options_.off_cpu)
        streams.push_back({HP_PROF_OFF_CPU, source_->subscribe(HP_PROF_OFF_CPU)});
    using clock = std::chrono::steady_clock;
    auto next = clock::now() + options_.interval;
    std::unique_lock lock(s_->mu);
    while (!s_->wake_collector.wait_until(lock, next, [&] { return s_->stopping; })) {
        lock.unlock();
        std::vector<ProfileWindow> windows;
        for (Stream& s : streams) {
            windows.push_back(source_->collect(s.id));
            s.id = source_->subscribe(s.kind);
        }
        for (PushBody& b : build_(std::move(windows), *source_))
            push_request(std::move(b));
        next += options_.interval;
        if (next <= clock::now())
            next = clock::now() + options_.interval; // fell behind: skip, do not burst
        lock.lock();
    }
    lock.unlock();
    for (Stream& s : streams)
        source_->collect(s.id); // ends the subscriptions
}

void ProfilePusher::push_request(PushBody b) {
    std::lock_guard lock(s_->mu);
    if (b.body.size() > options_.retry.max_queue_bytes) {
        ++s_->stats.dropped["too_large"];
        return;
    }
    while (!s_->queue.empty() && s_->queue_bytes + b.body.size() > options_.retry.max_queue_bytes) {
        s_->queue_bytes -= s_->queue.front().body.size();
        s_->queue.pop_front();
        ++s_->stats.dropped["queue_full"];
    }
    s_->queue_bytes += b.body.size();
    s_->queue.push_back({std::move(b.body), b.items, 0});
    s_->wake_sender.notify_one();
}

void ProfilePusher::sender_loop() {
    Shared& sh = *s_;
    PushStats& st = sh.stats;
    bool failing = false;
    std::unique_lock lock(sh.mu);
    while (true) {
        sh.wake_sender.wait(lock, [&] { return sh.stopping || !sh.queue.empty(); });
        if (sh.stopping)
            return;
        Request r = std::move(sh.queue.front());
        sh.queue.pop_front();
        sh.queue_bytes -= r.body.size();
        auto backoff = options_.retry.initial_backoff;
        while (true) {
            lock.unlock();
            std::string why;
            const int status = post(r.body, &why);
            lock.lock();
            ++r.attempts;
            st.last_http_status = status;
            if (status >= 200 && status < 300) {
                ++st.requests_ok;
                st.bytes_pushed += r.body.size();
                st.items_pushed += r.items;
                if (failing)
                    spdlog::info("{} push: {} is accepting profiles again", options_.protocol,
                                 options_.url);
                failing = false;
                break;
            }
            ++st.requests_failed;
            if (sh.stopping) {
                ++st.dropped["shutdown"];
                return;
            }
            if (!failing)
                spdlog::warn("{} push to {} failed: {} (retrying; further failures are "
                             "counted in hostprof_{}_requests_total)",
                             options_.protocol, options_.url, why, options_.protocol);
            failing = true;
            // A 4xx other than timeout / rate limit will not succeed on a retry.
            if (status >= 400 && status < 500 && status != 408 && status != 429) {
                ++st.dropped["rejected"];
                break;
            }
            if (r.attempts >= options_.retry.max_attempts) {
                ++st.dropped["retries_exhausted"];
                break;
            }
            if (sh.wake_sender.wait_for(lock, backoff, [&] { return sh.stopping; })) {
                ++st.dropped["shutdown"];
                return;
            }
            backoff = std::min(backoff * 2, options_.retry.max_backoff);
        }
    }
}

int ProfilePusher::post(const std::string& body, std::string* why) {
    thread_local std::unique_ptr<CURL, CurlDeleter> handle; // keeps the connection alive
    if (!handle)
        handle.reset(curl_easy_init());
    CURL* c = handle.get();
    if (c == nullptr) {
        *why = "curl_easy_init failed";
        return 0;
    }
    curl_easy_reset(c);
    std::unique_ptr<curl_slist, SlistDeleter> headers;
    auto add_header = [&](const std::string& h) {
        headers.reset(curl_slist_append(headers.release(), h.c_str()));
    };
    for (const std::string& h : options_.headers)
        add_header(h);
    add_header("Expect:"); // no 100-continue round trip
    std::string response;
    curl_easy_setopt(c, CURLOPT_URL, options_.url.c_str());
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(c, CURLOPT_USERAGENT, "hostprof");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); // threads: no SIGALRM for DNS timeouts
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options_.retry.connect_timeout.count()));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(options_.retry.request_timeout.count()));
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_some_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &response);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, abort_when_stopping);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &abort_);
    const CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        *why = curl_easy_strerror(rc);
        return 0;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300)
        *why = "HTTP " + std::to_string(status) + (response.empty() ? "" : ": " + response);
    return static_cast<int>(status);
}

PushStats ProfilePusher::Shared::snapshot() const {
    std::lock_guard lock(mu);
    PushStats s = stats;
    s.queue_requests = queue.size();
    s.queue_bytes = queue_bytes;
    return s;
}

PushStats ProfilePusher::stats() const {
    return s_->snapshot();
}

class ProfilePusher::Metrics : public prometheus::Collectable {
  public:
    Metrics(std::shared_ptr<const Shared> s, const ProfilePusherOptions& o)
        : s_(std::move(s)), protocol_(o.protocol), noun_(o.item_noun), item_help_(o.item_help),
          server_(o.server) {}
    std::vector<MetricFamily> Collect() const override;

  private:
    std::shared_ptr<const Shared> s_;
    std::string protocol_, noun_, item_help_, server_;
};

std::shared_ptr<prometheus::Collectable> ProfilePusher::metrics() const {
    return std::make_shared<Metrics>(s_, options_);
}

std::vector<MetricFamily> ProfilePusher::Metrics::Collect() const {
    const PushStats s = s_->snapshot();
    const std::string prefix = "hostprof_" + protocol_ + "_";
    std::vector<MetricFamily> out;
    auto requests =
        metric_family(prefix + "requests_total", "Push attempts to " + server_ + ", by result.",
                      MetricType::Counter);
    add_metric_value(requests, static_cast<double>(s.requests_ok), {{"result", "ok"}});
    add_metric_value(requests, static_cast<double>(s.requests_failed), {{"result", "error"}});
    out.push_back(std::move(requests));
    auto bytes = metric_family(prefix + "pushed_bytes_total",
                               "Request bytes accepted by " + server_ + ".", MetricType::Counter);
    add_metric_value(bytes, static_cast<double>(s.bytes_pushed));
    out.push_back(std::move(bytes));
    auto items = metric_family(prefix + noun_ + "_pushed_total",
                               item_help_ + " accepted by " + server_ + ".", MetricType::Counter);
    add_metric_value(items, static_cast<double>(s.items_pushed));
    out.push_back(std::move(items));
    auto dropped = metric_family(prefix + "dropped_requests_total",
                                 "Push requests given up, by reason.", MetricType::Counter);
    for (const auto& [reason, n] : s.dropped)
        add_metric_value(dropped, static_cast<double>(n), {{"reason", reason}});
    out.push_back(std::move(dropped));
    auto queue = metric_family(prefix + "queue_requests", "Push requests waiting to be sent.",
                               MetricType::Gauge);
    add_metric_value(queue, static_cast<double>(s.queue_requests));
    out.push_back(std::move(queue));
    auto queue_bytes = metric_family(
        prefix + "queue_bytes", "Bytes of push requests waiting to be sent.", MetricType::Gauge);
    add_metric_value(queue_bytes, static_cast<double>(s.queue_bytes));
    out.push_back(std::move(queue_bytes));
    return out;
}

} // namespace hostprof
