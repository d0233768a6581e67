#include "agent/push/pyroscope_push.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <limits.h>
#include <unordered_map>

#include "agent/config/config.h"
#include "agent/pipeline/pipeline.h"
#include "exporters/pprof.h"

namespace hostprof {
namespace {

using prometheus::ClientMetric;
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

// Drops the sample labels and merges what becomes equal: locations with the same address,
// mapping and frames (processes of one executable, e.g. a service's worker pids, each got
// their own), then samples with the same stack.
void merge_unlabelled_samples(Profile& p) {
    std::unordered_map<std::string, uint32_t> canonical;
    std::vector<uint32_t> remap(p.locations.size());
    std::vector<Location> locations;
    std::string key;
    for (size_t i = 0; i < p.locations.size(); ++i) {
        const Location& loc = p.locations[i];
        key = std::to_string(loc.address) + '/' + std::to_string(loc.mapping);
        for (const Line& l : loc.lines)
            key.append(1, '\0').append(l.function).append(1, '\0').append(l.file).append(1, '\0') +=
                std::to_string(l.line);
        auto [it, inserted] = canonical.try_emplace(key, static_cast<uint32_t>(locations.size()));
        if (inserted)
            locations.push_back(std::move(p.locations[i]));
        remap[i] = it->second;
    }
    p.locations = std::move(locations);

    std::map<std::vector<uint32_t>, size_t> index;
    std::vector<Sample> merged;
    merged.reserve(p.samples.size());
    for (Sample& s : p.samples) {
        s.labels.clear();
        for (uint32_t& l : s.locations)
            l = l < remap.size() ? remap[l] : l;
        auto [it, inserted] = index.try_emplace(s.locations, merged.size());
        if (inserted) {
            merged.push_back(std::move(s));
            continue;
        }
        Sample& into = merged[it->second];
        if (into.values.size() < s.values.size())
            into.values.resize(s.values.size(), 0);
        for (size_t v = 0; v < s.values.size(); ++v)
            into.values[v] += s.values[v];
    }
    p.samples = std::move(merged);
}

std::string local_hostname() {
    char buf[HOST_NAME_MAX + 1] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0')
        return "unknown";
    return buf;
}

MetricFamily family(const std::string& name, const std::string& help, MetricType type) {
    MetricFamily f;
    f.name = name;
    f.help = help;
    f.type = type;
    return f;
}

void add_value(MetricFamily& f, double v, std::vector<ClientMetric::Label> labels = {}) {
    ClientMetric m;
    m.label = std::move(labels);
    if (f.type == MetricType::Counter)
        m.counter.value = v;
    else
        m.gauge.value = v;
    f.metric.push_back(std::move(m));
}

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

std::unique_ptr<PushSource> make_pipeline_push_source(Pipeline& pipeline) {
    return std::make_unique<PipelinePushSource>(pipeline);
}

const char* pyroscope_profile_name(hp_prof_kind kind) {
    return kind == HP_PROF_OFF_CPU ? "off_cpu" : "process_cpu";
}

std::map<std::string, ProfileWindow> split_by_service(ProfileWindow window) {
    std::map<std::string, ProfileWindow> out;
    auto window_of = [&](const std::string& service) -> ProfileWindow& {
        auto [it, inserted] = out.try_emplace(service);
        if (inserted) {
            it->second.kind = window.kind;
            it->second.start_unix_ns = window.start_unix_ns;
            it->second.end_unix_ns = window.end_unix_ns;
        }
        return it->second;
    };
    for (const auto& [key, value] : window.stacks) {
        const auto proc_key = std::make_pair(key.pid, key.start_time_ns);
        auto meta = window.processes.find(proc_key);
        const bool known = meta != window.processes.end() && !meta->second.service_name.empty();
        ProfileWindow& w = window_of(known ? meta->second.service_name : "unknown");
        w.stacks.add(key, value);
        w.records += value.count;
        if (meta != window.processes.end())
            w.processes.emplace(proc_key, meta->second);
    }
    return out;
}

std::vector<PyroscopeSeries> build_push_series(ProfileWindow window, PushSource& source,
                                               const LabelList& base_labels) {
    std::vector<PyroscopeSeries> out;
    const char* name = pyroscope_profile_name(window.kind);
    for (auto& [service, w] : split_by_service(std::move(window))) {
        Profile p = source.symbolize(w);
        merge_unlabelled_samples(p);
        if (p.samples.empty())
            continue;
        PyroscopeSeries s;
        s.labels = base_labels;
        s.labels.emplace_back("__name__", name);
        s.labels.emplace_back("service_name", service);
        s.labels = normalize_labels(std::move(s.labels));
        s.raw_profile = render_pprof(p);
        s.id = random_uuid();
        out.push_back(std::move(s));
    }
    return out;
}

Result<std::unique_ptr<PyroscopePusher>>
PyroscopePusher::start(PyroscopePushOptions options, std::unique_ptr<PushSource> source) {
    if (!options.url.starts_with("http://") && !options.url.starts_with("https://"))
        return Error{0, "pyroscope_url: '" + options.url + "' must start with http:// or https://"};
    if (options.interval.count() <= 0 || !source)
        return Error{0, "pyroscope push: bad interval or no profile source"};
    for (const auto& [name, value] : options.static_labels)
        if (!valid_label_name(name) || name.starts_with("__"))
            return Error{0, "pyroscope_labels: bad label name '" + name + "'"};
    // Thread-safe in the libcurl of Debian 12 (7.88); done before any thread uses curl.
    static const CURLcode global_init = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (global_init != CURLE_OK)
        return Error{0, std::string("libcurl initialization failed: ") +
                            curl_easy_strerror(global_init)};
    std::unique_ptr<PyroscopePusher> p(new PyroscopePusher(std::move(options), std::move(source)));
    p->collector_ = std::thread([raw = p.get()] { raw->collector_loop(); });
    p->sender_ = std::thread([raw = p.get()] { raw->sender_loop(); });
    return p;
}

PyroscopePusher::PyroscopePusher(PyroscopePushOptions options, std::unique_ptr<PushSource> source)
    : options_(std::move(options)), source_(std::move(source)) {
    std::string base = options_.url;
    while (!base.empty() && base.back() == '/')
        base.pop_back();
    push_url_ = base + "/push.v1.PusherService/Push";
    base_labels_ = options_.static_labels;
    base_labels_.emplace_back("hostname",
                              options_.hostname.empty() ? local_hostname() : options_.hostname);
    for (const char* reason : kDropReasons)
        s_->stats.dropped[reason] = 0;
}

PyroscopePusher::~PyroscopePusher() {
    stop();
}

void PyroscopePusher::stop() {
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

void PyroscopePusher::collector_loop() {
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
        std::vector<PyroscopeSeries> series;
        for (ProfileWindow& w : windows) {
            auto more = build_push_series(std::move(w), *source_, base_labels_);
            std::move(more.begin(), more.end(), std::back_inserter(series));
        }
        enqueue(std::move(series));
        next += options_.interval;
        if (next <= clock::now())
            next = clock::now() + options_.interval; // fell behind: skip, do not burst
        lock.lock();
    }
    lock.unlock();
    for (Stream& s : streams)
        source_->collect(s.id); // ends the subscriptions
}

void PyroscopePusher::enqueue(std::vector<PyroscopeSeries> series) {
    // Batch series into requests of at most max_request_bytes (a larger series goes alone).
    std::vector<PyroscopeSeries> batch;
    size_t batch_bytes = 0;
    auto flush = [&] {
        if (batch.empty())
            return;
        push_request(encode_push_request(batch), batch.size());
        batch.clear();
        batch_bytes = 0;
    };
    for (PyroscopeSeries& s : series) {
        const size_t n = encoded_series_size(s);
        if (!batch.empty() && batch_bytes + n > options_.max_request_bytes)
            flush();
        batch_bytes += n;
        batch.push_back(std::move(s));
    }
    flush();
}

void PyroscopePusher::push_request(std::string body, size_t n_series) {
    std::lock_guard lock(s_->mu);
    if (body.size() > options_.max_queue_bytes) {
        ++s_->stats.dropped["too_large"];
        return;
    }
    while (!s_->queue.empty() && s_->queue_bytes + body.size() > options_.max_queue_bytes) {
        s_->queue_bytes -= s_->queue.front().body.size();
        s_->queue.pop_front();
        ++s_->stats.dropped["queue_full"];
    }
    s_->queue_bytes += body.size();
    s_->queue.push_back({std::move(body), n_series, 0});
    s_->wake_sender.notify_one();
}

void PyroscopePusher::sender_loop() {
    Shared& sh = *s_;
    PyroscopePushStats& st = sh.stats;
    bool failing = false;
    std::unique_lock lock(sh.mu);
    while (true) {
        sh.wake_sender.wait(lock, [&] { return sh.stopping || !sh.queue.empty(); });
        if (sh.stopping)
            return;
        Request r = std::move(sh.queue.front());
        sh.queue.pop_front();
        sh.queue_bytes -= r.body.size();
        auto backoff = options_.initial_backoff;
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
                st.series_pushed += r.series;
                if (failing)
                    spdlog::info("pyroscope push: {} is accepting profiles again", push_url_);
                failing = false;
                break;
            }
            ++st.requests_failed;
            if (sh.stopping) {
                ++st.dropped["shutdown"];
                return;
            }
            if (!failing)
                spdlog::warn("pyroscope push to {} failed: {} (retrying; further failures are "
                             "counted in hostprof_pyroscope_requests_total)",
                             push_url_, why);
            failing = true;
            // A 4xx other than timeout / rate limit will not succeed on a retry.
            if (status >= 400 && status < 500 && status != 408 && status != 429) {
                ++st.dropped["rejected"];
                break;
            }
            if (r.attempts >= options_.max_attempts) {
                ++st.dropped["retries_exhausted"];
                break;
            }
            if (sh.wake_sender.wait_for(lock, backoff, [&] { return sh.stopping; })) {
                ++st.dropped["shutdown"];
                return;
            }
            backoff = std::min(backoff * 2, options_.max_backoff);
        }
    }
}

