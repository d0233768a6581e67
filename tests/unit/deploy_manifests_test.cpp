// The deployment files (deploy/) hold together without a cluster: helm is not packaged in
// Debian 12, so the plain manifests are parsed with yaml-cpp and checked here, and the
// Helm chart's values and templates are checked against them. The capability list is the
// one docs/deployment.md documents; alert runbooks exist; dashboards parse and query
// only PromQL the extractor understands (their names are checked against a live agent
// by tests/bpf/deploy_metrics_bpf_test.cpp).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../bpf/deploy_promql.h"

namespace {

using hostprof::deploytest::promql_metric_names;

std::string src(const std::string& rel) {
    return std::string(HOSTPROF_SOURCE_DIR) + "/" + rel;
}

std::string read_text(const std::string& rel) {
    std::ifstream in(src(rel));
    EXPECT_TRUE(in) << "cannot read " << rel;
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Rows "| `NAME` | why |" of the table under "## Capabilities" in docs/deployment.md.
std::set<std::string> documented_capabilities() {
    std::istringstream in(read_text("docs/deployment.md"));
    std::set<std::string> caps;
    bool on = false;
    std::regex row(R"(^\| `(CAP_)?([A-Z_]+)` \|)");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("## ", 0) == 0)
            on = line == "## Capabilities";
        std::smatch m;
        if (on && std::regex_search(line, m, row))
            caps.insert(m[2].str());
    }
    return caps;
}

std::vector<YAML::Node> manifests() {
    return YAML::LoadAllFromFile(src("deploy/kubernetes/daemonset.yaml"));
}

YAML::Node find_kind(const std::string& kind) {
    for (const YAML::Node& d : manifests())
        if (d["kind"] && d["kind"].as<std::string>() == kind)
            return d;
    ADD_FAILURE() << "no " << kind << " in daemonset.yaml";
    return YAML::Node();
}

std::set<std::string> as_set(const YAML::Node& seq) {
    std::set<std::string> out;
    for (const YAML::Node& n : seq)
        out.insert(n.as<std::string>());
    return out;
}

TEST(DeployDocs, CapabilityTableIsTheExpectedMinimalSet) {
    // Changing the set is a security decision: change this list, the docs and the
    // manifests together.
    EXPECT_EQ(documented_capabilities(),
              (std::set<std::string>{"BPF", "PERFMON", "SYS_RESOURCE", "SYS_PTRACE",
                                     "DAC_READ_SEARCH", "SYSLOG", "CHECKPOINT_RESTORE"}));
}

TEST(DeployKubernetes, DaemonSetIsHostPidWithTheDocumentedCapabilities) {
    YAML::Node ds = find_kind("DaemonSet");
    ASSERT_TRUE(ds);
    YAML::Node spec = ds["spec"]["template"]["spec"];
    EXPECT_TRUE(spec["hostPID"].as<bool>());
    ASSERT_EQ(spec["containers"].size(), 1u);
    YAML::Node c = spec["containers"][0];
    YAML::Node sc = c["securityContext"];
    EXPECT_FALSE(sc["privileged"].as<bool>());
    EXPECT_FALSE(sc["allowPrivilegeEscalation"].as<bool>());
    EXPECT_TRUE(sc["readOnlyRootFilesystem"].as<bool>());
    EXPECT_EQ(as_set(sc["capabilities"]["drop"]), std::set<std::string>{"ALL"});
    EXPECT_EQ(sc["capabilities"]["add"].size(), documented_capabilities().size()) << "duplicates";
    EXPECT_EQ(as_set(sc["capabilities"]["add"]), documented_capabilities());
    EXPECT_EQ(
        ds["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"].as<std::string>(),
        ds["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"].as<std::string>());
    EXPECT_EQ(spec["serviceAccountName"].as<std::string>(),
              find_kind("ServiceAccount")["metadata"]["name"].as<std::string>());
}

