#include "agent/config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include "kernel-compat/syscall_table.h"
#include "exporters/pyroscope.h"

namespace hostprof {
namespace {

Error bad(std::string_view key, const std::string& value, const std::string& why) {
    return Error{0, std::string(key) + ": invalid value '" + value + "': " + why};
}

template <class T> std::optional<T> parse_number(std::string_view s) {
    T v{};
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || s.empty())
        return std::nullopt;
    return v;
}

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::string item;
    std::istringstream in(s);
    while (std::getline(in, item, ',')) {
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        if (!item.empty())
            out.push_back(item);
    }
    return out;
}

std::optional<bool> parse_bool(const std::string& s) {
    if (s == "true" || s == "yes" || s == "on" || s == "1")
        return true;
    if (s == "false" || s == "no" || s == "off" || s == "0")
        return false;
    return std::nullopt;
}

std::string show_duration(uint64_t ns) {
    if (ns == 0)
        return "0";
    if (ns % 1'000'000'000 == 0)
        return std::to_string(ns / 1'000'000'000) + "s";
    if (ns % 1'000'000 == 0)
        return std::to_string(ns / 1'000'000) + "ms";
    if (ns % 1'000 == 0)
        return std::to_string(ns / 1'000) + "us";
    return std::to_string(ns) + "ns";
}

std::string show_size(uint64_t bytes) {
    if (bytes != 0 && bytes % (1ULL << 30) == 0)
        return std::to_string(bytes >> 30) + "GiB";
    if (bytes != 0 && bytes % (1ULL << 20) == 0)
        return std::to_string(bytes >> 20) + "MiB";
    if (bytes != 0 && bytes % (1ULL << 10) == 0)
        return std::to_string(bytes >> 10) + "KiB";
    return std::to_string(bytes);
}

std::vector<Setting> make_settings() {
    std::vector<Setting> s;
    s.push_back({"frequency", "HZ", "On-CPU sampling frequency per CPU, 1..1000 Hz.", false,
                 [](Config& c, const std::string& v) -> Status {
                     auto n = parse_number<int>(v);
                     if (!n || *n < 1 || *n > 1000)
                         return bad("frequency", v, "must be an integer from 1 to 1000 (Hz)");
                     c.frequency_hz = *n;
                     return {};
                 },
                 [](const Config& c) { return std::to_string(c.frequency_hz); }});
    s.push_back({"collectors", "LIST",
                 "Collectors to run, comma-separated: cpu, offcpu, syscalls, tcp, block, runqueue.",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     std::vector<compat::Collector> out;
                     for (const std::string& name : split_list(v)) {
                         auto col = compat::collector_from_string(name);
                         if (!col)
                             return bad("collectors", v,
                                        "unknown collector '" + name +
                                            "' (known: cpu, offcpu, syscalls, tcp, block, "
                                            "runqueue)");
                         if (std::find(out.begin(), out.end(), *col) == out.end())
                             out.push_back(*col);
                     }
                     if (out.empty())
                         return bad("collectors", v, "names no collector");
                     c.collectors = out;
                     return {};
                 },
                 [](const Config& c) {
                     std::string out;
                     for (auto col : c.collectors)
                         out += (out.empty() ? "" : ",") + std::string(compat::to_string(col));
                     return out;
                 }});
    s.push_back({"attach_mode", "MODE",
                 "Force the tracepoint attach mode: auto, tp_btf, raw_tp or tracepoint.", false,
                 [](Config& c, const std::string& v) -> Status {
                     if (v == "auto") {
                         c.attach_mode.reset();
                         return {};
                     }
                     auto m = compat::attach_mode_from_string(v);
                     if (!m)
                         return bad("attach_mode", v, "must be auto, tp_btf, raw_tp or tracepoint");
                     c.attach_mode = m;
                     return {};
                 },
                 [](const Config& c) {
                     return c.attach_mode ? std::string(compat::to_string(*c.attach_mode))
                                          : std::string("auto");
                 }});
    s.push_back({"sampling_clock", "CLOCK",
                 "What triggers on-CPU samples: auto (the scheduler tick where the frequency is "
                 "at most the tick rate, HZ, else cpu-clock), tick (the tick or nothing), or "
                 "cpu-clock (a software perf event per CPU, as perf record).",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     auto m = compat::sampling_clock_from_string(v);
                     if (!m)
                         return bad("sampling_clock", v, "must be auto, tick or cpu-clock");
                     c.sampling_clock = *m;
                     return {};
                 },
                 [](const Config& c) { return std::string(compat::to_string(c.sampling_clock)); }});
    s.push_back({"btf", "FILE", "External BTF file for kernels without /sys/kernel/btf/vmlinux.",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     c.btf_path = v;
                     return {};
                 },
                 [](const Config& c) { return c.btf_path; }});
    s.push_back({"tracefs", "DIR",
                 "Where tracefs is, or is mounted when a classic tracepoint needs it.", false,
                 [](Config& c, const std::string& v) -> Status {
                     if (v.empty() || v[0] != '/')
                         return bad("tracefs", v, "must be an absolute path");
                     c.tracefs_path = v;
                     return {};
                 },
                 [](const Config& c) { return c.tracefs_path; }});
    s.push_back({"listen", "HOST:PORT", "HTTP listen address (loopback by default).", false,
                 [](Config& c, const std::string& v) -> Status {
                     auto colon = v.rfind(':');
                     if (colon == std::string::npos || colon == 0)
                         return bad("listen", v, "must be HOST:PORT");
                     auto port = parse_number<int>(std::string_view(v).substr(colon + 1));
                     if (!port || *port < 1 || *port > 65535)
                         return bad("listen", v, "port must be 1..65535");
                     c.listen = v;
                     return {};
                 },
                 [](const Config& c) { return c.listen; }});
    s.push_back({"log_format", "FORMAT", "Log format: text (human) or json (one object a line).",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     if (v != "text" && v != "json")
                         return bad("log_format", v, "must be text or json");
                     c.log_format = v;
                     return {};
                 },
                 [](const Config& c) { return c.log_format; }});
    s.push_back(
        {"log_level", "LEVEL", "Log level: trace, debug, info, warn or error.", false,
         [](Config& c, const std::string& v) -> Status {
             static const std::set<std::string> ok = {"trace", "debug", "info", "warn", "error"};
             if (!ok.contains(v))
                 return bad("log_level", v, "must be trace, debug, info, warn or error");
             c.log_level = v;
             return {};
         },
         [](const Config& c) { return c.log_level; }});
    s.push_back({"off_cpu_threshold", "DURATION",
                 "Shortest blocked interval recorded by the off-CPU profiler (e.g. 1ms).", false,
                 [](Config& c, const std::string& v) -> Status {
                     auto d = parse_duration_ns(v);
                     if (!d)
                         return bad("off_cpu_threshold", v, d.error().message());
                     if (*d < 1'000 || *d > 60'000'000'000ULL)
                         return bad("off_cpu_threshold", v, "must be between 1us and 60s");
                     c.off_cpu_threshold_ns = *d;
                     return {};
                 },
                 [](const Config& c) { return show_duration(c.off_cpu_threshold_ns); }});
    s.push_back({"syscall_outlier_threshold", "DURATION",
                 "Syscalls at least this slow are streamed with their stacks: exemplars, "
                 "/debug/outliers and the syscall_latency profile (0: none).",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     auto d = parse_duration_ns(v);
                     if (!d)
                         return bad("syscall_outlier_threshold", v, d.error().message());
                     if (*d != 0 && *d < 100'000)
                         return bad("syscall_outlier_threshold", v,
                                    "must be 0 (off) or at least 100us (every faster syscall "
                                    "would be streamed)");
                     c.syscall_outlier_threshold_ns = *d;
                     return {};
                 },
                 [](const Config& c) { return show_duration(c.syscall_outlier_threshold_ns); }});
    s.push_back(
        {"syscall_outlier_thresholds", "LIST",
         "Per-syscall outlier thresholds, e.g. read=50ms,futex=0 (0: never an outlier).", false,
         [](Config& c, const std::string& v) -> Status {
             std::map<std::string, uint64_t> out;
             for (const std::string& item : split_list(v)) {
                 auto eq = item.find('=');
                 if (eq == std::string::npos)
                     return bad("syscall_outlier_thresholds", v,
                                "'" + item + "' is not NAME=DURATION");
                 std::string name = item.substr(0, eq);
                 if (!syscall_number(name))
                     return bad("syscall_outlier_thresholds", v, "unknown syscall '" + name + "'");
                 auto d = parse_duration_ns(item.substr(eq + 1));
                 if (!d)
                     return bad("syscall_outlier_thresholds", v, d.error().message());
                 if (*d != 0 && *d < 100'000)
                     return bad("syscall_outlier_thresholds", v,
                                name + ": must be 0 or at least 100us");
                 out[name] = *d;
             }
             c.syscall_outlier_thresholds = out;
             return {};
         },
         [](const Config& c) {
             std::string out;
             for (const auto& [name, ns] : c.syscall_outlier_thresholds)
                 out += (out.empty() ? "" : ",") + name + "=" + show_duration(ns);
             return out;
         }});
    s.push_back({"syscall_cgroups", "LIST",
                 "Cgroup v2 path patterns (fnmatch, e.g. /system.slice/*.service) whose "
                 "cgroups get per-cgroup syscall histograms; at most 64 cgroups, re-matched "
                 "every profile window (empty: host-wide histograms only).",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     std::vector<std::string> out = split_list(v);
                     for (const std::string& p : out)
                         if (p.empty() || (p[0] != '/' && p[0] != '*'))
                             return bad("syscall_cgroups", v,
                                        "'" + p + "' must start with '/' or '*'");
                     if (out.size() > 64)
                         return bad("syscall_cgroups", v, "more than 64 patterns");
                     c.syscall_cgroups = out;
                     return {};
                 },
                 [](const Config& c) {
                     std::string out;
                     for (const auto& p : c.syscall_cgroups)
                         out += (out.empty() ? "" : ",") + p;
                     return out;
                 }});
    s.push_back({"tcp_ports", "LIST",
                 "TCP ports with series of their own (at most 16, e.g. 80,443,5432): a "
                 "connection counts under its local port when listed (a service this host "
                 "serves), else under its remote port when listed (a service it calls), else "
                 "under port=\"other\". Addresses are never labels.",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     std::vector<uint16_t> out;
                     for (const std::string& p : split_list(v)) {
                         unsigned n = 0;
                         auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), n);
                         if (p.empty() || ec != std::errc() || end != p.data() + p.size() ||
                             n == 0 || n > 65535)
                             return bad("tcp_ports", v, "'" + p + "' is not a port (1-65535)");
                         if (std::find(out.begin(), out.end(), n) != out.end())
                             return bad("tcp_ports", v, "port " + p + " listed twice");
                         out.push_back(static_cast<uint16_t>(n));
                     }
                     if (out.size() > 16)
                         return bad("tcp_ports", v, "more than 16 ports");
                     c.tcp_ports = out;
                     return {};
                 },
                 [](const Config& c) {
                     std::string out;
                     for (uint16_t p : c.tcp_ports)
                         out += (out.empty() ? "" : ",") + std::to_string(p);
                     return out;
                 }});
    s.push_back({"block_slow_threshold", "DURATION",
                 "Block I/O requests at least this slow (service time) are kept as outliers "
                 "with their device and submitting process (0: none).",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     auto d = parse_duration_ns(v);
                     if (!d)
                         return bad("block_slow_threshold", v, d.error().message());
                     if (*d != 0 && *d < 100'000)
                         return bad("block_slow_threshold", v, "must be 0 or at least 100us");
                     c.block_slow_threshold_ns = *d;
                     return {};
                 },
                 [](const Config& c) { return show_duration(c.block_slow_threshold_ns); }});
    s.push_back({"native_schema", "off|0..3",
                 "Count every duration histogram (syscall, TCP, block I/O, run queue) in "
                 "BPF also into the exact buckets of a Prometheus native histogram of this "
                 "schema: 2^N buckets per power of two of seconds, so quantiles are 2^N "
                 "times finer than log2. Served to scrapers that ask for native histograms "
                 "(protobuf). Costs kernel memory per CPU (syscalls: 0.18 MiB at 0, 1.4 MiB "
                 "at 3) and a bucket search per event. off: native histograms are derived "
                 "from the log2 buckets (schema 0, bounds 7% below the kernel's).",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     if (v == "off" || v == "-1") {
                         c.native_schema = -1;
                         return {};
                     }
                     auto n = parse_number<int>(v);
                     if (!n || *n < 0 || *n > 3)
                         return bad("native_schema", v, "must be off or an integer from 0 to 3");
                     c.native_schema = *n;
                     return {};
                 },
                 [](const Config& c) {
                     return c.native_schema < 0 ? std::string("off")
                                                : std::to_string(c.native_schema);
                 }});
    s.push_back({"outlier_store_size", "N",
                 "Slow events kept for exemplars and /debug/outliers (oldest evicted), "
                 "1..100000.",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     auto n = parse_number<int>(v);
                     if (!n || *n < 1 || *n > 100'000)
                         return bad("outlier_store_size", v, "must be an integer from 1 to 100000");
                     c.outlier_store_size = *n;
                     return {};
                 },
                 [](const Config& c) { return std::to_string(c.outlier_store_size); }});
    s.push_back({"pids", "LIST", "Profile only these process ids (comma-separated; max 1024).",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     std::vector<uint32_t> out;
                     for (const std::string& item : split_list(v)) {
                         auto n = parse_number<uint32_t>(item);
                         if (!n || *n == 0)
                             return bad("pids", v, "'" + item + "' is not a process id");
                         out.push_back(*n);
                     }
                     if (out.size() > 1024)
                         return bad("pids", v, "more than 1024 pids");
                     c.pids = out;
                     return {};
                 },
                 [](const Config& c) {
                     std::string out;
                     for (auto p : c.pids)
                         out += (out.empty() ? "" : ",") + std::to_string(p);
                     return out;
                 }});
    s.push_back({"cgroup_filter", "PATH",
                 "Profile only processes in this cgroup v2 path or below it, e.g. "
                 "/system.slice/nginx.service or a pod's slice; filtered in the kernel, "
                 "descendants created later included (empty: every process).",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     if (!v.empty() &&
                         (v[0] != '/' || v.find("/../") != std::string::npos || v.ends_with("/..")))
                         return bad("cgroup_filter", v,
                                    "must be an absolute cgroup path like /a/b");
                     c.cgroup = v == "/" ? "" : v;
                     return {};
                 },
                 [](const Config& c) { return c.cgroup; }});
    s.push_back({"duration", "DURATION", "Stop after this long (0: run until SIGINT/SIGTERM).",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     auto d = parse_duration_ns(v);
                     if (!d)
                         return bad("duration", v, d.error().message());
                     c.duration_ns = *d;
                     return {};
                 },
                 [](const Config& c) { return show_duration(c.duration_ns); }});
    s.push_back({"profile_window", "DURATION",
                 "Length of the continuous profile window behind /flamegraph and the "
                 "per-service sample counters (1s..10m).",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     auto d = parse_duration_ns(v);
                     if (!d)
                         return bad("profile_window", v, d.error().message());
                     if (*d < 1'000'000'000ULL || *d > 600'000'000'000ULL)
                         return bad("profile_window", v, "must be between 1s and 10m");
                     c.profile_window_ns = *d;
                     return {};
                 },
                 [](const Config& c) { return show_duration(c.profile_window_ns); }});
    s.push_back({"max_profile_seconds", "N",
                 "Largest ?seconds= accepted by the profile endpoints (1..3600).", false,
                 [](Config& c, const std::string& v) -> Status {
                     auto n = parse_number<int>(v);
                     if (!n || *n < 1 || *n > 3600)
                         return bad("max_profile_seconds", v, "must be an integer from 1 to 3600");
                     c.max_profile_seconds = *n;
                     return {};
                 },
                 [](const Config& c) { return std::to_string(c.max_profile_seconds); }});
    s.push_back({"max_concurrent_profiles", "N",
                 "Profile requests served at once; more get 429 (1..64).", false,
                 [](Config& c, const std::string& v) -> Status {
                     auto n = parse_number<int>(v);
                     if (!n || *n < 1 || *n > 64)
                         return bad("max_concurrent_profiles", v,
                                    "must be an integer from 1 to 64");
                     c.max_concurrent_profiles = *n;
                     return {};
                 },
                 [](const Config& c) { return std::to_string(c.max_concurrent_profiles); }});
    s.push_back({"service_name", "RULE",
                 "How service_name is chosen: auto (container id if in a container, else "
                 "executable name), exe, comm or cgroup.",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     if (v != "auto" && v != "exe" && v != "comm" && v != "cgroup")
                         return bad("service_name", v, "must be auto, exe, comm or cgroup");
                     c.service_name = v;
                     return {};
                 },
                 [](const Config& c) { return c.service_name; }});
    s.push_back({"process_table_size", "N",
                 "Most processes whose metadata is cached (LRU beyond; 64..1048576).", false,
                 [](Config& c, const std::string& v) -> Status {
                     auto n = parse_number<int>(v);
                     if (!n || *n < 64 || *n > 1048576)
                         return bad("process_table_size", v,
                                    "must be an integer from 64 to 1048576");
                     c.process_table_size = *n;
                     return {};
                 },
                 [](const Config& c) { return std::to_string(c.process_table_size); }});
    s.push_back({"web_config", "FILE",
                 "Web configuration (TLS, basic-auth users with bcrypt hashes) for the HTTP "
                 "endpoints; see docs/security.md.",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     c.web_config = v;
                     return {};
                 },
                 [](const Config& c) { return c.web_config; }});
    s.push_back(
        {"drop_capabilities", "BOOL",
         "After attaching, drop every capability but CAP_SYS_PTRACE, "
         "CAP_DAC_READ_SEARCH, CAP_SYSLOG and CAP_CHECKPOINT_RESTORE, and CAP_BPF where the "
         "kernel needs it to read maps (true/false).",
         false,
         [](Config& c, const std::string& v) -> Status {
             auto b = parse_bool(v);
             if (!b)
                 return bad("drop_capabilities", v, "must be true or false");
             c.drop_capabilities = *b;
             return {};
         },
         [](const Config& c) { return std::string(c.drop_capabilities ? "true" : "false"); }});
    s.push_back({"pyroscope_url", "URL",
                 "Push CPU and off-CPU profiles to this Pyroscope server (e.g. "
                 "http://pyroscope:4040; user:password@ in the URL for basic auth). Empty: "
                 "no push. See docs/grafana.md.",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     if (!v.empty() && !v.starts_with("http://") && !v.starts_with("https://"))
                         return bad("pyroscope_url", v, "must start with http:// or https://");
                     c.pyroscope_url = v;
                     return {};
                 },
                 [](const Config& c) { return c.pyroscope_url; }});
    s.push_back({"pyroscope_interval", "DURATION",
                 "How often a profile delta is pushed to Pyroscope (1s..10m).", false,
                 [](Config& c, const std::string& v) -> Status {
                     auto d = parse_duration_ns(v);
                     if (!d)
                         return bad("pyroscope_interval", v, d.error().message());
                     if (*d < 1'000'000'000ULL || *d > 600'000'000'000ULL)
                         return bad("pyroscope_interval", v, "must be between 1s and 10m");
                     c.pyroscope_interval_ns = *d;
                     return {};
                 },
                 [](const Config& c) { return show_duration(c.pyroscope_interval_ns); }});
    s.push_back({"pyroscope_labels", "LIST",
                 "Static labels added to every pushed series, NAME=VALUE comma-separated "
                 "(e.g. env=prod,region=eu).",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     LabelList labels;
                     std::string why;
                     if (!parse_label_list(v, &labels, &why))
                         return bad("pyroscope_labels", v, why);
                     c.pyroscope_labels = std::move(labels);
                     return {};
                 },
                 [](const Config& c) {
                     std::string out;
                     for (const auto& [k, v] : c.pyroscope_labels)
                         out += (out.empty() ? "" : ",") + k + "=" + v;
                     return out;
                 }});
    s.push_back({"pyroscope_queue_bytes", "BYTES",
                 "Most bytes of push requests kept while the server is slow or down; the "
                 "oldest are dropped beyond (64 KiB..1 GiB).",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     auto n = parse_number<uint64_t>(v);
                     if (!n || *n < (64u << 10) || *n > (1u << 30))
                         return bad("pyroscope_queue_bytes", v,
                                    "must be an integer from 65536 to 1073741824");
                     c.pyroscope_queue_bytes = *n;
                     return {};
                 },
                 [](const Config& c) { return std::to_string(c.pyroscope_queue_bytes); }});
    s.push_back({"pyroscope_tenant_id", "ID",
                 "Tenant of a multi-tenant Pyroscope (sent as X-Scope-OrgID).", false,
                 [](Config& c, const std::string& v) -> Status {
                     for (char ch : v)
                         if (ch < 0x21 || ch > 0x7e)
                             return bad("pyroscope_tenant_id", v, "must be printable ASCII");
                     c.pyroscope_tenant_id = v;
                     return {};
                 },
                 [](const Config& c) { return c.pyroscope_tenant_id; }});
    s.push_back({"otlp_url", "URL",
                 "Push CPU and off-CPU profiles as OTLP (profiles v1development, proto 1.10/"
                 "1.11 layout) to this endpoint: requests go to URL/v1development/profiles "
                 "(e.g. http://otel-collector:4318, or Pyroscope 1.20+). Empty: no push.",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     if (!v.empty() && !v.starts_with("http://") && !v.starts_with("https://"))
                         return bad("otlp_url", v, "must start with http:// or https://");
                     c.otlp_url = v;
                     return {};
                 },
                 [](const Config& c) { return c.otlp_url; }});
    s.push_back({"otlp_interval", "DURATION",
                 "How often the OTLP profiles of an interval are pushed (1s..10m).", false,
                 [](Config& c, const std::string& v) -> Status {
                     auto d = parse_duration_ns(v);
                     if (!d)
                         return bad("otlp_interval", v, d.error().message());
                     if (*d < 1'000'000'000ULL || *d > 600'000'000'000ULL)
                         return bad("otlp_interval", v, "must be between 1s and 10m");
                     c.otlp_interval_ns = *d;
                     return {};
                 },
                 [](const Config& c) { return show_duration(c.otlp_interval_ns); }});
    s.push_back({"otlp_headers", "LIST",
                 "Extra headers of every OTLP request, NAME=VALUE comma-separated (e.g. "
                 "Authorization=Bearer TOKEN,X-Scope-OrgID=team-a).",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     std::vector<std::pair<std::string, std::string>> headers;
                     size_t pos = 0;
                     while (pos < v.size()) {
                         size_t comma = v.find(',', pos);
                         if (comma == std::string::npos)
                             comma = v.size();
                         const std::string item = v.substr(pos, comma - pos);
                         pos = comma + 1;
                         const size_t eq = item.find('=');
                         if (eq == 0 || eq == std::string::npos)
                             return bad("otlp_headers", v, "each item must be NAME=VALUE");
                         const std::string name = item.substr(0, eq);
                         const std::string value = item.substr(eq + 1);
                         for (char ch : name)
                             if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' &&
                                 ch != '_')
                                 return bad("otlp_headers", v, "bad header name '" + name + "'");
                         for (char ch : value)
                             if (ch < 0x20 || ch > 0x7e)
                                 return bad("otlp_headers", v, "values must be printable ASCII");
                         headers.emplace_back(name, value);
                     }
                     c.otlp_headers = std::move(headers);
                     return {};
                 },
                 [](const Config& c) {
                     std::string out;
                     for (const auto& [k, v] : c.otlp_headers)
                         out += (out.empty() ? "" : ",") + k + "=" + v;
                     return out;
                 }});
    s.push_back({"debuginfod_urls", "LIST",
                 "debuginfod servers (http:// or https://, comma-separated) asked for the debug "
                 "files of binaries without DWARF or .symtab, by build-id, off the sampling "
                 "path. Empty: off.",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     std::vector<std::string> out = split_list(v);
                     for (const std::string& u : out)
                         if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0)
                             return bad("debuginfod_urls", v,
                                        "'" + u + "' is not an http:// or https:// URL");
                     if (out.size() > 16)
                         return bad("debuginfod_urls", v, "more than 16 servers");
                     c.debuginfod_urls = out;
                     return {};
                 },
                 [](const Config& c) {
                     std::string out;
                     for (const auto& u : c.debuginfod_urls)
                         out += (out.empty() ? "" : ",") + u;
                     return out;
                 }});
    s.push_back({"debuginfod_cache_dir", "DIR",
                 "On-disk cache of debug files fetched from debuginfod (libdebuginfod's "
                 "DEBUGINFOD_CACHE_PATH; cleaned by libdebuginfod).",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     if (v.empty() || v[0] != '/')
                         return bad("debuginfod_cache_dir", v, "must be an absolute path");
                     c.debuginfod_cache_dir = v;
                     return {};
                 },
                 [](const Config& c) { return c.debuginfod_cache_dir; }});
    s.push_back({"debuginfod_timeout", "DURATION",
                 "Upper bound of one debuginfod lookup, connection to last byte (1s..10m).", false,
                 [](Config& c, const std::string& v) -> Status {
                     auto d = parse_duration_ns(v);
                     if (!d)
                         return bad("debuginfod_timeout", v, d.error().message());
                     if (*d < 1'000'000'000ULL || *d > 600'000'000'000ULL)
                         return bad("debuginfod_timeout", v, "must be between 1s and 10m");
                     c.debuginfod_timeout_ns = *d;
                     return {};
                 },
                 [](const Config& c) { return show_duration(c.debuginfod_timeout_ns); }});
    s.push_back({"ring_buffer_size", "BYTES",
                 "Size of the profile ring buffer (kernel to agent): a power of two from 64KiB "
                 "to 256MiB, e.g. 8MiB. Larger rides out longer consumer stalls.",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     auto n = parse_size_bytes(v);
                     if (!n)
                         return bad("ring_buffer_size", v, n.error().message());
                     if (*n < (64u << 10) || *n > (256u << 20))
                         return bad("ring_buffer_size", v, "must be between 64KiB and 256MiB");
                     if ((*n & (*n - 1)) != 0)
                         return bad("ring_buffer_size", v,
                                    "must be a power of two (the kernel's ring buffers are), "
                                    "e.g. " +
                                        show_size(std::bit_floor(*n)));
                     c.ring_buffer_bytes = *n;
                     return {};
                 },
                 [](const Config& c) { return show_size(c.ring_buffer_bytes); }});
    s.push_back({"symbol_cache_size", "BYTES",
                 "Memory the symbolizer may keep for parsed ELF/DWARF objects (LRU beyond): "
                 "16MiB to 4GiB.",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     auto n = parse_size_bytes(v);
                     if (!n)
                         return bad("symbol_cache_size", v, n.error().message());
                     if (*n < (16u << 20) || *n > (4ULL << 30))
                         return bad("symbol_cache_size", v, "must be between 16MiB and 4GiB");
                     c.symbol_cache_bytes = *n;
                     return {};
                 },
                 [](const Config& c) { return show_size(c.symbol_cache_bytes); }});
    s.push_back(
        {"perf_map_max_size", "BYTES",
         "Largest /tmp/perf-PID.map (JIT symbols) the symbolizer reads; a larger one is "
         "refused and counted (hostprof_symbolizer_file_refusals_total{reason=\"too_large\"}): "
         "64KiB to 1GiB.",
         false,
         [](Config& c, const std::string& v) -> Status {
             auto n = parse_size_bytes(v);
             if (!n)
                 return bad("perf_map_max_size", v, n.error().message());
             if (*n < (64u << 10) || *n > (1ULL << 30))
                 return bad("perf_map_max_size", v, "must be between 64KiB and 1GiB");
             c.perf_map_max_bytes = *n;
             return {};
         },
         [](const Config& c) { return show_size(c.perf_map_max_bytes); }});
    s.push_back({"watchdog_timeout", "DURATION",
                 "A consumer (profile ring loop, latency ring thread, symbolizer building a "
                 "profile) without progress for longer than this is logged and counted as a "
                 "stall (1s..10m).",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     auto d = parse_duration_ns(v);
                     if (!d)
                         return bad("watchdog_timeout", v, d.error().message());
                     if (*d < 1'000'000'000ULL || *d > 600'000'000'000ULL)
                         return bad("watchdog_timeout", v, "must be between 1s and 10m");
                     c.watchdog_timeout_ns = *d;
                     return {};
                 },
                 [](const Config& c) { return show_duration(c.watchdog_timeout_ns); }});
    s.push_back({"unwind_tables", "BOOL",
                 "Walk user stacks with unwind tables built from each file's CFI "
                 "(.eh_frame, .debug_frame) and Go's .gopclntab, so stacks are complete "
                 "without frame pointers; false: frame pointers only (bpf_get_stack).",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     auto b = parse_bool(v);
                     if (!b)
                         return bad("unwind_tables", v, "must be true or false");
                     c.unwind_tables = *b;
                     return {};
                 },
                 [](const Config& c) { return std::string(c.unwind_tables ? "true" : "false"); }});
    s.push_back({"python_frames", "BOOL",
                 "Show the Python functions that ran in the stacks of CPython processes "
                 "(3.11), in place of the interpreter loop's frames; needs unwind_tables. "
                 "Other versions are counted in hostprof_interpreter_unsupported_total.",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     auto b = parse_bool(v);
                     if (!b)
                         return bad("python_frames", v, "must be true or false");
                     c.python_frames = *b;
                     return {};
                 },
                 [](const Config& c) { return std::string(c.python_frames ? "true" : "false"); }});
    s.push_back({"unwind_memory", "BYTES",
                 "Kernel memory for unwind-table rows (8 bytes a row; libc ~23k rows, "
                 "python3 ~59k): 1MiB to 1GiB. Tables of files no process maps any more are "
                 "evicted first; a table that still does not fit is walked with frame pointers.",
                 false,
                 [](Config& c, const std::string& v) -> Status {
                     auto n = parse_size_bytes(v);
                     if (!n)
                         return bad("unwind_memory", v, n.error().message());
                     if (*n < (1u << 20) || *n > (1ull << 30))
                         return bad("unwind_memory", v, "must be between 1MiB and 1GiB");
                     c.unwind_memory_bytes = *n;
                     return {};
                 },
                 [](const Config& c) { return show_size(c.unwind_memory_bytes); }});
    s.push_back({"strict", "", "Exit at start-up if any collector fails to load or attach.", true,
                 [](Config& c, const std::string& v) -> Status {
                     auto b = parse_bool(v);
                     if (!b)
                         return bad("strict", v, "must be true or false");
                     c.strict = *b;
                     return {};
                 },
                 [](const Config& c) { return std::string(c.strict ? "true" : "false"); }});
    return s;
}

} // namespace

