// Privileged: every metric name that a shipped dashboard or alert rule queries is
// exported by a real agent. Starts `hostprof run` with every collector on a free
// loopback port, scrapes /metrics (text 0.0.4), and checks each PromQL name from
// deploy/grafana/dashboards/*.json and deploy/prometheus/hostprof-rules.yaml against the
// scraped families (foo_bucket/_count/_sum belong to histogram foo).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>
#include <map>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "bpf_test_util.h"
#include "deploy_promql.h"

using namespace std::chrono_literals;

namespace {

std::string src(const std::string& rel) {
    return std::string(HOSTPROF_SOURCE_DIR) + "/" + rel;
}

int free_port() {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (s < 0 || ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        if (s >= 0)
            ::close(s);
        return -1;
    }
    ::close(s);
    return ntohs(a.sin_port);
}

// A plain HTTP/1.0 GET; returns the body of a 200 answer (any answer if any_status), or
// "" on any failure.
std::string http_get(int port, const std::string& path, bool any_status = false) {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return "";
    timeval tv{10, 0};
    ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string resp;
    if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
        std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        if (::write(s, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
            char buf[65536];
            ssize_t n;
            while ((n = ::read(s, buf, sizeof(buf))) > 0)
                resp.append(buf, static_cast<size_t>(n));
        }
    }
    ::close(s);
    if (resp.rfind("HTTP/1.", 0) != 0 || (!any_status && resp.find(" 200 ") == std::string::npos))
        return "";
    size_t body = resp.find("\r\n\r\n");
    return body == std::string::npos ? "" : resp.substr(body + 4);
}

std::string http_get_any(int port, const std::string& path) {
    return http_get(port, path, true);
}

struct Scrape {
    std::set<std::string> families;   // from # TYPE lines and sample names
    std::set<std::string> histograms; // families of type histogram or summary
};

Scrape parse_exposition(const std::string& text) {
    Scrape s;
    std::istringstream in(text);
    std::regex type_line(R"(^# TYPE ([A-Za-z_:][A-Za-z0-9_:]*) (\w+))");
    std::regex sample(R"(^([A-Za-z_:][A-Za-z0-9_:]*)[{ ])");
    for (std::string line; std::getline(in, line);) {
        std::smatch m;
        if (std::regex_search(line, m, type_line)) {
            s.families.insert(m[1].str());
            if (m[2] == "histogram" || m[2] == "summary")
                s.histograms.insert(m[1].str());
        } else if (!line.empty() && line[0] != '#' && std::regex_search(line, m, sample)) {
            s.families.insert(m[1].str());
        }
    }
    return s;
}

// Every metric name a shipped dashboard or rule queries -> where it is used.
std::map<std::string, std::string> queried_names() {
    std::map<std::string, std::string> out;
    auto add = [&](const std::string& expr, const std::string& where) {
        for (const std::string& n : hostprof::deploytest::promql_metric_names(expr))
            out.emplace(n, where);
    };
    YAML::Node rules = YAML::LoadFile(src("deploy/prometheus/hostprof-rules.yaml"));
    for (const YAML::Node& g : rules["groups"])
        for (const YAML::Node& r : g["rules"])
            add(r["expr"].as<std::string>(),
                "hostprof-rules.yaml " +
                    r["alert"].as<std::string>(r["record"].as<std::string>("")));
    for (const char* f : {"node-kernel-latency.json", "hostprof-agent-health.json"}) {
        std::ifstream in(src(std::string("deploy/grafana/dashboards/") + f));
        auto d = nlohmann::json::parse(in);
        std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& p) {
            if (p.contains("targets"))
                for (const auto& t : p["targets"])
                    if (t.contains("expr"))
                        add(t["expr"].get<std::string>(),
                            std::string(f) + " \"" + p.value("title", "") + "\"");
            if (p.contains("panels"))
                for (const auto& c : p["panels"])
                    walk(c);
        };
        walk(d);
        // Variables: label_values(metric{...}, label).
        std::regex lv(R"(label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*))");
        for (const auto& v : d["templating"]["list"]) {
            std::string def = v.value("definition", "");
            std::smatch m;
            if (std::regex_search(def, m, lv))
                out.emplace(m[1].str(), std::string(f) + " variable " + v.value("name", ""));
        }
    }
    return out;
}