TEST(DeployKubernetes, ProbesPortsAndResources) {
    YAML::Node c = find_kind("DaemonSet")["spec"]["template"]["spec"]["containers"][0];
    EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/healthz");
    EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"].as<std::string>(), "/readyz");
    EXPECT_EQ(c["livenessProbe"]["httpGet"]["port"].as<std::string>(), "http");
    EXPECT_EQ(c["readinessProbe"]["httpGet"]["port"].as<std::string>(), "http");
    ASSERT_EQ(c["ports"][0]["name"].as<std::string>(), "http");
    int port = c["ports"][0]["containerPort"].as<int>();
    bool listen_matches = false;
    for (const YAML::Node& a : c["args"])
        listen_matches =
            listen_matches || a.as<std::string>() == "--listen=0.0.0.0:" + std::to_string(port);
    EXPECT_TRUE(listen_matches) << "--listen must bind the container port on all interfaces";
    for (const char* kind : {"requests", "limits"})
        for (const char* r : {"cpu", "memory"})
            EXPECT_TRUE(c["resources"][kind][r]) << kind << "." << r;
}

TEST(DeployKubernetes, HostMounts) {
    YAML::Node spec = find_kind("DaemonSet")["spec"]["template"]["spec"];
    std::map<std::string, std::string> host_path; // volume -> host path
    for (const YAML::Node& v : spec["volumes"])
        if (v["hostPath"])
            host_path[v["name"].as<std::string>()] = v["hostPath"]["path"].as<std::string>();
    std::map<std::string, YAML::Node> mounts; // host path -> mount
    for (const YAML::Node& m : spec["containers"][0]["volumeMounts"]) {
        auto it = host_path.find(m["name"].as<std::string>());
        if (it != host_path.end())
            mounts[it->second] = m;
    }
    for (const char* p : {"/sys/kernel/btf", "/sys/kernel/tracing", "/sys/fs/cgroup"}) {
        ASSERT_TRUE(mounts.contains(p)) << p;
        EXPECT_EQ(mounts[p]["mountPath"].as<std::string>(), p) << "mounted where the agent looks";
    }
    EXPECT_TRUE(mounts["/sys/kernel/btf"]["readOnly"].as<bool>());
    EXPECT_TRUE(mounts["/sys/fs/cgroup"]["readOnly"].as<bool>());
}

TEST(DeployKubernetes, ArgsAreDocumentedFlagsAndKnownCollectors) {
    std::string reference = read_text("docs/configuration.md");
    YAML::Node c = find_kind("DaemonSet")["spec"]["template"]["spec"]["containers"][0];
    ASSERT_EQ(c["args"][0].as<std::string>(), "run");
    for (size_t i = 1; i < c["args"].size(); ++i) {
        std::string a = c["args"][i].as<std::string>();
        std::string flag = a.substr(0, a.find('='));
        EXPECT_NE(reference.find("`" + flag + " "), std::string::npos)
            << flag << " is not in docs/configuration.md";
        if (flag == "--collectors") {
            const std::set<std::string> known = {"cpu", "offcpu", "syscalls",
                                                 "tcp", "block",  "runqueue"};
            std::stringstream list(a.substr(a.find('=') + 1));
            for (std::string col; std::getline(list, col, ',');)
                EXPECT_TRUE(known.contains(col)) << "unknown collector " << col;
        }
    }
}

TEST(DeployKubernetes, ServiceAndPodMonitorScrapeTheAgent) {
    YAML::Node svc = find_kind("Service");
    YAML::Node ds = find_kind("DaemonSet");
    auto ann = svc["metadata"]["annotations"];
    EXPECT_EQ(ann["prometheus.io/scrape"].as<std::string>(), "true");
    EXPECT_EQ(ann["prometheus.io/path"].as<std::string>(), "/metrics");
    EXPECT_EQ(
        ann["prometheus.io/port"].as<int>(),
        ds["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"].as<int>());
    for (const auto& kv : svc["spec"]["selector"])
        EXPECT_EQ(ds["spec"]["template"]["metadata"]["labels"][kv.first.as<std::string>()]
                      .as<std::string>(),
                  kv.second.as<std::string>());
    YAML::Node pm = find_kind("PodMonitor");
    EXPECT_EQ(pm["spec"]["podMetricsEndpoints"][0]["port"].as<std::string>(), "http");
    EXPECT_EQ(pm["spec"]["podMetricsEndpoints"][0]["path"].as<std::string>(), "/metrics");
}

