// Agent configuration: one table of settings (settings()) serves the YAML file, the
// command-line flags and the generated reference (docs/configuration.md), so the three
// cannot drift. Precedence: defaults < --config FILE < flags.
#pragma once

#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "kernel-compat/planner.h"

namespace hostprof {

struct Config {
    int frequency_hz = 19;
    std::vector<compat::Collector> collectors{std::begin(compat::kAllCollectors),
                                              std::end(compat::kAllCollectors)};
    std::optional<compat::AttachMode> attach_mode; // unset: the planner chooses
    compat::SamplingClock sampling_clock = compat::SamplingClock::Auto;
    std::string btf_path; // external BTF for kernels without one
    std::string tracefs_path = "/sys/kernel/tracing";
    std::string listen = "127.0.0.1:7464";
    std::string log_format = "text"; // text | json
    std::string log_level = "info";  // trace | debug | info | warn | error
    uint64_t off_cpu_threshold_ns = 1'000'000;
    uint64_t syscall_outlier_threshold_ns = 10'000'000;
    std::map<std::string, uint64_t> syscall_outlier_thresholds; // per syscall name
    std::vector<std::string> syscall_cgroups;                   // cgroup path patterns
    uint64_t block_slow_threshold_ns = 100'000'000;
    std::vector<uint16_t> tcp_ports; // TCP series of their own (≤ 16); others: "other"
    int native_schema = -1;          // exact native buckets in BPF (0..3); -1: off
    int outlier_store_size = 1024;
    std::vector<uint32_t> pids; // profile only these processes (empty: all)
    std::string cgroup;         // profile only this cgroup v2 path and below ("": all)
    std::string cgroup_root;    // where cgroup v2 is mounted, "": cgroup2_root() (not a setting)
    uint64_t duration_ns = 0;   // run: stop after this long (0: until SIGINT/SIGTERM)
    bool strict = false;        // any collector failing to start is fatal
    uint64_t profile_window_ns = 15'000'000'000ULL; // continuous window (/flamegraph, metrics)
    int max_profile_seconds = 300;                  // upper bound of ?seconds= on profile endpoints
    int max_concurrent_profiles = 4;                // 429 beyond
    std::string service_name = "auto";              // auto | exe | comm | cgroup
    int process_table_size = 16384;
    std::string web_config;        // TLS / basic auth file for the HTTP endpoints
    bool drop_capabilities = true; // after attach keep only CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH
    // Pyroscope push (off while pyroscope_url is empty).
    std::string pyroscope_url;
    uint64_t pyroscope_interval_ns = 15'000'000'000ULL;
    std::vector<std::pair<std::string, std::string>> pyroscope_labels;
    uint64_t pyroscope_queue_bytes = 16u << 20;
    std::string pyroscope_tenant_id;
    // OTLP profiles push (off while otlp_url is empty).
    std::string otlp_url;
    uint64_t otlp_interval_ns = 15'000'000'000ULL;
    std::vector<std::pair<std::string, std::string>> otlp_headers; // extra request headers
    std::vector<std::string> debuginfod_urls;                      // empty: debuginfod off
    std::string debuginfod_cache_dir = "/var/cache/hostprof/debuginfod";
    uint64_t debuginfod_timeout_ns = 30'000'000'000ULL;
    uint64_t ring_buffer_bytes = 2u << 20; // profile ring buffer (power of two)
    // User stacks: unwind tables (CFI, Go) walked in BPF, or frame pointers only.
    bool unwind_tables = true;
    uint64_t unwind_memory_bytes = 16u << 20; // the rows map, in kernel memory
    // Python functions in the stacks of CPython processes (needs unwind_tables).
    bool python_frames = true;
    // Symbolizer's ELF/DWARF cache. 16 MiB keeps the agent within its 64 MiB RSS budget:
    // code, libraries and rings take ~20 MiB, kallsyms ~5 MiB, per-process state and
    // outliers ~5 MiB, and a symbolization pass holds libdw line tables transiently. At
    // 32 MiB an exec storm reached 63-76 MiB (cache full at ~22-32 MiB).
    uint64_t symbol_cache_bytes = 16u << 20;
    uint64_t perf_map_max_bytes = 64u << 20;          // larger /tmp/perf-PID.map are refused
    uint64_t watchdog_timeout_ns = 10'000'000'000ULL; // consumer loop stall threshold
};

// One configurable key. `key` is the YAML key; the flag is --key with '_' -> '-'.
struct Setting {
    std::string_view key;
    std::string_view value_hint; // e.g. "HZ", "LIST", "DURATION"
    std::string_view help;
    bool is_flag = false; // boolean: `--strict` on the command line, `strict: true` in YAML
    std::function<Status(Config&, const std::string&)> set;
    std::function<std::string(const Config&)> show; // the value, for the reference
};

const std::vector<Setting>& settings();
std::string flag_name(std::string_view key);

// Applies one key = value (value as written in YAML or on the command line).
Status apply_setting(Config& config, std::string_view key, const std::string& value);

// Parses YAML text (a mapping of setting keys) over `base`. Errors name the key.
Result<Config> parse_config_yaml(const std::string& text, const std::string& origin, Config base);
Result<Config> load_config_file(const std::string& path, Config base);

// "10s", "250ms", "1m", "500us", "2h"; a bare number is seconds.
Result<uint64_t> parse_duration_ns(std::string_view text);

// "4096", "64KiB", "2MiB", "1GiB"; a bare number is bytes.
Result<uint64_t> parse_size_bytes(std::string_view text);

// Checks the values that depend on this host, read from `proc_sys_kernel` (normally
// /proc/sys/kernel): the sampling frequency against perf_event_max_sample_rate, which the
// kernel lowers by itself when perf interrupts take too long. Errors name the setting.
Status check_host_limits(const Config& config,
                         const std::string& proc_sys_kernel = "/proc/sys/kernel");

// The configuration reference (Markdown), generated from settings().
std::string config_reference_markdown();

// Where the cgroup v2 hierarchy is mounted, from a /proc/mounts text: /sys/fs/cgroup on
// unified hosts, /sys/fs/cgroup/unified on hybrid ones (v1 controllers beside v2);
// "/sys/fs/cgroup" when none is listed.
std::string cgroup2_root(const std::string& mounts_text);
std::string cgroup2_root();

} // namespace hostprof