const std::vector<Setting>& settings() {
    static const std::vector<Setting> all = make_settings();
    return all;
}

std::string flag_name(std::string_view key) {
    std::string f = "--" + std::string(key);
    std::replace(f.begin(), f.end(), '_', '-');
    return f;
}

Status apply_setting(Config& config, std::string_view key, const std::string& value) {
    for (const Setting& s : settings())
        if (s.key == key)
            return s.set(config, value);
    return Error{0, "unknown key '" + std::string(key) + "'"};
}

Result<uint64_t> parse_duration_ns(std::string_view text) {
    static const std::pair<std::string_view, uint64_t> units[] = {{"ns", 1},
                                                                  {"us", 1'000},
                                                                  {"ms", 1'000'000},
                                                                  {"s", 1'000'000'000},
                                                                  {"m", 60'000'000'000ULL},
                                                                  {"h", 3'600'000'000'000ULL}};
    size_t digits = 0;
    while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) != 0))
        ++digits;
    auto n = parse_number<uint64_t>(text.substr(0, digits));
    if (!n)
        return Error{0, "'" + std::string(text) + "' is not a duration (e.g. 10s, 250ms)"};
    std::string_view unit = text.substr(digits);
    uint64_t mult = 0;
    if (unit.empty())
        mult = 1'000'000'000;
    for (auto [name, m] : units)
        if (unit == name)
            mult = m;
    if (mult == 0)
        return Error{0, "'" + std::string(text) + "' has an unknown unit (ns, us, ms, s, m, h)"};
    if (*n > UINT64_MAX / mult)
        return Error{0, "'" + std::string(text) + "' is too long"};
    return *n * mult;
}

