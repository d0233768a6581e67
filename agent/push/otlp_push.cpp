#include "agent/push/otlp_push.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "agent/config/config.h"
#include "exporters/gzip.h"
#include "exporters/otlp.h"

namespace hostprof {

std::vector<PushBody> build_otlp_requests(const std::vector<ProfileWindow>& windows,
                                          PushSource& source, const std::string& hostname) {
    std::vector<Profile> profiles;
    size_t items = 0;
    for (const ProfileWindow& w : windows) {
        Profile p = source.symbolize(w);
        if (p.samples.empty())
            continue;
        std::set<std::string> processes;
        for (const Sample& s : p.samples)
            for (const auto& [k, v] : s.labels)
                if (k == "pid")
                    processes.insert(v);
        items += std::max<size_t>(processes.size(), 1);
        profiles.push_back(std::move(p));
    }
    if (profiles.empty())
        return {};
    OtlpOptions o;
    o.scope_version = HOSTPROF_VERSION;
    o.host_name = hostname;
    std::vector<PushBody> out;
    out.push_back({gzip_compress(encode_otlp_profiles(profiles, o)), items});
    return out;
}

Result<std::unique_ptr<ProfilePusher>> start_otlp_pusher(const OtlpPushOptions& options,
                                                         std::unique_ptr<PushSource> source) {
    if (!options.url.starts_with("http://") && !options.url.starts_with("https://"))
        return Error{0, "otlp_url: '" + options.url + "' must start with http:// or https://"};
    ProfilePusherOptions o;
    o.protocol = "otlp";
    o.item_noun = "profiles";
    o.item_help = "OTLP profiles (one per process, window kind and interval)";
    o.server = "the OTLP endpoint";
    std::string base = options.url;
    while (!base.empty() && base.back() == '/')
        base.pop_back();
    o.url = base + "/v1development/profiles";
    o.headers = {"Content-Type: application/x-protobuf", "Content-Encoding: gzip"};
    for (const auto& [name, value] : options.headers)
        o.headers.push_back(name + ": " + value);
    o.interval = options.interval;
    o.on_cpu = options.on_cpu;
    o.off_cpu = options.off_cpu;
    o.retry = options.retry;
    const std::string hostname = options.hostname.empty() ? local_hostname() : options.hostname;
    auto build = [hostname](const std::vector<ProfileWindow>& windows, PushSource& source) {
        return build_otlp_requests(windows, source, hostname);
    };
    return ProfilePusher::start(std::move(o), std::move(source), std::move(build));
}

std::unique_ptr<ProfilePusher> start_otlp_push(const Config& config, Pipeline* pipeline) {
    if (config.otlp_url.empty())
        return nullptr;
    if (pipeline == nullptr) {
        spdlog::error("OTLP push to {} not started: profiling is not running", config.otlp_url);
        return nullptr;
    }
    OtlpPushOptions o;
    o.url = config.otlp_url;
    o.interval = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::nanoseconds(config.otlp_interval_ns));
    o.headers = config.otlp_headers;
    o.retry.request_timeout =
        std::min(o.retry.request_timeout, std::max(o.interval, o.retry.connect_timeout));
    auto started = start_otlp_pusher(o, make_pipeline_push_source(*pipeline));
    if (!started) {
        spdlog::error("OTLP push not started: {}", started.error().message());
        return nullptr;
    }
    spdlog::info("pushing OTLP profiles (proto {}) to {} every {} ms", kOtlpProtoVersion,
                 started.value()->url(), config.otlp_interval_ns / 1'000'000);
    return std::move(started.value());
}

} // namespace hostprof
