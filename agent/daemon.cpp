#include "agent/daemon.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>

#include "agent/profile_collector.h"
#include "kernel-compat/features.h"
#include "kernel-compat/planner.h"
#include "kernel-compat/report.h"
#include "kernel-compat/tracefs.h"

namespace hostprof {
namespace {

std::atomic<int> g_stop_signal{0};

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

compat::PlanConfig plan_config(const Config& config) {
    compat::PlanConfig pc;
    pc.collectors = config.collectors;
    pc.forced_tracepoint_mode = config.attach_mode;
    return pc;
}

compat::ProbeOptions probe_options(const Config& config) {
    compat::ProbeOptions po;
    po.external_btf_path = config.btf_path;
    po.tracefs_path = config.tracefs_path;
    return po;
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

} // namespace

int run_probe(const Config& config, bool json) {
    compat::Features f = compat::probe_features(probe_options(config));
    compat::AttachPlan plan = compat::plan_attach(f, plan_config(config));
    if (json)
        std::printf("%s\n", compat::to_json(f, plan).dump(2).c_str());
    else
        std::printf("%s", compat::to_table(f, plan).c_str());
    return plan.refusal.empty() ? 0 : 2;
}

int run_agent(const Config& config) {
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    install_stop_handlers();
    spdlog::info("hostprof starting (collectors: {}, {} Hz)", settings()[1].show(config),
                 config.frequency_hz);

    compat::Features features = compat::probe_features(probe_options(config));
    compat::AttachPlan plan = compat::plan_attach(features, plan_config(config));
    if (!plan.refusal.empty()) {
        spdlog::error("cannot run: {}", plan.refusal);
        return 1;
    }
    for (const auto& h : plan.hooks)
        spdlog::debug("plan: {} {} -> {} ({})", compat::to_string(h.collector), h.hook,
                      compat::to_string(h.mode), h.reason);
    if (plan.needs_tracefs_mount) {
        if (Status st = compat::ensure_tracefs(config.tracefs_path); !st)
            spdlog::warn("classic tracepoints unavailable: {}", st.error().message());
        else
            spdlog::info("mounted tracefs at {}", config.tracefs_path);
    }

    int failures = 0;
    auto degraded = [&](std::string_view what, const std::string& why) {
        ++failures;
        spdlog::error("collector {} not started: {}", what, why);
    };

    // CPU profiling (on-CPU samples, off-CPU intervals, process notices).
    uint64_t on_cpu_samples = 0, off_cpu_events = 0, proc_events = 0;
    std::unique_ptr<ProfileCollector> profile;
    bool want_cpu = wants(config, compat::Collector::Cpu);
    bool want_off = wants(config, compat::Collector::OffCpu);
    if (want_cpu || want_off) {
        ProfileOptions po;
        po.frequency_hz = config.frequency_hz;
        po.on_cpu = want_cpu && plan.collector_ready(compat::Collector::Cpu);
        po.off_cpu = want_off && plan.collector_ready(compat::Collector::OffCpu);
        po.off_cpu_min_ns = config.off_cpu_threshold_ns;
        po.pids = config.pids;
        po.proc_mode = mode_of(plan, "sched/sched_process_exec", compat::Collector::Cpu);
        if (po.proc_mode == compat::AttachMode::None)
            po.proc_mode = mode_of(plan, "sched/sched_switch", compat::Collector::OffCpu);
        po.off_cpu_mode = mode_of(plan, "sched/sched_switch", compat::Collector::OffCpu);
        if (want_cpu && !po.on_cpu)
            degraded("cpu", "not supported by this kernel (see `hostprof probe`)");
        if (want_off && !po.off_cpu)
            degraded("offcpu", "not supported by this kernel (see `hostprof probe`)");
        if (po.on_cpu || po.off_cpu) {
            auto started = ProfileCollector::start(
                po,
                [&](const StackRecordView& r) {
                    if (r.kind == HP_PROF_ON_CPU)
                        ++on_cpu_samples;
                    else
                        ++off_cpu_events;
                },
                [&](const ProcRecord&) { ++proc_events; });
            if (!started) {
                degraded("cpu/offcpu", started.error().message());
            } else {
                profile = std::move(started.value());
                for (const auto& a : profile->attached())
                    spdlog::info("attached {}", a);
            }
        }
    }
    for (auto col : config.collectors)
        if (col != compat::Collector::Cpu && col != compat::Collector::OffCpu)
            degraded(compat::to_string(col), "not implemented in this version of hostprof");

    if (failures > 0 && config.strict) {
        spdlog::error("--strict: {} collector(s) failed to start; exiting", failures);
        return 1;
    }
    if (!profile) {
        spdlog::error("no collector could start; exiting");
        return 1;
    }
    auto ms_since = [&](clock::time_point t) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t).count();
    };
    spdlog::info("ready in {} ms ({} collector failure(s))", ms_since(t0), failures);

    const auto deadline = config.duration_ns > 0 ? t0 + std::chrono::nanoseconds(config.duration_ns)
                                                 : clock::time_point::max();
    bool first_logged = false;
    while (g_stop_signal.load() == 0 && clock::now() < deadline) {
        int n = profile->poll(100);
        if (n < 0 && n != -EINTR) {
            spdlog::error("ring buffer poll failed: {}", std::strerror(-n));
            break;
        }
        if (!first_logged && on_cpu_samples + off_cpu_events > 0) {
            first_logged = true;
            spdlog::info("first sample {} ms after start", ms_since(t0));
        }
    }
    if (int sig = g_stop_signal.load(); sig != 0)
        spdlog::info("received {}, detaching", sig == SIGINT ? "SIGINT" : "SIGTERM");

    ProfileCounters pc = profile->counters();
    spdlog::info("consumed {} on-CPU samples, {} off-CPU intervals, {} process events; "
                 "ring drops {}, decode errors {}",
                 on_cpu_samples, off_cpu_events, proc_events, pc.kernel[HP_PROF_STAT_RINGBUF_DROPS],
                 pc.decode_errors);
    profile.reset();
    spdlog::info("detached; bye");
    return 0;
}

} // namespace hostprof