int PyroscopePusher::post(const std::string& body, std::string* why) {
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
    add_header("Content-Type: application/proto");
    add_header("Connect-Protocol-Version: 1");
    add_header("Expect:"); // no 100-continue round trip
    if (!options_.tenant_id.empty())
        add_header("X-Scope-OrgID: " + options_.tenant_id);
    std::string response;
    curl_easy_setopt(c, CURLOPT_URL, push_url_.c_str());
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(c, CURLOPT_USERAGENT, "hostprof");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); // threads: no SIGALRM for DNS timeouts
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
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

std::unique_ptr<PyroscopePusher> start_pyroscope_push(const Config& config, Pipeline* pipeline) {
    if (config.pyroscope_url.empty())
        return nullptr;
    if (pipeline == nullptr) {
        spdlog::error("pyroscope push to {} not started: profiling is not running",
                      config.pyroscope_url);
        return nullptr;
    }
    PyroscopePushOptions o;
    o.url = config.pyroscope_url;
    o.interval = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::nanoseconds(config.pyroscope_interval_ns));
    o.static_labels = config.pyroscope_labels;
    o.max_queue_bytes = config.pyroscope_queue_bytes;
    o.tenant_id = config.pyroscope_tenant_id;
    o.request_timeout = std::min(o.request_timeout, std::max(o.interval, o.connect_timeout));
    auto started = PyroscopePusher::start(std::move(o), make_pipeline_push_source(*pipeline));
    if (!started) {
        spdlog::error("pyroscope push not started: {}", started.error().message());
        return nullptr;
    }
    spdlog::info("pushing profiles to {} every {} ms", started.value()->push_url(),
                 config.pyroscope_interval_ns / 1'000'000);
    return std::move(started.value());
}