TEST(DeployHelm, ValuesMatchThePlainManifest) {
    YAML::Node chart = YAML::LoadFile(src("deploy/helm/hostprof/Chart.yaml"));
    EXPECT_EQ(chart["apiVersion"].as<std::string>(), "v2");
    EXPECT_EQ(chart["name"].as<std::string>(), "hostprof");
    YAML::Node values = YAML::LoadFile(src("deploy/helm/hostprof/values.yaml"));
    EXPECT_EQ(as_set(values["capabilities"]["add"]), documented_capabilities());
    EXPECT_FALSE(values["capabilities"]["tracefsMount"].as<bool>());
    EXPECT_FALSE(values["privileged"].as<bool>());

    YAML::Node c = find_kind("DaemonSet")["spec"]["template"]["spec"]["containers"][0];
    std::set<std::string> args;
    for (const YAML::Node& a : c["args"])
        args.insert(a.as<std::string>());
    EXPECT_TRUE(args.contains("--listen=" + values["listen"].as<std::string>()));
    EXPECT_TRUE(args.contains("--frequency=" + values["frequency"].as<std::string>()));
    std::string cols;
    for (const YAML::Node& col : values["collectors"])
        cols += (cols.empty() ? "" : ",") + col.as<std::string>();
    EXPECT_TRUE(args.contains("--collectors=" + cols));
    for (const char* kind : {"requests", "limits"})
        for (const char* r : {"cpu", "memory"})
            EXPECT_EQ(values["resources"][kind][r].as<std::string>(),
                      c["resources"][kind][r].as<std::string>());
}

TEST(DeployHelm, TemplateKeepsHostPidProbesAndMounts) {
    // No helm in Debian 12 to render it: check the template's text for what matters.
    std::string t = read_text("deploy/helm/hostprof/templates/daemonset.yaml");
    for (const char* needle :
         {"hostPID: true", "path: /healthz", "path: /readyz", "range .Values.capabilities.add",
          "- ALL", "mountPath: /sys/kernel/btf", "mountPath: /sys/kernel/tracing",
          "mountPath: /sys/fs/cgroup", "--listen={{ .Values.listen }}",
          "allowPrivilegeEscalation: false"})
        EXPECT_NE(t.find(needle), std::string::npos) << needle;
    // Every {{ .Values.x.y }} the templates use exists in values.yaml.
    YAML::Node values = YAML::LoadFile(src("deploy/helm/hostprof/values.yaml"));
    std::regex ref(R"(\.Values\.([A-Za-z0-9_.]+))");
    for (const char* f : {"daemonset.yaml", "service.yaml", "podmonitor.yaml",
                          "serviceaccount.yaml", "_helpers.tpl", "NOTES.txt"}) {
        std::string text = read_text(std::string("deploy/helm/hostprof/templates/") + f);
        for (auto it = std::sregex_iterator(text.begin(), text.end(), ref);
             it != std::sregex_iterator(); ++it) {
            std::string path = (*it)[1].str();
            YAML::Node n = YAML::Clone(values);
            std::stringstream parts(path);
            bool found = true;
            for (std::string key; std::getline(parts, key, '.');) {
                if (!n.IsMap() || !n[key]) {
                    found = false;
                    break;
                }
                n = n[key];
            }
            EXPECT_TRUE(found) << f << " uses .Values." << path << ", not in values.yaml";
        }
    }
}

TEST(DeployAlloy, ScrapesTheGoCompatibleProfileEndpoint) {
    std::string a = read_text("deploy/alloy/pyroscope.alloy");
    EXPECT_TRUE(std::regex_search(
        a, std::regex(R"re(discovery\.kubernetes "\w+" \{\s*role\s*=\s*"(pod|node)")re")));
    EXPECT_TRUE(std::regex_search(a, std::regex(R"(pyroscope\.scrape "\w+" \{)")));
    EXPECT_TRUE(std::regex_search(
        a,
        std::regex(
            R"re(profile\.process_cpu \{\s*enabled\s*=\s*true\s*path\s*=\s*"/debug/pprof/profile"\s*(//[^\n]*\s*)*delta\s*=\s*false)re")))
        << "profile.process_cpu must pull /debug/pprof/profile with delta = false";
    // Braces balance (a cheap syntax check; Alloy is not packaged in Debian).
    EXPECT_EQ(std::count(a.begin(), a.end(), '{'), std::count(a.begin(), a.end(), '}'));
}

