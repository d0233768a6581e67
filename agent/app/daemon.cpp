#include "agent/app/daemon.h"

#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <thread>

#include "agent/serve/agent_metrics.h"
#include "agent/serve/endpoints.h"
#include "agent/serve/http_server.h"
#include "agent/serve/latency_metrics.h"
#include "agent/pipeline/latency.h"
#include "agent/host/malloc_policy.h"
#include "agent/aggregate/outliers.h"
#include "agent/pipeline/pipeline.h"
#include "agent/host/privileges.h"
#include "agent/push/otlp_push.h"
#include "agent/push/pyroscope_push.h"
#include "agent/pipeline/symbolizer_resolver.h"
#include "agent/host/watchdog.h"
#include "unwind/builders.h"
#include "kernel-compat/features.h"
#include "kernel-compat/planner.h"
#include "kernel-compat/report.h"
#include "kernel-compat/tracefs.h"

namespace hostprof {
namespace {

std::atomic<int> g_stop_signal{0};

// The longest the profile consumer sleeps when nothing wakes it (ms). The kernel wakes it
// past a fill level and for each new process, readers of profiles and metrics flush the
// ring first (Pipeline::flush), and the window rollover drains it: this only bounds how
// late exit records and the sweep of vanished processes are handled.
constexpr int kMaxSleepMs = 10'000;
// The loop's period when there is no profile ring (latency collectors only): how soon a
// stop signal is seen (sleep_for resumes after a signal).
constexpr int kTickMs = 500;
// Until the first sample arrives (at most kFirstDrainForMs after start), a shorter one:
// samples of processes older than 1 s do not wake the consumer (docs/profiling.md), so
// on a host of long-lived processes the first drain would otherwise wait a full period.
constexpr int kFirstDrainMs = 20;
constexpr auto kFirstDrainFor = std::chrono::seconds(2);

void on_stop_signal(int sig) {
    g_stop_signal.store(sig);
}

void install_stop_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; // no SA_RESTART: a blocking poll returns EINTR at once
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

bool wants(const Config& c, compat::Collector col) {
    for (auto x : c.collectors)
        if (x == col)
            return true;
    return false;
}

compat::AttachMode mode_of(const compat::AttachPlan& plan, std::string_view hook,
                           compat::Collector col) {
    for (const auto& h : plan.hooks)
        if (h.hook == hook && h.collector == col)
            return h.mode;
    return compat::AttachMode::None;
}

// Why a collector cannot run under this plan: the reasons of its unattachable hooks.
std::string not_ready_reason(const compat::AttachPlan& plan, compat::Collector col) {
    std::string why;
    for (const auto& h : plan.hooks)
        if (h.collector == col && h.mode == compat::AttachMode::None)
            why += (why.empty() ? "" : "; ") + h.hook + ": " + h.reason;
    return why.empty() ? "not supported by this kernel" : why;
}

LatencyOptions latency_options(const Config& config, const compat::AttachPlan& plan) {
    LatencyOptions lo;
    for (auto col : config.collectors) {
        if (col == compat::Collector::Cpu || col == compat::Collector::OffCpu ||
            !plan.collector_ready(col))
            continue;
        for (const auto& h : plan.hooks)
            if (h.collector == col && h.mode != compat::AttachMode::None) {
                lo.collectors[col] = h.mode; // one mode for all of a collector's hooks
                break;
            }
    }
    lo.syscall_outlier_ns = config.syscall_outlier_threshold_ns;
    lo.syscall_outlier_overrides = config.syscall_outlier_thresholds;
    lo.syscall_cgroups = config.syscall_cgroups;
    lo.block_slow_ns = config.block_slow_threshold_ns;
    lo.tcp_ports = config.tcp_ports;
    lo.native_schema = config.native_schema;
    lo.cgroup_root = config.cgroup_root.empty() ? cgroup2_root() : config.cgroup_root;
    return lo;
}

} // namespace

compat::PlanConfig plan_config(const Config& config) {
    compat::PlanConfig pc;
    pc.collectors = config.collectors;
    pc.forced_tracepoint_mode = config.attach_mode;
    pc.sampling_clock = config.sampling_clock;
    pc.frequency_hz = config.frequency_hz;
    return pc;
}

compat::ProbeOptions probe_options(const Config& config) {
    compat::ProbeOptions po;
    po.external_btf_path = config.btf_path;
    po.tracefs_path = config.tracefs_path;
    return po;
}

int run_probe(const Config& config, bool json) {
    compat::Features f = compat::probe_features(probe_options(config));
    compat::AttachPlan plan = compat::plan_attach(f, plan_config(config));
    if (json)
        std::printf("%s\n", compat::to_json(f, plan).dump(2).c_str());
    else
        std::printf("%s", compat::to_table(f, plan).c_str());
    return plan.refusal.empty() ? 0 : 2;
}

Result<std::unique_ptr<Pipeline>> start_profiling(const Config& config,
                                                  const compat::AttachPlan& plan) {
    PipelineOptions po;
    po.collector.frequency_hz = config.frequency_hz;
    po.collector.on_cpu =
        wants(config, compat::Collector::Cpu) && plan.collector_ready(compat::Collector::Cpu);
    po.collector.off_cpu =
        wants(config, compat::Collector::OffCpu) && plan.collector_ready(compat::Collector::OffCpu);
    po.collector.off_cpu_min_ns = config.off_cpu_threshold_ns;
    po.collector.pids = config.pids;
    if (!config.cgroup.empty())
        po.collector.cgroup_dir =
            (config.cgroup_root.empty() ? cgroup2_root() : config.cgroup_root) + config.cgroup;
    po.collector.ring_bytes = static_cast<uint32_t>(config.ring_buffer_bytes);
    po.collector.proc_mode = mode_of(plan, "sched/sched_process_exec", compat::Collector::Cpu);
    if (po.collector.proc_mode == compat::AttachMode::None)
        po.collector.proc_mode = mode_of(plan, "sched/sched_switch", compat::Collector::OffCpu);
    po.collector.off_cpu_mode = mode_of(plan, "sched/sched_switch", compat::Collector::OffCpu);
    if (plan.tick_hz > 0) {
        po.collector.on_cpu_mode = mode_of(plan, compat::kTickHook, compat::Collector::Cpu);
        po.collector.tick_handler = plan.tick_handler;
        po.collector.irq_entry = plan.irq_entry;
        po.collector.irq_entry_end = plan.irq_entry_end;
        po.collector.irq_regs_from_rq = plan.irq_regs_from_rq;
        po.collector.tick_hz = plan.tick_hz;
    }
    po.collector.unwind = config.unwind_tables;
    po.collector.python = config.python_frames;
    po.collector.unwind_budget_bytes = config.unwind_memory_bytes;
    po.collector.unwind_builder = unwind::default_builder();
    po.process_table_size = static_cast<size_t>(config.process_table_size);
    po.service_rule = service_rule_from_string(config.service_name).value_or(ServiceRule::Auto);
    if (!po.collector.on_cpu && !po.collector.off_cpu)
        return Error{0, "neither on-CPU nor off-CPU profiling is supported here (see "
                        "`hostprof probe`)"};
    return Pipeline::start(po, make_symbolizer_resolver(symbolizer_options(config)));
}

int run_agent(const Config& config) {
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    install_stop_handlers();
    spdlog::info("hostprof starting (collectors: {}, {} Hz, listen {})", settings()[1].show(config),
                 config.frequency_hz, config.listen);

    if (Status st = check_load_capabilities(current_capabilities()); !st) {
        spdlog::error("cannot run: {}", st.error().message());
        return 1;
    }
    compat::Features features = compat::probe_features(probe_options(config));
    compat::AttachPlan plan = compat::plan_attach(features, plan_config(config));
    if (!plan.refusal.empty()) {
        spdlog::error("cannot run: {}", plan.refusal);
        return 1;
    }
    if (plan.needs_tracefs_mount) {
        if (Status st = compat::ensure_tracefs(config.tracefs_path); !st)
            spdlog::warn("classic tracepoints unavailable: {}", st.error().message());
        else
            spdlog::info("mounted tracefs at {}", config.tracefs_path);
    }

    // A stalled consumer (the profile ring loop, the latency ring thread, the symbolizer)
    // is logged and counted. Created first: it outlives every consumer.
    auto watchdog =
        std::make_shared<Watchdog>(std::chrono::nanoseconds(config.watchdog_timeout_ns));
    Watchdog::Consumer& ring_watch = watchdog->watch("profile_ring");
    AgentState state;
    state.limits.max_seconds = config.max_profile_seconds;
    state.limits.default_seconds = std::min(30, config.max_profile_seconds);
    state.limits.max_concurrent_profiles = config.max_concurrent_profiles;
    for (const auto& h : plan.hooks)
        state.programs.push_back({std::string(compat::to_string(h.collector)), h.hook,
                                  std::string(compat::to_string(h.mode)), false, h.reason});
    auto mark = [&](compat::Collector col, bool running, const std::string& why) {
        state.collectors.push_back({std::string(compat::to_string(col)), running, why});
        for (ProgramState& p : state.programs)
            if (p.collector == compat::to_string(col)) {
                p.attached = running && p.mode != "none";
                if (running && p.mode == "none")
                    p.reason = "hook unavailable: " + p.reason;
            }
        if (!running)
            spdlog::error("collector {} not started: {}", compat::to_string(col), why);
    };

    // CPU profiling: on-CPU samples, off-CPU intervals, process notices.
    std::unique_ptr<Pipeline> pipeline;
    const bool want_cpu = wants(config, compat::Collector::Cpu);
    const bool want_off = wants(config, compat::Collector::OffCpu);
    if (want_cpu || want_off) {
        auto started = start_profiling(config, plan);
        if (!started) {
            if (want_cpu)
                mark(compat::Collector::Cpu, false, started.error().message());
            if (want_off)
                mark(compat::Collector::OffCpu, false, started.error().message());
        } else {
            pipeline = std::move(started.value());
            for (const auto& a : pipeline->attached())
                spdlog::info("attached {}", a);
            spdlog::info("user stacks: {}", pipeline->unwind_status());
            if (want_cpu) {
                bool ok = plan.collector_ready(compat::Collector::Cpu);
                mark(compat::Collector::Cpu, ok, ok ? "" : "not supported by this kernel");
            }
            if (want_off) {
                bool ok = plan.collector_ready(compat::Collector::OffCpu);
                mark(compat::Collector::OffCpu, ok, ok ? "" : "not supported by this kernel");
            }
        }
    }

    // Kernel latency: syscall, TCP, block-I/O and run-queue histograms; slow syscalls
    // also feed the syscall_latency profile of the pipeline (when it runs).
    OutlierStore outliers(static_cast<size_t>(config.outlier_store_size));
    state.outliers = &outliers;
    LatencyOptions lo = latency_options(config, plan);
    std::shared_ptr<LatencyCollectors> latency;
    // On every way out, early error returns included: the latency consumer thread feeds
    // the pipeline and the outlier store, so it stops before they go (the scrape list
    // holds it too). Without this, a failed HTTP start crashed on the way out.
    struct StopLatencyFirst {
        AgentState& state;
        std::shared_ptr<LatencyCollectors>& latency;
        ~StopLatencyFirst() {
            state.collectables.clear();
            latency.reset();
        }
    } stop_latency_first{state, latency};
    for (auto col : config.collectors)
        if (col != compat::Collector::Cpu && col != compat::Collector::OffCpu &&
            !lo.collectors.contains(col))
            mark(col, false, not_ready_reason(plan, col));
    if (!lo.collectors.empty()) {
        std::vector<LatencyStart> report;
        latency = std::make_shared<LatencyCollectors>(lo, &outliers, pipeline.get(), report);
        for (const LatencyStart& r : report) {
            for (const auto& a : r.attached)
                spdlog::info("attached {}", a);
            mark(r.collector, r.running, r.reason);
        }
    }

    int failures = 0;
    for (const auto& c : state.collectors)
        failures += c.running ? 0 : 1;
    if (failures > 0 && config.strict) {
        spdlog::error("--strict: {} collector(s) failed to start; exiting", failures);
        return 1;
    }
    if (failures == static_cast<int>(state.collectors.size())) {
        spdlog::error("no collector could start; exiting");
        return 1;
    }

    state.pipeline = pipeline.get();
    std::vector<ProgramFd> prog_fds;
    if (pipeline)
        prog_fds = pipeline->programs();
    if (latency) {
        auto more = latency->programs();
        prog_fds.insert(prog_fds.end(), more.begin(), more.end());
    }
    auto metrics = std::make_shared<AgentMetrics>(pipeline.get(), state.programs, prog_fds);
    state.collectables.push_back(metrics);
    if (latency && !latency->empty())
        state.collectables.push_back(std::make_shared<LatencyMetrics>(latency, &outliers));
    state.collectables.push_back(std::make_shared<WatchdogMetrics>(watchdog));

    HttpOptions ho;
    ho.listen = config.listen;
    if (!config.web_config.empty()) {
        auto wc = load_web_config(config.web_config);
        if (!wc) {
            spdlog::error("--web-config: {}", wc.error().message());
            return 2;
        }
        ho.web = wc.value();
    }
    if (!is_loopback_listen(config.listen) && !ho.web.auth())
        spdlog::warn("WARNING: listening on {} without authentication: anyone who can reach "
                     "this address can read every process's profile. Use --web-config with "
                     "basic_auth_users, or listen on 127.0.0.1.",
                     config.listen);
    ho.request_timeout_ms = (config.max_profile_seconds + 30) * 1000;
    // Everything is loaded and attached: keep only what run time needs, in every thread
    // (capabilities are per thread: the unwind-table worker already runs; the HTTP
    // workers come next and inherit the lowered sets).
    if (config.drop_capabilities) {
        auto dropped = drop_to_runtime_capabilities();
        if (!dropped)
            spdlog::warn("could not drop capabilities: {}", dropped.error().message());
        else
            spdlog::info(
                "capabilities now: {}{}", capability_names(current_capabilities().effective),
                dropped.value() == 0 ? ""
                                     : " (" + capability_names(dropped.value()) +
                                           " kept: this kernel refuses bpf() on the descriptors "
                                           "held without it while kernel.unprivileged_bpf_disabled "
                                           "is set, and the maps could not be read)");
    }
    if (pipeline)
        pipeline->set_watchdog(&watchdog->watch("symbolizer", /*starts_idle=*/true));
    if (latency)
        latency->start_consumer(&watchdog->watch("latency_ring"));
    // Pyroscope push (optional): after the capability drop, before the HTTP workers read
    // state.collectables.
    auto pyroscope = start_pyroscope_push(config, pipeline.get());
    if (pyroscope)
        state.collectables.push_back(pyroscope->metrics());
    auto otlp = start_otlp_push(config, pipeline.get());
    if (otlp)
        state.collectables.push_back(otlp->metrics());
    auto server = HttpServer::start(ho, make_routes(state));
    if (!server) {
        spdlog::error("{}", server.error().message());
        return 1;
    }
    auto ms_since = [&](clock::time_point t) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t).count();
    };
    spdlog::info("serving http://{}/ (metrics, flamegraph, debug/pprof/profile, readyz)",
                 config.listen);
    spdlog::info("ready in {} ms ({} collector failure(s))", ms_since(t0), failures);
    set_runtime_malloc_policy();

    const auto deadline = config.duration_ns > 0 ? t0 + std::chrono::nanoseconds(config.duration_ns)
                                                 : clock::time_point::max();
    const auto window = std::chrono::nanoseconds(config.profile_window_ns);
    Pipeline::SubscriptionId continuous = 0;
    auto window_start = clock::now();
    if (pipeline)
        continuous = pipeline->subscribe(HP_PROF_ON_CPU, {});
    bool first_logged = false;
    ring_watch.beat();
    // Four checks per stall timeout (2.5 s by default; 250 ms at the shortest timeout
    // allowed, 1 s): a stall is reported at most a quarter late, and an idle agent wakes
    // for it 0.4 times a second rather than once (each wakeup costs ~35 us of CPU on the
    // test VM, a tenth of the agent's user-space cost at 99 Hz).
    watchdog->start_monitor(std::chrono::milliseconds(config.watchdog_timeout_ns / 4'000'000));
    while (g_stop_signal.load() == 0 && clock::now() < deadline) {
        if (pipeline) {
            // The BPF side wakes us only past a fill level or for a new process, and
            // readers flush (docs/profiling.md, "Wakeups"): sleep until the window ends.
            const auto now = clock::now();
            const bool starting = !first_logged && now - t0 < kFirstDrainFor;
            const auto until = std::min(window_start + window, deadline) - now;
            const int sleep_ms =
                starting ? kFirstDrainMs
                         : static_cast<int>(std::clamp<int64_t>(
                               std::chrono::ceil<std::chrono::milliseconds>(until).count(), 0,
                               kMaxSleepMs));
            ring_watch.idle(); // waiting is not a stall; the work after it is watched
            int n = pipeline->poll(sleep_ms);
            ring_watch.busy();
            if (n < 0 && n != -EINTR) {
                spdlog::error("ring buffer poll failed: {}", std::strerror(-n));
                break;
            }
            if (!first_logged && n > 0) {
                first_logged = true;
                spdlog::info("first sample {} ms after start", ms_since(t0));
            }
        } else {
            ring_watch.beat();
            std::this_thread::sleep_for(std::chrono::milliseconds(kTickMs));
        }
        if (clock::now() - window_start < window)
            continue;
        window_start = clock::now();
        // Freed memory goes back to the kernel once per window: profile requests, their
        // rendering and symbolization free in bursts on several threads' arenas, and
        // glibc keeps what is not at the top of an arena (measured under churn: arenas
        // holding 35 MB with 4.5 MB in use).
        ::malloc_trim(0);
        if (latency)
            latency->refresh();
        if (pipeline) {
            ProfileWindow w = pipeline->collect(continuous);
            continuous = pipeline->subscribe(HP_PROF_ON_CPU, {});
            std::map<std::string, uint64_t> per_service;
            for (const auto& [key, value] : w.stacks) {
                auto it = w.processes.find({key.pid, key.start_time_ns});
                per_service[it == w.processes.end() ? "unknown" : it->second.service_name] +=
                    value.count;
            }
            for (const auto& [svc, n_samples] : per_service)
                metrics->add_service_samples(svc, n_samples);
            std::lock_guard lock(state.last_mu);
            state.last_on_cpu = std::move(w);
        }
    }
    ring_watch.idle(); // stopping on purpose: not a stall
    if (int sig = g_stop_signal.load(); sig != 0)
        spdlog::info("received {}, detaching", sig == SIGINT ? "SIGINT" : "SIGTERM");

    server.value().reset(); // no handler runs past this point
    if (pipeline) {
        PipelineStats s = pipeline->stats();
        spdlog::info("consumed {} on-CPU samples, {} off-CPU intervals, {} process events; "
                     "ring drops {}, decode errors {}",
                     s.on_cpu_records, s.off_cpu_records, s.proc_records,
                     s.collector.kernel[HP_PROF_STAT_RINGBUF_DROPS], s.collector.decode_errors);
    }
    pyroscope.reset(); // before the pipeline it collects from
    otlp.reset();
    // The latency consumer feeds the pipeline: it stops first.
    state.collectables.clear();
    if (latency) {
        spdlog::info("consumed {} latency outlier records", latency->consumed());
        latency.reset();
    }
    pipeline.reset();
    spdlog::info("detached; bye");
    return 0;
}

} // namespace hostprof