PyroscopePushStats PyroscopePusher::Shared::snapshot() const {
    std::lock_guard lock(mu);
    PyroscopePushStats s = stats;
    s.queue_requests = queue.size();
    s.queue_bytes = queue_bytes;
    return s;
}

PyroscopePushStats PyroscopePusher::stats() const {
    return s_->snapshot();
}

class PyroscopePusher::Metrics : public prometheus::Collectable {
  public:
    explicit Metrics(std::shared_ptr<const Shared> s) : s_(std::move(s)) {}
    std::vector<MetricFamily> Collect() const override;

  private:
    std::shared_ptr<const Shared> s_;
};

std::shared_ptr<prometheus::Collectable> PyroscopePusher::metrics() const {
    return std::make_shared<Metrics>(s_);
}

std::vector<MetricFamily> PyroscopePusher::Metrics::Collect() const {
    const PyroscopePushStats s = s_->snapshot();
    std::vector<MetricFamily> out;
    auto requests = family("hostprof_pyroscope_requests_total",
                           "Pyroscope push attempts, by result.", MetricType::Counter);
    add_value(requests, static_cast<double>(s.requests_ok), {{"result", "ok"}});
    add_value(requests, static_cast<double>(s.requests_failed), {{"result", "error"}});
    out.push_back(std::move(requests));
    auto bytes = family("hostprof_pyroscope_pushed_bytes_total",
                        "Request bytes accepted by the Pyroscope server.", MetricType::Counter);
    add_value(bytes, static_cast<double>(s.bytes_pushed));
    out.push_back(std::move(bytes));
    auto series = family("hostprof_pyroscope_series_pushed_total",
                         "Profile series (one per service, profile type and interval) "
                         "accepted by the Pyroscope server.",
                         MetricType::Counter);
    add_value(series, static_cast<double>(s.series_pushed));
    out.push_back(std::move(series));
    auto dropped = family("hostprof_pyroscope_dropped_requests_total",
                          "Push requests given up, by reason.", MetricType::Counter);
    for (const auto& [reason, n] : s.dropped)
        add_value(dropped, static_cast<double>(n), {{"reason", reason}});
    out.push_back(std::move(dropped));
    auto queue = family("hostprof_pyroscope_queue_requests", "Push requests waiting to be sent.",
                        MetricType::Gauge);
    add_value(queue, static_cast<double>(s.queue_requests));
    out.push_back(std::move(queue));
    auto queue_bytes = family("hostprof_pyroscope_queue_bytes",
                              "Bytes of push requests waiting to be sent.", MetricType::Gauge);
    add_value(queue_bytes, static_cast<double>(s.queue_bytes));
    out.push_back(std::move(queue_bytes));
    return out;
}

} // namespace hostprof
