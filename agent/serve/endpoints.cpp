#include "agent/serve/endpoints.h"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>
#include <tuple>

#include "agent/serve/renderers.h"

namespace hostprof {
namespace {

HttpResponse json_response(int status, const nlohmann::json& j) {
    HttpResponse r;
    r.status = status;
    r.content_type = "application/json";
    r.body = j.dump(2) + "\n";
    return r;
}

// Decrements the active-profile count when a profile request ends, however it ends.
class ProfileSlot {
  public:
    explicit ProfileSlot(std::atomic<int>& n, int max) : n_(n) { ok_ = n_.fetch_add(1) < max; }
    ~ProfileSlot() { n_.fetch_sub(1); }
    ProfileSlot(const ProfileSlot&) = delete;
    ProfileSlot& operator=(const ProfileSlot&) = delete;
    bool ok() const { return ok_; }

  private:
    std::atomic<int>& n_;
    bool ok_ = false;
};

HttpResponse profile_handler(AgentState& st, const HttpRequest& req, hp_prof_kind kind) {
    if (st.pipeline == nullptr)
        return HttpResponse::text(503, "profiling is not running (see /readyz)");
    auto pr = parse_profile_request(req.query, st.limits);
    if (!pr) {
        ++st.bad_requests;
        return HttpResponse::text(400, pr.error().message());
    }
    ProfileSlot slot(st.active_profiles, st.limits.max_concurrent_profiles);
    if (!slot.ok()) {
        ++st.throttled_profiles;
        HttpResponse r =
            HttpResponse::text(429, "too many concurrent profile requests (limit " +
                                        std::to_string(st.limits.max_concurrent_profiles) + ")");
        r.headers.emplace_back("Retry-After", "5");
        return r;
    }
    auto id = st.pipeline->subscribe(kind, pr->filter);
    std::this_thread::sleep_for(std::chrono::seconds(pr->seconds));
    ProfileWindow w = st.pipeline->collect(id);
    BuildOptions bo;
    bo.frequency_hz = st.pipeline->frequency_hz();
    Profile p = st.pipeline->symbolize(w, bo);
    HttpResponse r;
    r.content_type = "application/octet-stream";
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"profile.pb.gz\"");
    r.body = render_pprof_bytes(p);
    return r;
}

// ?kind= of the flame graph page.
std::optional<hp_prof_kind> parse_kind(std::string_view query) {
    auto k = query_param(query, "kind");
    if (!k || *k == "cpu")
        return HP_PROF_ON_CPU;
    if (*k == "offcpu")
        return HP_PROF_OFF_CPU;
    if (*k == "syscall_latency")
        return HP_PROF_SYSCALL_LATENCY;
    return std::nullopt;
}

const char* kind_title(hp_prof_kind kind) {
    switch (kind) {
    case HP_PROF_OFF_CPU:
        return "hostprof: off-CPU flame graph";
    case HP_PROF_SYSCALL_LATENCY:
        return "hostprof: slow-syscall flame graph (weighted by latency)";
    default:
        return "hostprof: on-CPU flame graph";
    }
}

HttpResponse flamegraph_handler(AgentState& st, const HttpRequest& req) {
    if (st.pipeline == nullptr)
        return HttpResponse::text(503, "profiling is not running (see /readyz)");
    auto kind = parse_kind(req.query);
    if (!kind)
        return HttpResponse::text(400, "bad kind: must be cpu, offcpu or syscall_latency");
    std::optional<ProfileWindow> window;
    if (query_param(req.query, "seconds") || *kind != HP_PROF_ON_CPU) {
        auto pr = parse_profile_request(req.query, st.limits);
        if (!pr) {
            ++st.bad_requests;
            return HttpResponse::text(400, pr.error().message());
        }
        ProfileSlot slot(st.active_profiles, st.limits.max_concurrent_profiles);
        if (!slot.ok()) {
            ++st.throttled_profiles;
            return HttpResponse::text(429, "too many concurrent profile requests");
        }
        auto id = st.pipeline->subscribe(*kind, pr->filter);
        std::this_thread::sleep_for(std::chrono::seconds(pr->seconds));
        window = st.pipeline->collect(id);
    } else {
        std::lock_guard lock(st.last_mu);
        window = st.last_on_cpu;
    }
    if (!window)
        return HttpResponse::text(503, "the first profile window is not complete yet; retry in "
                                       "a few seconds or pass ?seconds=N");
    BuildOptions bo;
    bo.frequency_hz = st.pipeline->frequency_hz();
    Profile p = st.pipeline->symbolize(*window, bo);
    HttpResponse r;
    r.content_type = "text/html; charset=utf-8";
    r.body = render_flamegraph_page(p, kind_title(*kind));
    return r;
}

nlohmann::json outlier_json(const Outlier& o) {
    return {{"id", o.id},
            {"metric", o.family},
            {"what", o.what},
            {"pid", o.pid},
            {"tid", o.tid},
            {"comm", o.comm},
            {"duration_seconds", static_cast<double>(o.duration_ns) * 1e-9},
            {"time_unix_nano", o.unix_ns},
            {"result", o.result}};
}

// The symbolized stack of one outlier, root first ("comm" root frame excluded).
std::vector<std::string> outlier_stack(Pipeline& pipeline, const Outlier& o) {
    ProfileWindow w;
    w.kind = HP_PROF_SYSCALL_LATENCY;
    StackKey key;
    key.pid = o.pid;
    key.start_time_ns = o.start_time_ns;
    key.kernel_len = o.kernel_len;
    key.frames = o.frames;
    w.stacks.add(key, StackValue{1, o.duration_ns});
    BuildOptions bo;
    bo.process_root_frame = false;
    Profile p = pipeline.symbolize(w, bo);
    std::vector<std::string> out;
    if (p.samples.empty())
        return out;
    const auto& locs = p.samples.front().locations;
    for (auto it = locs.rbegin(); it != locs.rend(); ++it) {
        const Location& loc = p.locations[*it];
        // Lines are innermost first: the caller comes first from the root.
        for (auto l = loc.lines.rbegin(); l != loc.lines.rend(); ++l)
            out.push_back(l->function.empty() ? "unknown" : l->function);
        if (loc.lines.empty()) {
            char hex[32];
            std::snprintf(hex, sizeof(hex), "0x%llx", static_cast<unsigned long long>(loc.address));
            out.emplace_back(hex);
        }
    }
    return out;
}

HttpResponse outliers_handler(AgentState& st, const HttpRequest& req) {
    if (st.outliers == nullptr)
        return HttpResponse::text(503, "no latency collector is running (see /readyz)");
    if (auto id = query_param(req.query, "id")) {
        uint64_t v = 0;
        auto [p, ec] = std::from_chars(id->data(), id->data() + id->size(), v);
        if (ec != std::errc() || p != id->data() + id->size())
            return HttpResponse::text(400, "bad id '" + *id + "'");
        auto o = st.outliers->find(v);
        if (!o)
            return HttpResponse::text(404, "outlier " + *id +
                                               " is not (or no longer) kept; the store keeps the "
                                               "newest " +
                                               std::to_string(st.outliers->capacity()));
        nlohmann::json j = outlier_json(*o);
        if (st.pipeline != nullptr && !o->frames.empty())
            j["stack"] = outlier_stack(*st.pipeline, *o);
        else
            j["stack"] = nlohmann::json::array();
        return json_response(200, j);
    }
    size_t limit = 100;
    if (auto l = query_param(req.query, "limit")) {
        auto [p, ec] = std::from_chars(l->data(), l->data() + l->size(), limit);
        if (ec != std::errc() || p != l->data() + l->size() || limit == 0 || limit > 10'000)
            return HttpResponse::text(400, "bad limit '" + *l + "': 1..10000");
    }
    nlohmann::json list = nlohmann::json::array();
    for (const Outlier& o : st.outliers->recent(limit))
        list.push_back(outlier_json(o));
    return json_response(200, {{"outliers", list}});
}

HttpResponse readyz_handler(AgentState& st) {
    nlohmann::json collectors = nlohmann::json::object();
    int running = 0, failed = 0;
    for (const CollectorState& c : st.collectors) {
        nlohmann::json hooks = nlohmann::json::array();
        for (const ProgramState& p : st.programs)
            if (p.collector == c.name)
                hooks.push_back({{"hook", p.hook},
                                 {"mode", p.mode},
                                 {"attached", p.attached},
                                 {"reason", p.reason}});
        collectors[c.name] = {
            {"state", c.running ? "running" : "failed"}, {"reason", c.reason}, {"hooks", hooks}};
        (c.running ? running : failed)++;
    }
    std::string status = running == 0 ? "not_ready" : failed > 0 ? "degraded" : "ready";
    nlohmann::json body = {{"status", status}, {"collectors", collectors}};
    // How user stacks are walked: unwind tables, or frame pointers only and why.
    if (st.pipeline != nullptr)
        body["user_stacks"] = st.pipeline->unwind_status();
    return json_response(running == 0 ? 503 : 200, body);
}

HttpResponse metrics_handler(AgentState& st, const HttpRequest& req) {
    std::vector<prometheus::MetricFamily> families;
    NativeHistogramSet natives;
    for (const auto& c : st.collectables) {
        const auto* native_source = dynamic_cast<const NativeHistogramSource*>(c.get());
        auto f =
            native_source != nullptr ? native_source->collect_with_native(natives) : c->Collect();
        families.insert(families.end(), std::make_move_iterator(f.begin()),
                        std::make_move_iterator(f.end()));
    }
    for (auto [name, help, value] :
         {std::tuple{"hostprof_http_bad_requests_total",
                     "Profile requests refused with 400 (bad query parameters).",
                     st.bad_requests.load()},
          std::tuple{"hostprof_http_throttled_profiles_total",
                     "Profile requests refused with 429 (over --max-concurrent-profiles).",
                     st.throttled_profiles.load()}}) {
        prometheus::MetricFamily f;
        f.name = name;
        f.help = help;
        f.type = prometheus::MetricType::Counter;
        f.metric.emplace_back();
        f.metric.back().counter.value = static_cast<double>(value);
        families.push_back(std::move(f));
    }
    ExemplarSet exemplars;
    if (st.outliers != nullptr)
        exemplars = st.outliers->exemplars();
    auto [content_type, body] = render_metrics(families, req.header("accept"), exemplars, natives);
    HttpResponse r;
    r.content_type = content_type;
    r.body = std::move(body);
    return r;
}

} // namespace

std::map<std::string, HttpServer::Handler> make_routes(AgentState& st) {
    std::map<std::string, HttpServer::Handler> routes;
    routes["/healthz"] = [](const HttpRequest&) { return HttpResponse::text(200, "ok"); };
    routes["/readyz"] = [&st](const HttpRequest&) { return readyz_handler(st); };
    routes["/metrics"] = [&st](const HttpRequest& r) { return metrics_handler(st, r); };
    routes["/debug/pprof/profile"] = [&st](const HttpRequest& r) {
        return profile_handler(st, r, HP_PROF_ON_CPU);
    };
    routes["/debug/pprof/offcpu"] = [&st](const HttpRequest& r) {
        return profile_handler(st, r, HP_PROF_OFF_CPU);
    };
    routes["/debug/pprof/syscall_latency"] = [&st](const HttpRequest& r) {
        return profile_handler(st, r, HP_PROF_SYSCALL_LATENCY);
    };
    routes["/debug/outliers"] = [&st](const HttpRequest& r) { return outliers_handler(st, r); };
    routes["/flamegraph"] = [&st](const HttpRequest& r) { return flamegraph_handler(st, r); };
    routes["/"] = [](const HttpRequest&) {
        HttpResponse r;
        r.content_type = "text/html; charset=utf-8";
        r.body = "<!doctype html><title>hostprof</title><h1>hostprof</h1><ul>"
                 "<li><a href=\"/flamegraph\">/flamegraph</a></li>"
                 "<li><a href=\"/metrics\">/metrics</a></li>"
                 "<li><a href=\"/readyz\">/readyz</a></li>"
                 "<li>/debug/pprof/profile?seconds=N (pprof; pid=, cgroup=, container=, "
                 "service=, comm=)</li><li>/debug/pprof/offcpu?seconds=N</li>"
                 "<li>/debug/pprof/syscall_latency?seconds=N</li>"
                 "<li><a href=\"/debug/outliers\">/debug/outliers</a></li></ul>\n";
        return r;
    };
    return routes;
}

} // namespace hostprof