// The collector whose metrics a name belongs to ("" for the agent's own).
std::string collector_of(const std::string& name) {
    for (const auto& [prefix, col] :
         std::vector<std::pair<std::string, std::string>>{{"hostprof_syscall_", "syscalls"},
                                                          {"hostprof_cgroup_syscall_", "syscalls"},
                                                          {"hostprof_tcp_", "tcp"},
                                                          {"hostprof_block_", "block"},
                                                          {"hostprof_runqueue_", "runqueue"}})
        if (name.rfind(prefix, 0) == 0)
            return col;
    return "";
}

TEST(DeployMetrics, EveryDashboardAndAlertMetricIsInARealScrape) {
    HOSTPROF_REQUIRE_ROOT();
    auto names = queried_names();
    ASSERT_GT(names.size(), 10u);

    int port = free_port();
    ASSERT_GT(port, 0);
    int err_pipe[2];
    ASSERT_EQ(::pipe2(err_pipe, O_CLOEXEC), 0);
    std::string listen = "127.0.0.1:" + std::to_string(port);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::dup2(err_pipe[1], STDERR_FILENO);
        // Every collector, per-cgroup syscall histograms for the top-level cgroups (the
        // manifests set container patterns).
        ::execl(HOSTPROF_BINARY, HOSTPROF_BINARY, "run", "--listen", listen.c_str(), "--collectors",
                "cpu,offcpu,syscalls,tcp,block,runqueue", "--frequency", "49", "--log-format",
                "json", "--syscall-cgroups", "/*", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(err_pipe[1]);
    std::string log;
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (log.find("ready in") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
        pollfd pfd{err_pipe[0], POLLIN, 0};
        if (::poll(&pfd, 1, 200) > 0) {
            char buf[4096];
            ssize_t n = ::read(err_pipe[0], buf, sizeof(buf));
            if (n <= 0)
                break;
            log.append(buf, static_cast<size_t>(n));
        }
    }
    std::string body, readyz;
    if (log.find("ready in") != std::string::npos) {
        // Some syscalls and I/O so the histograms have observations.
        for (int i = 0; i < 20 && body.empty(); ++i) {
            std::this_thread::sleep_for(100ms);
            { std::ofstream("/dev/null") << "x"; }
            body = http_get(port, "/metrics");
        }
        // A second scrape after a little activity: counters of events seen since start.
        std::this_thread::sleep_for(500ms);
        std::string again = http_get(port, "/metrics");
        if (!again.empty())
            body = again;
        readyz = http_get_any(port, "/readyz");
    }
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
    char buf[4096];
    ssize_t n;
    while ((n = ::read(err_pipe[0], buf, sizeof(buf))) > 0)
        log.append(buf, static_cast<size_t>(n));
    ::close(err_pipe[0]);
    ASSERT_NE(log.find("ready in"), std::string::npos) << "agent did not become ready:\n" << log;
    ASSERT_FALSE(body.empty()) << "GET http://" << listen << "/metrics gave no 200 body\n" << log;

    // A collector this build does not have yet cannot export anything: /readyz says so
    // ("not implemented"). Its names are listed, not failed; every collector that exists
    // must run here (CI's kernel has BTF) and export every queried name.
    std::set<std::string> not_built;
    auto ready = nlohmann::json::parse(readyz, nullptr, false);
    ASSERT_TRUE(ready.is_object() && ready.contains("collectors")) << "/readyz: " << readyz;
    for (const auto& [col, st] : ready["collectors"].items())
        if (st.value("reason", "").find("not implemented") != std::string::npos)
            not_built.insert(col);
    Scrape s = parse_exposition(body);
    std::string missing, pending;
    for (const auto& [name, where] : names) {
        if (s.families.contains(hostprof::deploytest::family_of(name, s.histograms)))
            continue;
        if (not_built.contains(collector_of(name)))
            pending += "  " + name + "  (" + collector_of(name) + " collector not built yet)\n";
        else
            missing += "  " + name + "  (" + where + ")\n";
    }
    if (!pending.empty())
        std::cout << "[ NOTE ] queried names of collectors this build does not run yet:\n"
                  << pending;
    EXPECT_TRUE(missing.empty()) << "queried by dashboards/alerts but not exported by the agent:\n"
                                 << missing << "exported families:\n"
                                 << [&] {
                                        std::string f;
                                        for (const auto& x : s.families)
                                            f += "  " + x + "\n";
                                        return f;
                                    }();
}

// The agent's flags in a shipped deployment, without `run` and `--listen`.
std::vector<std::string> systemd_unit_args() {
    std::ifstream in(src("deploy/systemd/hostprof.service"));
    std::vector<std::string> args;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("ExecStart=", 0) != 0)
            continue;
        std::istringstream words(line.substr(10));
        std::string w;
        words >> w >> w; // the binary, then `run`
        while (words >> w)
            args.push_back(w);
    }
    return args;
}