Result<uint64_t> parse_size_bytes(std::string_view text) {
    static const std::pair<std::string_view, uint64_t> units[] = {
        {"", 1}, {"KiB", 1ULL << 10}, {"MiB", 1ULL << 20}, {"GiB", 1ULL << 30}};
    size_t digits = 0;
    while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) != 0))
        ++digits;
    auto n = parse_number<uint64_t>(text.substr(0, digits));
    if (!n)
        return Error{0, "'" + std::string(text) + "' is not a size (e.g. 4096, 64KiB, 2MiB)"};
    std::string_view unit = text.substr(digits);
    for (auto [name, m] : units)
        if (unit == name) {
            if (*n > UINT64_MAX / m)
                return Error{0, "'" + std::string(text) + "' is too large"};
            return *n * m;
        }
    return Error{0, "'" + std::string(text) + "' has an unknown unit (KiB, MiB, GiB)"};
}

Status check_host_limits(const Config& config, const std::string& proc_sys_kernel) {
    std::string path = proc_sys_kernel + "/perf_event_max_sample_rate";
    std::ifstream in(path);
    long long max_rate = -1;
    if (!(in >> max_rate))
        return {}; // not readable (no perf events here): the collector reports it at attach
    if (config.frequency_hz > max_rate)
        return Error{0, "frequency: " + std::to_string(config.frequency_hz) +
                            " Hz is above kernel.perf_event_max_sample_rate (" +
                            std::to_string(max_rate) +
                            " Hz, which the kernel lowers by itself when perf interrupts take "
                            "too long); use a lower --frequency or raise the sysctl"};
    return {};
}

