#include "agent/push/pyroscope_push.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_map>

#include "agent/config/config.h"
#include "exporters/pprof.h"

namespace hostprof {
namespace {

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

// Series batched into requests of at most max_request_bytes (a larger series goes alone).
std::vector<PushBody> batch_requests(std::vector<PyroscopeSeries> series,
                                     size_t max_request_bytes) {
    std::vector<PushBody> out;
    std::vector<PyroscopeSeries> batch;
    size_t batch_bytes = 0;
    auto flush = [&] {
        if (batch.empty())
            return;
        out.push_back({encode_push_request(batch), batch.size()});
        batch.clear();
        batch_bytes = 0;
    };
    for (PyroscopeSeries& s : series) {
        const size_t n = encoded_series_size(s);
        if (!batch.empty() && batch_bytes + n > max_request_bytes)
            flush();
        batch_bytes += n;
        batch.push_back(std::move(s));
    }
    flush();
    return out;
}

} // namespace

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

Result<std::unique_ptr<ProfilePusher>> start_pyroscope_pusher(const PyroscopePushOptions& options,
                                                              std::unique_ptr<PushSource> source) {
    if (!options.url.starts_with("http://") && !options.url.starts_with("https://"))
        return Error{0, "pyroscope_url: '" + options.url + "' must start with http:// or https://"};
    for (const auto& [name, value] : options.static_labels)
        if (!valid_label_name(name) || name.starts_with("__"))
            return Error{0, "pyroscope_labels: bad label name '" + name + "'"};
    ProfilePusherOptions o;
    o.protocol = "pyroscope";
    o.item_noun = "series";
    o.item_help = "Profile series (one per service, profile type and interval)";
    o.server = "the Pyroscope server";
    std::string base = options.url;
    while (!base.empty() && base.back() == '/')
        base.pop_back();
    o.url = base + "/push.v1.PusherService/Push";
    o.headers = {"Content-Type: application/proto", "Connect-Protocol-Version: 1"};
    if (!options.tenant_id.empty())
        o.headers.push_back("X-Scope-OrgID: " + options.tenant_id);
    o.interval = options.interval;
    o.on_cpu = options.on_cpu;
    o.off_cpu = options.off_cpu;
    o.retry = options.retry;
    LabelList base_labels = options.static_labels;
    base_labels.emplace_back("hostname",
                             options.hostname.empty() ? local_hostname() : options.hostname);
    const size_t max_request_bytes = options.max_request_bytes;
    auto build = [base_labels, max_request_bytes](std::vector<ProfileWindow> windows,
                                                  PushSource& source) {
        std::vector<PyroscopeSeries> series;
        for (ProfileWindow& w : windows) {
            auto more = build_push_series(std::move(w), source, base_labels);
            std::move(more.begin(), more.end(), std::back_inserter(series));
        }
        return batch_requests(std::move(series), max_request_bytes);
    };
    return ProfilePusher::start(std::move(o), std::move(source), std::move(build));
}

std::unique_ptr<ProfilePusher> start_pyroscope_push(const Config& config, Pipeline* pipeline) {
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
    o.retry.max_queue_bytes = config.pyroscope_queue_bytes;
    o.tenant_id = config.pyroscope_tenant_id;
    o.retry.request_timeout =
        std::min(o.retry.request_timeout, std::max(o.interval, o.retry.connect_timeout));
    auto started = start_pyroscope_pusher(o, make_pipeline_push_source(*pipeline));
    if (!started) {
        spdlog::error("pyroscope push not started: {}", started.error().message());
        return nullptr;
    }
    spdlog::info("pushing profiles to {} every {} ms", started.value()->url(),
                 config.pyroscope_interval_ns / 1'000'000);
    return std::move(started.value());
}

} // namespace hostprof