std::vector<std::string> daemonset_args() {
    std::vector<std::string> args;
    for (const YAML::Node& d : YAML::LoadAllFromFile(src("deploy/kubernetes/daemonset.yaml"))) {
        if (d["kind"].as<std::string>("") != "DaemonSet")
            continue;
        for (const YAML::Node& a : d["spec"]["template"]["spec"]["containers"][0]["args"]) {
            std::string s = a.as<std::string>();
            if (s != "run" && s.rfind("--listen", 0) != 0)
                args.push_back(s);
        }
    }
    return args;
}

struct Panel {
    std::string where, description;
    std::vector<std::string> exprs; // its Prometheus queries
};

std::vector<Panel> dashboard_panels() {
    std::vector<Panel> out;
    for (const char* f : {"node-kernel-latency.json", "hostprof-agent-health.json"}) {
        std::ifstream in(src(std::string("deploy/grafana/dashboards/") + f));
        auto d = nlohmann::json::parse(in);
        std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& p) {
            Panel panel{std::string(f) + " \"" + p.value("title", "") + "\"",
                        p.value("description", ""),
                        {}};
            if (p.contains("targets"))
                for (const auto& t : p["targets"])
                    if (t.contains("expr"))
                        panel.exprs.push_back(t["expr"].get<std::string>());
            if (!panel.exprs.empty())
                out.push_back(panel);
            if (p.contains("panels"))
                for (const auto& c : p["panels"])
                    walk(c);
        };
        walk(d);
    }
    return out;
}

// A dashboard query as Grafana would send it: every template variable is "All" (.*), the
// rate interval 10 s (the test's Prometheus scrapes every second).
std::string as_grafana_sends(const std::string& expr) {
    std::string e =
        std::regex_replace(expr, std::regex(R"(\$__rate_interval|\$__interval)"), "10s");
    return std::regex_replace(e, std::regex(R"(\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)"), ".*");
}

// Whether a query result holds a number (not just NaN, as a quantile of no events is).
bool has_data(const nlohmann::json& r) {
    if (!r.is_object() || r.value("status", "") != "success")
        return false;
    for (const auto& s : r["data"]["result"]) {
        const std::string v = s["value"][1].get<std::string>();
        if (v != "NaN")
            return true;
    }
    return false;
}

// Metrics that exist only where something is set, by name prefix.
const std::vector<std::pair<std::string, std::string>> kConditional = {
    {"hostprof_cgroup_syscall_latency_seconds", "needs --syscall-cgroups matching live cgroups"},
    {"hostprof_bpf_program_run", "needs kernel.bpf_stats_enabled=1"},
};