std::string cgroup2_root(const std::string& mounts_text) {
    std::istringstream in(mounts_text);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string dev, dir, type;
        if (f >> dev >> dir >> type && type == "cgroup2")
            return dir;
    }
    return "/sys/fs/cgroup";
}

std::string cgroup2_root() {
    std::ifstream in("/proc/mounts");
    std::stringstream text;
    text << in.rdbuf();
    return cgroup2_root(text.str());
}

Result<Config> parse_config_yaml(const std::string& text, const std::string& origin, Config base) {
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        return Error{0, origin + ": not valid YAML: " + e.what()};
    }
    if (root.IsNull())
        return base;
    if (!root.IsMap())
        return Error{0, origin + ": must be a mapping of settings (key: value)"};
    std::set<std::string> seen;
    for (const auto& kv : root) {
        std::string key;
        try {
            key = kv.first.as<std::string>();
        } catch (const YAML::Exception&) {
            return Error{0, origin + ": a key is not a string"};
        }
        if (!seen.insert(key).second)
            return Error{0, origin + ": duplicate key '" + key + "'"};
        const YAML::Node& v = kv.second;
        std::string value;
        if (v.IsScalar()) {
            value = v.Scalar();
        } else if (v.IsSequence()) {
            for (const auto& item : v) {
                if (!item.IsScalar())
                    return Error{0, origin + ": " + key + ": list items must be scalars"};
                value += (value.empty() ? "" : ",") + item.Scalar();
            }
        } else if (v.IsNull()) {
            return Error{0, origin + ": " + key + ": has no value"};
        } else {
            return Error{0, origin + ": " + key + ": must be a scalar or a list"};
        }
        Status st = apply_setting(base, key, value);
        if (!st)
            return Error{0, origin + ": " + st.error().message()};
    }
    return base;
}

