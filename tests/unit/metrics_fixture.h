// Shared by the exporters_metrics*_test.cpp files: a scrape as the agent would serve it,
// and the exemplars of its outliers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "exporters/metrics.h"
#include "exporters_fixture.h"

namespace hostprof::testing {

using prometheus::MetricFamily;
using prometheus::MetricType;

inline constexpr double kNs = 1e-9;

// A scrape as the agent would serve it: a log2 latency histogram (two syscalls), a
// counter, a gauge, an untyped value, a summary, label values needing escapes.
inline std::vector<MetricFamily> fixture_families() {
    std::vector<MetricFamily> families;
    static const std::vector<uint64_t> read_ns = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 10, 4, 0, 1};
    static const std::vector<uint64_t> write_ns = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2};
    const std::vector<Log2Histogram> series = {
        {read_ns, kNs, 123456.0, {{"syscall", "read"}}},
        {write_ns, kNs, std::nullopt, {{"syscall", "write"}}},
    };
    families.push_back(
        log2_histogram_family("hostprof_syscall_latency_seconds", "Syscall latency.", series));
    MetricFamily events{"hostprof_ringbuf_events_total",
                        "Events read from a BPF ring buffer.",
                        MetricType::Counter,
                        {}};
    events.metric.resize(2);
    events.metric[0].label = {{"ringbuf", "profile"}};
    events.metric[0].counter.value = 1234;
    events.metric[1].label = {{"ringbuf", "syscalls"}};
    events.metric[1].counter.value = 56;
    families.push_back(events);
    MetricFamily rss{"hostprof_resident_memory_bytes", "Agent RSS.", MetricType::Gauge, {}};
    rss.metric.resize(1);
    rss.metric[0].gauge.value = 52428800;
    families.push_back(rss);
    MetricFamily attached{"hostprof_program_attached",
                          "Attach mode per hook \"quoted\"\nsecond line \\.",
                          MetricType::Untyped,
                          {}};
    attached.metric.resize(1);
    attached.metric[0].label = {{"hook", "sched/sched_switch"}, {"mode", "tp_btf \"x\"\\y\nz"}};
    attached.metric[0].untyped.value = 1;
    families.push_back(attached);
    MetricFamily sym{
        "hostprof_symbolize_duration_seconds", "Symbolization time.", MetricType::Summary, {}};
    sym.metric.resize(1);
    sym.metric[0].summary.sample_count = 10;
    sym.metric[0].summary.sample_sum = 0.25;
    sym.metric[0].summary.quantile = {{0.5, 0.01}, {0.99, 0.125}};
    families.push_back(sym);
    return families;
}

inline ExemplarSet fixture_exemplars() {
    ExemplarSet ex;
    // The slowest read landed in bucket 14: [16384, 32768) ns.
    ex.set("hostprof_syscall_latency_seconds", {{"syscall", "read"}},
           log2_bucket_upper_bound(14, kNs),
           {{{"pid", "4242"}, {"comm", "postgres"}, {"stack_id", "9f1c"}}, 2.1e-05, 1700000000.5});
    ex.set("hostprof_syscall_latency_seconds", {{"syscall", "write"}},
           log2_bucket_upper_bound(13, kNs), {{{"pid", "77"}}, 1.2e-05, std::nullopt});
    // Too long for OpenMetrics (> 128 label characters): left out.
    ex.set("hostprof_syscall_latency_seconds", {{"syscall", "write"}},
           log2_bucket_upper_bound(12, kNs),
           {{{"trace", std::string(130, 'a')}}, 5e-06, std::nullopt});
    return ex;
}

// A real Debian `prometheus` (with `flags`) scrapes `body`, served with `content_type` from
// a loopback stub, every second, until `ready` has a value (25 s at most). The output has
// a line "health H error 'E'", then "NAME VALUE" for each query (None: no result),
// "exemplar LE [LABELS] VALUE" for each exemplar of `exemplar_series` when given, and
// "accept HEADER" (what Prometheus asked the stub for).
inline CommandResult
scrape_with_prometheus(const std::string& body, const std::string& content_type,
                       const std::string& flags, const std::string& ready,
                       const std::vector<std::pair<std::string, std::string>>& queries,
                       const std::string& exemplar_series = "") {
    const auto dir = temp_dir("prom-scrape");
    write_file((dir / "body").string(), body);
    std::string q;
    for (const auto& [name, promql] : queries)
        q += name + "\t" + promql + "\n";
    write_file((dir / "queries").string(), q);
    const std::string script = R"PY(
import http.server, json, os, socket, subprocess, sys, threading, time, urllib.parse, urllib.request
d, content_type, flags, ready, exemplar_series = sys.argv[1:6]
body = open(os.path.join(d, "body"), "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        open(os.path.join(d, "accept.txt"), "w").write(self.headers.get("Accept", ""))
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
s = socket.socket(); s.bind(("127.0.0.1", 0)); web = s.getsockname()[1]; s.close()
open(os.path.join(d, "prometheus.yml"), "w").write(
    "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
    "scrape_configs:\n- job_name: exp\n  static_configs: [{targets: ['127.0.0.1:%d']}]\n" % srv.server_address[1])
log = open(os.path.join(d, "prometheus.log"), "w")
prom = subprocess.Popen(["prometheus", "--config.file=" + os.path.join(d, "prometheus.yml"),
    "--storage.tsdb.path=" + os.path.join(d, "data"), "--web.listen-address=127.0.0.1:%d" % web]
    + flags.split(), stdout=log, stderr=log)
def api(path, **q):
    url = "http://127.0.0.1:%d/api/v1/%s?%s" % (web, path, urllib.parse.urlencode(q))
    return json.load(urllib.request.urlopen(url, timeout=2))["data"]
def value(expr):
    r = api("query", query=expr)["result"]
    return r[0]["value"][1] if r else None
try:
    deadline = time.time() + 25
    while time.time() < deadline:
        try:
            if value(ready) is not None:
                break
        except Exception:
            pass
        time.sleep(0.3)
    t = api("targets")["activeTargets"][0]
    print("health", t["health"], "error", repr(t["lastError"]))
    for line in open(os.path.join(d, "queries")).read().splitlines():
        name, expr = line.split("\t", 1)
        print(name, value(expr))
    if exemplar_series:
        for series in api("query_exemplars", query=exemplar_series, start=1600000000, end=time.time() + 60):
            for e in series["exemplars"]:
                print("exemplar", series["seriesLabels"].get("le"), sorted(e["labels"].items()), e["value"])
    print("accept", open(os.path.join(d, "accept.txt")).read())
finally:
    prom.terminate()
    prom.wait(timeout=10)
)PY";
    write_file((dir / "scrape.py").string(), script);
    auto quote = [](const std::string& v) {
        std::string out = "'";
        for (char c : v)
            out += c == '\'' ? std::string("'\\''") : std::string(1, c);
        return out + "'";
    };
    CommandResult r =
        run_command("timeout 60 /usr/bin/python3 " + (dir / "scrape.py").string() + " " +
                    dir.string() + " " + quote(content_type) + " " + quote(flags) + " " +
                    quote(ready) + " " + quote(exemplar_series) + " 2>&1");
    if (r.exit_code != 0)
        r.output += "\n" + read_file((dir / "prometheus.log").string()).substr(0, 3000);
    std::filesystem::remove_all(dir);
    return r;
}

} // namespace hostprof::testing