// With each shipped configuration (the systemd unit's and the DaemonSet's flags; the Helm
// chart renders the DaemonSet's, tests/unit/deploy_manifests_test.cpp), a real Prometheus
// scrapes the agent and evaluates the shipped alert rules. Every dashboard panel has data,
// or its description says what it needs ("Needs ..."); every rule evaluates without error
// and every metric it names has series.
TEST(DeployMetrics, EveryPanelHasDataUnderTheShippedConfigurations) {
    HOSTPROF_REQUIRE_ROOT();
    const auto panels = dashboard_panels();
    ASSERT_GT(panels.size(), 20u);
    for (const auto& [config, args] : {std::pair{std::string("systemd unit"), systemd_unit_args()},
                                       std::pair{std::string("DaemonSet"), daemonset_args()}}) {
        SCOPED_TRACE(config);
        ASSERT_GT(args.size(), 1u);
        hostprof::bpftest::AgentProcess agent(args);
        ASSERT_TRUE(agent.ready()) << agent.log();
        hostprof::bpftest::PromServer prom(agent.port(), "deploy", {},
                                           {src("deploy/prometheus/hostprof-rules.yaml")});
        ASSERT_TRUE(prom.wait_up()) << prom.log();
        // What a node does anyway, a little of each: TCP connections that open and close,
        // direct block writes, syscalls, CPU.
        const std::string file = "/var/tmp/hostprof-deploy-" + std::to_string(::getpid());
        for (int round = 0; round < 6; ++round) {
            for (int i = 0; i < 10; ++i)
                http_get(agent.port(), "/healthz");
            hostprof::bpftest::run_command("dd if=/dev/zero of=" + file +
                                           " bs=4k count=50 oflag=direct 2>&1");
            std::this_thread::sleep_for(2s);
        }
        std::remove(file.c_str());

        std::string missing;
        int with_data = 0;
        for (const Panel& p : panels) {
            bool any = false;
            for (const std::string& e : p.exprs)
                any = any || has_data(prom.query(as_grafana_sends(e)));
            if (any) {
                ++with_data;
                continue;
            }
            if (p.description.find("Needs ") == std::string::npos)
                missing += "  " + p.where + ": " + as_grafana_sends(p.exprs.front()) + "\n";
            else
                std::cout << "[ NOTE ] " << config << ": " << p.where
                          << " has no data: " << p.description.substr(p.description.find("Needs "))
                          << "\n";
        }
        std::cout << "[ NOTE ] " << config << ": " << with_data << " of " << panels.size()
                  << " panels have data\n";
        EXPECT_TRUE(missing.empty())
            << "panels with no data whose description does not say what they need:\n"
            << missing;

        // The alert rules: each evaluated without error; each metric it names has series,
        // but for the two that exist only where something is set.
        const nlohmann::json rules = prom.api("rules");
        ASSERT_TRUE(rules.is_object() && rules.value("status", "") == "success") << rules.dump();
        int evaluated = 0;
        for (const auto& g : rules["data"]["groups"])
            for (const auto& r : g["rules"]) {
                ++evaluated;
                EXPECT_EQ(r.value("health", ""), "ok")
                    << r.value("name", "") << ": " << r.value("lastError", "");
                for (const std::string& n :
                     hostprof::deploytest::promql_metric_names(r["query"].get<std::string>())) {
                    if (has_data(prom.query("count({__name__=\"" + n + "\"})")))
                        continue;
                    const auto cond =
                        std::find_if(kConditional.begin(), kConditional.end(),
                                     [&](const auto& c) { return n.rfind(c.first, 0) == 0; });
                    if (cond == kConditional.end())
                        ADD_FAILURE()
                            << r.value("name", "") << " queries " << n << ", which has no series";
                    else
                        std::cout << "[ NOTE ] " << config << ": " << r.value("name", "") << ": no "
                                  << n << " here (" << cond->second << ")\n";
                }
            }
        EXPECT_GT(evaluated, 5);
    }
}

} // namespace