Result<Config> load_config_file(const std::string& path, Config base) {
    std::ifstream in(path);
    if (!in)
        return errno_error("config file " + path);
    std::stringstream buf;
    buf << in.rdbuf();
    if (buf.str().size() > (1 << 20))
        return Error{0, "config file " + path + ": larger than 1 MiB"};
    return parse_config_yaml(buf.str(), path, std::move(base));
}

std::string config_reference_markdown() {
    Config defaults;
    std::string out =
        "# Configuration reference\n\n"
        "Generated by `hostprof config-reference` from the agent's settings table; a test "
        "fails when this file and the code disagree.\n\n"
        "Every setting is both a YAML key (in the file given by `--config FILE`) and a "
        "command-line flag; a flag overrides the file. Unknown keys, duplicate keys and bad "
        "values are errors that name the key.\n\n"
        "| YAML key | flag | default | meaning |\n|---|---|---|---|\n";
    for (const Setting& s : settings()) {
        std::string flag = flag_name(s.key);
        if (!s.value_hint.empty())
            flag += " " + std::string(s.value_hint);
        std::string def = s.show(defaults);
        out += "| `" + std::string(s.key) + "` | `" + flag + "` | " +
               (def.empty() ? std::string("(none)") : "`" + def + "`") + " | " +
               std::string(s.help) + " |\n";
    }
    out += "\n`--config FILE` (flag only): the YAML file to read first.\n";
    return out;
}

} // namespace hostprof