std::vector<std::pair<std::string, std::string>> rule_alerts() { // (alert, runbook_url)
    std::vector<std::pair<std::string, std::string>> out;
    YAML::Node rules = YAML::LoadFile(src("deploy/prometheus/hostprof-rules.yaml"));
    for (const YAML::Node& g : rules["groups"])
        for (const YAML::Node& r : g["rules"])
            if (r["alert"])
                out.emplace_back(r["alert"].as<std::string>(),
                                 r["annotations"]["runbook_url"].as<std::string>(""));
    return out;
}

TEST(DeployRules, EveryAlertLinksItsRunbookSection) {
    std::string runbooks = read_text("docs/runbooks.md");
    std::set<std::string> anchors; // GitHub-style anchors of "## " headings
    std::istringstream in(runbooks);
    for (std::string line; std::getline(in, line);)
        if (line.rfind("## ", 0) == 0) {
            std::string a;
            for (char ch : line.substr(3))
                if (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_')
                    a += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                else if (ch == ' ')
                    a += '-';
            anchors.insert(a);
        }
    auto alerts = rule_alerts();
    EXPECT_GE(alerts.size(), 7u);
    std::set<std::string> linked;
    for (const auto& [alert, url] : alerts) {
        std::string lower;
        for (char ch : alert)
            lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        EXPECT_EQ(url, "docs/runbooks.md#" + lower) << alert;
        EXPECT_TRUE(anchors.contains(lower)) << alert << " has no section in docs/runbooks.md";
        linked.insert(lower);
    }
    for (const std::string& a : anchors)
        EXPECT_TRUE(linked.contains(a)) << "runbook section #" << a << " has no alert";
}

TEST(DeployPromql, ExtractsMetricNamesOnly) {
    using S = std::set<std::string>;
    EXPECT_EQ(
        promql_metric_names(
            R"(histogram_quantile(0.99, sum by (cgroup_id, le) (rate(foo_seconds_bucket{syscall!~"a|b", x="{y}"}[$__rate_interval]))) > 1e-3)"),
        S{"foo_seconds_bucket"});
    EXPECT_EQ(
        promql_metric_names(
            "sum(rate(a_total[5m])) by (le) / on (instance) group_left(job) b_total offset 5m"),
        (S{"a_total", "b_total"}));
    EXPECT_EQ(promql_metric_names("count(x == 0) or vector(0) and bool y"), (S{"x", "y"}));
    EXPECT_EQ(promql_metric_names("up"), S{"up"});
    EXPECT_EQ(hostprof::deploytest::family_of("foo_bucket", {"foo"}), "foo");
    EXPECT_EQ(hostprof::deploytest::family_of("bar_count", {"foo"}), "bar_count");
}

void collect_exprs(const nlohmann::json& panel, std::vector<std::string>& out) {
    if (panel.contains("targets"))
        for (const auto& t : panel["targets"])
            if (t.contains("expr"))
                out.push_back(t["expr"].get<std::string>());
    if (panel.contains("panels"))
        for (const auto& p : panel["panels"])
            collect_exprs(p, out);
}

TEST(DeployGrafana, DashboardsParseAndQueryAgentMetrics) {
    std::set<std::string> uids;
    for (const char* f : {"node-kernel-latency.json", "hostprof-agent-health.json"}) {
        auto d = nlohmann::json::parse(read_text(std::string("deploy/grafana/dashboards/") + f),
                                       nullptr, false);
        ASSERT_FALSE(d.is_discarded()) << f << " is not JSON";
        EXPECT_TRUE(uids.insert(d["uid"].get<std::string>()).second) << "duplicate uid";
        std::set<std::string> vars;
        for (const auto& v : d["templating"]["list"])
            vars.insert(v["name"].get<std::string>());
        std::set<int> ids;
        for (const auto& p : d["panels"]) {
            EXPECT_TRUE(ids.insert(p["id"].get<int>()).second) << f << ": duplicate panel id";
            if (p["type"] == "row")
                continue;
            // Data sources come from the dashboard's variables, never a hard-coded uid.
            std::string ds = p["datasource"]["uid"].get<std::string>();
            ASSERT_TRUE(ds.size() > 3 && ds.front() == '$') << f << ": " << p["title"];
            EXPECT_TRUE(vars.contains(ds.substr(2, ds.size() - 3))) << ds;
        }
        std::vector<std::string> exprs;
        collect_exprs(d, exprs);
        EXPECT_GE(exprs.size(), 8u) << f;
        for (const std::string& e : exprs) {
            auto names = promql_metric_names(e);
            EXPECT_FALSE(names.empty()) << f << ": no metric in " << e;
            for (const std::string& n : names)
                EXPECT_TRUE(n.rfind("hostprof_", 0) == 0 || n.rfind("process_", 0) == 0)
                    << f << ": " << n << " is not a hostprof metric (" << e << ")";
        }
    }
}

// Without running anything: every queried name is a metric family the agent's code
// defines (a quoted literal in agent/**/*.cpp), so a typo or a renamed family fails here
// even before the collector behind it runs (tests/bpf/deploy_metrics_bpf_test.cpp then
// checks a real scrape).
TEST(DeployGrafana, EveryQueriedNameIsDefinedByTheAgent) {
    std::string code;
    const std::filesystem::path root = src("agent");
    for (const auto& e : std::filesystem::recursive_directory_iterator(root))
        if (e.path().extension() == ".cpp")
            code += read_text("agent/" + std::filesystem::relative(e.path(), root).string());
    std::set<std::string> names;
    for (const char* f : {"node-kernel-latency.json", "hostprof-agent-health.json"}) {
        auto d = nlohmann::json::parse(read_text(std::string("deploy/grafana/dashboards/") + f));
        std::vector<std::string> exprs;
        collect_exprs(d, exprs);
        for (const auto& v : d["templating"]["list"])
            if (v.contains("definition"))
                exprs.push_back(std::regex_replace(v["definition"].get<std::string>(),
                                                   std::regex(R"(label_values\((.*),\s*\w+\)$)"),
                                                   "$1"));
        for (const std::string& e : exprs)
            for (const std::string& n : promql_metric_names(e))
                names.insert(n);
    }
    YAML::Node rules = YAML::LoadFile(src("deploy/prometheus/hostprof-rules.yaml"));
    for (const YAML::Node& g : rules["groups"])
        for (const YAML::Node& r : g["rules"])
            for (const std::string& n : promql_metric_names(r["expr"].as<std::string>()))
                names.insert(n);
    EXPECT_GT(names.size(), 15u);
    for (const std::string& n : names) {
        bool defined = code.find("\"" + n + "\"") != std::string::npos;
        for (std::string suffix : {"_bucket", "_count", "_sum"})
            if (n.ends_with(suffix))
                defined = defined || code.find("\"" + n.substr(0, n.size() - suffix.size()) +
                                               "\"") != std::string::npos;
        EXPECT_TRUE(defined) << n << " is queried but no agent/**/*.cpp defines it";
    }
}

TEST(DeployGrafana, FlameGraphPanelIsWiredToPyroscopeProcessCpu) {
    auto d = nlohmann::json::parse(read_text("deploy/grafana/dashboards/node-kernel-latency.json"));
    bool has_service_var = false;
    for (const auto& v : d["templating"]["list"])
        if (v["name"] == "service_name") {
            has_service_var = true;
            EXPECT_EQ(v["query"]["labelName"], "service_name");
            EXPECT_EQ(v["datasource"]["type"], "grafana-pyroscope-datasource");
        }
    EXPECT_TRUE(has_service_var);
    int flamegraphs = 0;
    for (const auto& p : d["panels"])
        if (p["type"] == "flamegraph") {
            ++flamegraphs;
            EXPECT_EQ(p["datasource"]["type"], "grafana-pyroscope-datasource");
            const auto& t = p["targets"][0];
            EXPECT_EQ(t["profileTypeId"], "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
            EXPECT_NE(t["labelSelector"].get<std::string>().find("$service_name"),
                      std::string::npos);
        }
    EXPECT_EQ(flamegraphs, 1);
    YAML::Node ds = YAML::LoadFile(src("deploy/grafana/provisioning/datasources/hostprof.yaml"));
    std::set<std::string> types;
    for (const YAML::Node& n : ds["datasources"])
        types.insert(n["type"].as<std::string>());
    EXPECT_EQ(types, (std::set<std::string>{"prometheus", "grafana-pyroscope-datasource"}));
}

} // namespace
