#include "agent/endpoints.h"

#include <charconv>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/renderers.h"

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
    if (!pr)
        return HttpResponse::text(400, pr.error().message());
    ProfileSlot slot(st.active_profiles, st.limits.max_concurrent_profiles);
    if (!slot.ok()) {
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

HttpResponse flamegraph_handler(AgentState& st, const HttpRequest& req) {
    if (st.pipeline == nullptr)
        return HttpResponse::text(503, "profiling is not running (see /readyz)");
    std::optional<ProfileWindow> window;
    if (query_param(req.query, "seconds")) {
        auto pr = parse_profile_request(req.query, st.limits);
        if (!pr)
            return HttpResponse::text(400, pr.error().message());
        ProfileSlot slot(st.active_profiles, st.limits.max_concurrent_profiles);
        if (!slot.ok())
            return HttpResponse::text(429, "too many concurrent profile requests");
        auto id = st.pipeline->subscribe(HP_PROF_ON_CPU, pr->filter);
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
    r.body = render_flamegraph_page(p, "hostprof: on-CPU flame graph");
    return r;
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
    return json_response(running == 0 ? 503 : 200,
                         {{"status", status}, {"collectors", collectors}});
}

HttpResponse metrics_handler(AgentState& st, const HttpRequest& req) {
    std::vector<prometheus::MetricFamily> families;
    for (const auto& c : st.collectables) {
        auto f = c->Collect();
        families.insert(families.end(), std::make_move_iterator(f.begin()),
                        std::make_move_iterator(f.end()));
    }
    auto [content_type, body] = render_metrics(families, req.header("accept"));
    HttpResponse r;
    r.content_type = content_type;
    r.body = std::move(body);
    return r;
}

} // namespace

Result<ProfileRequest> parse_profile_request(std::string_view query, const EndpointLimits& limits) {
    ProfileRequest r;
    r.seconds = limits.default_seconds;
    if (auto s = query_param(query, "seconds")) {
        int v = 0;
        auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
        if (ec != std::errc() || p != s->data() + s->size() || v < 1 || v > limits.max_seconds)
            return Error{0, "bad seconds '" + *s + "': must be an integer from 1 to " +
                                std::to_string(limits.max_seconds)};
        r.seconds = v;
    }
    if (auto s = query_param(query, "pid")) {
        uint32_t v = 0;
        auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
        if (ec != std::errc() || p != s->data() + s->size() || v == 0)
            return Error{0, "bad pid '" + *s + "'"};
        r.filter.pid = v;
    }
    if (auto s = query_param(query, "cgroup"))
        r.filter.cgroup_prefix = *s;
    if (auto s = query_param(query, "container")) {
        if (s->size() < 12)
            return Error{0, "container ids need at least 12 hex digits"};
        r.filter.container_id = *s;
    }
    if (auto s = query_param(query, "service"))
        r.filter.service = *s;
    if (auto s = query_param(query, "comm")) {
        try {
            r.filter.comm = std::regex(*s, std::regex::extended | std::regex::nosubs);
        } catch (const std::regex_error& e) {
            return Error{0, "bad comm regex '" + *s + "': " + e.what()};
        }
    }
    return r;
}

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
    routes["/flamegraph"] = [&st](const HttpRequest& r) { return flamegraph_handler(st, r); };
    routes["/"] = [](const HttpRequest&) {
        HttpResponse r;
        r.content_type = "text/html; charset=utf-8";
        r.body = "<!doctype html><title>hostprof</title><h1>hostprof</h1><ul>"
                 "<li><a href=\"/flamegraph\">/flamegraph</a></li>"
                 "<li><a href=\"/metrics\">/metrics</a></li>"
                 "<li><a href=\"/readyz\">/readyz</a></li>"
                 "<li>/debug/pprof/profile?seconds=N (pprof; pid=, cgroup=, container=, "
                 "service=, comm=)</li><li>/debug/pprof/offcpu?seconds=N</li></ul>\n";
        return r;
    };
    return routes;
}

} // namespace hostprof
