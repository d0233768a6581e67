#include "agent/app/cmd_record.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "agent/app/daemon.h"
#include "agent/host/malloc_policy.h"
#include "agent/serve/renderers.h"
#include "kernel-compat/features.h"
#include "kernel-compat/tracefs.h"

namespace hostprof {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) {
    g_stop.store(true);
}

} // namespace

int run_record(Config config, const RecordOptions& o) {
    if (o.format != "pprof" && o.format != "folded" && o.format != "html" && o.format != "otlp") {
        spdlog::error("--format {}: must be pprof, folded, html or otlp", o.format);
        return 2;
    }
    ProfileFilter filter;
    filter.pid = o.pid;
    filter.cgroup_prefix = o.cgroup;
    filter.container_id = o.container;
    filter.service = o.service;
    if (!o.comm.empty()) {
        auto pattern = CommPattern::compile(o.comm);
        if (!pattern) {
            spdlog::error("--comm {}: {}", o.comm, pattern.error().message());
            return 2;
        }
        filter.comm = std::move(pattern).value();
    }
    if (o.pid)
        config.pids = {*o.pid}; // filter in the kernel too
    // A cgroup path that is a directory is filtered in the kernel too (a prefix that is
    // not one, e.g. "/system.slice/ngin", only here).
    if (!o.cgroup.empty() && o.cgroup[0] == '/' &&
        std::filesystem::is_directory(cgroup2_root() + o.cgroup))
        config.cgroup = o.cgroup;
    config.collectors = {o.off_cpu ? compat::Collector::OffCpu : compat::Collector::Cpu};
    if (config.duration_ns == 0)
        config.duration_ns = 10'000'000'000ULL;

    compat::Features f = compat::probe_features(probe_options(config));
    compat::AttachPlan plan = compat::plan_attach(f, plan_config(config));
    if (!plan.refusal.empty()) {
        spdlog::error("cannot record: {}", plan.refusal);
        return 1;
    }
    if (plan.needs_tracefs_mount)
        (void)compat::ensure_tracefs(config.tracefs_path);
    auto pipeline = start_profiling(config, plan);
    if (!pipeline) {
        spdlog::error("cannot record: {}", pipeline.error().message());
        return 1;
    }
    Pipeline& p = *pipeline.value();
    spdlog::info("user stacks: {}", p.unwind_status());
    set_runtime_malloc_policy();
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    auto id = p.subscribe(o.off_cpu ? HP_PROF_OFF_CPU : HP_PROF_ON_CPU, filter);
    spdlog::info("recording {} for {} s to {} ({})", o.off_cpu ? "off-CPU time" : "on-CPU samples",
                 config.duration_ns / 1'000'000'000.0, o.output, o.format);
    const auto end =
        std::chrono::steady_clock::now() + std::chrono::nanoseconds(config.duration_ns);
    while (!g_stop.load() && std::chrono::steady_clock::now() < end) {
        int n = p.poll(100);
        if (n < 0 && n != -EINTR) {
            spdlog::error("ring buffer poll failed: {}", std::strerror(-n));
            return 1;
        }
    }
    p.poll(0);
    ProfileWindow w = p.collect(id);
    BuildOptions bo;
    bo.frequency_hz = config.frequency_hz;
    Profile prof = p.symbolize(w, bo);

    std::string bytes = o.format == "pprof"    ? render_pprof_bytes(prof)
                        : o.format == "folded" ? render_folded_text(prof)
                        : o.format == "otlp"   ? render_otlp_bytes(prof)
                                               : render_flamegraph_page(prof, "hostprof record");
    std::ofstream out(o.output, std::ios::binary | std::ios::trunc);
    if (!out || !out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
        spdlog::error("write {}: {}", o.output, std::strerror(errno));
        return 1;
    }
    uint64_t total = 0;
    for (const auto& [k, v] : w.stacks)
        total += v.count;
    spdlog::info("wrote {} ({} bytes): {} samples in {} stacks from {} processes", o.output,
                 bytes.size(), total, w.stacks.size(), w.processes.size());
    return 0;
}

} // namespace hostprof
