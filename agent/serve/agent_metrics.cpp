#include "agent/serve/agent_metrics.h"

#include <bpf/bpf.h>
#include <malloc.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "common/unique_fd.h"
#include "exporters/metrics.h"
#include "symbolizer/symbolizer.h"
#include "unwind/python_symbols.h"
#include "unwind/store.h"

namespace hostprof {
namespace {

using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr size_t kMaxServices = 200;

double num(uint64_t v) {
    return static_cast<double>(v);
}

// One family of one unlabelled sample.
void add_single(std::vector<MetricFamily>& out, const char* name, const char* help, MetricType type,
                double v) {
    auto f = metric_family(name, help, type);
    add_metric_value(f, v);
    out.push_back(std::move(f));
}

// The unwinder's counters: the BPF walk's (hp_unw_stats, bpf/unwind.h) and the table
// store's (unwind/store.h). Label values come from fixed enums.
void add_unwind_families(const std::array<uint64_t, HP_UNW_STAT_MAX>& k, const unwind::Store* store,
                         std::vector<MetricFamily>& out) {
    auto frames =
        metric_family("hostprof_unwind_frames_total",
                      "User frames stepped by the BPF unwinder, by method (cfi: a CFI row; "
                      "go: a row from Go's pclntab; fp: a frame-pointer step where no table "
                      "covers the code).",
                      MetricType::Counter);
    add_metric_value(frames, num(k[HP_UNW_STAT_FRAMES_CFI]), {{"method", "cfi"}});
    add_metric_value(frames, num(k[HP_UNW_STAT_FRAMES_GO]), {{"method", "go"}});
    add_metric_value(frames, num(k[HP_UNW_STAT_FRAMES_FP]), {{"method", "fp"}});
    out.push_back(std::move(frames));
    auto stacks =
        metric_family("hostprof_unwind_stacks_total",
                      "User stacks, by how they were walked (tables: the BPF unwinder; "
                      "frame_pointers: bpf_get_stack, because the process had no tables yet "
                      "or its registers could not be read).",
                      MetricType::Counter);
    add_metric_value(stacks, num(k[HP_UNW_STAT_STACKS]), {{"method", "tables"}});
    add_metric_value(stacks, num(k[HP_UNW_STAT_FALLBACK_FP] + k[HP_UNW_STAT_NO_REGS]),
                     {{"method", "frame_pointers"}});
    out.push_back(std::move(stacks));
    auto ended =
        metric_family("hostprof_unwind_stacks_ended_total",
                      "Stacks walked with tables, by why the walk ended (end_of_stack: the "
                      "outermost frame, complete).",
                      MetricType::Counter);
    const std::pair<const char*, int> reasons[] = {
        {"end_of_stack", HP_UNW_STAT_END_OF_STACK},   {"no_table", HP_UNW_STAT_NO_TABLE},
        {"table_pending", HP_UNW_STAT_TABLE_PENDING}, {"bad_read", HP_UNW_STAT_BAD_READ},
        {"depth_limit", HP_UNW_STAT_DEPTH_LIMIT},     {"invalid_rule", HP_UNW_STAT_INVALID_RULE},
    };
    for (const auto& [name, i] : reasons)
        add_metric_value(ended, num(k[static_cast<size_t>(i)]), {{"reason", name}});
    out.push_back(std::move(ended));
    if (store == nullptr)
        return;
    const unwind::StoreStats st = store->stats();
    auto gauge = [&](const char* name, const char* help, double v) {
        add_single(out, name, help, MetricType::Gauge, v);
    };
    gauge("hostprof_unwind_tables", "Unwind tables in the store (one per distinct file).",
          num(st.tables));
    gauge("hostprof_unwind_tables_ready", "Unwind tables whose rows are in the BPF maps.",
          num(st.tables_ready));
    gauge("hostprof_unwind_map_bytes", "Bytes of unwind rows in the BPF rows map.",
          num(st.rows_used * sizeof(hp_unw_row)));
    gauge("hostprof_unwind_map_limit_bytes", "Size of the BPF rows map (unwind_memory).",
          num(st.row_capacity * sizeof(hp_unw_row)));
    gauge("hostprof_unwind_mapping_entries",
          "Entries of the {pid, address} -> table trie (processes' executable mappings).",
          num(st.mapping_entries));
    auto builds =
        metric_family("hostprof_unwind_table_builds_total",
                      "Unwind-table builds, by result (no_fit: larger than the free budget "
                      "after evicting unused tables; walked with frame pointers).",
                      MetricType::Counter);
    add_metric_value(builds, num(st.builds - st.build_failures - st.no_fit), {{"result", "built"}});
    add_metric_value(builds, num(st.build_failures), {{"result", "failed"}});
    add_metric_value(builds, num(st.no_fit), {{"result", "no_fit"}});
    out.push_back(std::move(builds));
    add_single(out, "hostprof_unwind_table_build_seconds_total",
               "Time spent building unwind tables.", MetricType::Counter,
               static_cast<double>(st.build_ns) / 1e9);
    add_single(out, "hostprof_unwind_table_evictions_total",
               "Unwind tables evicted (unused by any process for 5 minutes, or to make room).",
               MetricType::Counter, num(st.evictions));
    auto errs = metric_family("hostprof_unwind_errors_total",
                              "Unwind store errors, by kind (map: a BPF map update failed, e.g. "
                              "full; process: a process's mappings could not be read).",
                              MetricType::Counter);
    add_metric_value(errs, num(st.map_errors), {{"kind", "map"}});
    add_metric_value(errs, num(st.process_errors), {{"kind", "process"}});
    out.push_back(std::move(errs));
}

// Interpreter frames: the BPF walk's counters (hp_py_stats, bpf/python.h), the store's
// processes and refusals, the code objects read. Label values: fixed enums, and the
// refused runtimes' "runtime version" (one per interpreter version met: few).
void add_interpreter_families(const std::array<uint64_t, HP_PY_STAT_MAX>& k,
                              const unwind::Store* store, const unwind::PythonSymbols* symbols,
                              std::vector<MetricFamily>& out) {
    auto stacks =
        metric_family("hostprof_interpreter_stacks_total",
                      "Samples of interpreter processes, by what the interpreter walk found "
                      "(frames: its functions are in the stack; no_thread: a thread with no "
                      "interpreter state, e.g. a C library's; no_frame: a thread running "
                      "no interpreted code; bad_read: its memory could not be read mid-walk; "
                      "truncated: more frames than the walk takes).",
                      MetricType::Counter);
    const std::pair<const char*, int> results[] = {
        {"frames", HP_PY_STAT_STACKS},       {"no_thread", HP_PY_STAT_NO_THREAD},
        {"no_frame", HP_PY_STAT_NO_FRAME},   {"bad_read", HP_PY_STAT_BAD_READ},
        {"truncated", HP_PY_STAT_TRUNCATED},
    };
    for (const auto& [name, i] : results)
        add_metric_value(stacks, num(k[static_cast<size_t>(i)]),
                         {{"runtime", "cpython"}, {"result", name}});
    out.push_back(std::move(stacks));
    auto tstate =
        metric_family("hostprof_interpreter_thread_state_lookups_total",
                      "How the BPF walk found a sampled thread's interpreter state (cached: "
                      "the thread's cached state still its own; searched: the GIL holder or "
                      "the interpreter's thread list).",
                      MetricType::Counter);
    add_metric_value(tstate, num(k[HP_PY_STAT_TSTATE_CACHED]),
                     {{"runtime", "cpython"}, {"how", "cached"}});
    add_metric_value(tstate, num(k[HP_PY_STAT_TSTATE_SEARCHED]),
                     {{"runtime", "cpython"}, {"how", "searched"}});
    out.push_back(std::move(tstate));
    auto frames =
        metric_family("hostprof_interpreter_frames_total",
                      "Interpreter frames put in stacks by the BPF walk.", MetricType::Counter);
    add_metric_value(frames, num(k[HP_PY_STAT_FRAMES]), {{"runtime", "cpython"}});
    out.push_back(std::move(frames));
    if (store != nullptr) {
        const unwind::StoreStats st = store->stats();
        auto procs =
            metric_family("hostprof_interpreter_processes",
                          "Processes whose interpreter frames are walked.", MetricType::Gauge);
        add_metric_value(procs, num(st.python_processes), {{"runtime", "cpython"}});
        out.push_back(std::move(procs));
        auto refused =
            metric_family("hostprof_interpreter_unsupported_total",
                          "Processes running an interpreter whose frames are not walked: a "
                          "version not in the offsets table, or a build of another layout "
                          "(their native frames are still profiled).",
                          MetricType::Counter);
        for (const auto& [what, n] : st.interpreter_unsupported) {
            const size_t sp = what.find(' ');
            add_metric_value(refused, num(n),
                             {{"runtime", what.substr(0, sp)},
                              {"version", sp == std::string::npos ? "" : what.substr(sp + 1)}});
        }
        out.push_back(std::move(refused));
    }
    if (symbols != nullptr) {
        const unwind::PythonSymbolsStats ps = symbols->stats();
        add_single(out, "hostprof_interpreter_code_reads_total",
                   "Code objects read from interpreter processes for names and lines.",
                   MetricType::Counter, num(ps.code_reads));
        add_single(out, "hostprof_interpreter_code_read_errors_total",
                   "Code objects that could not be read (the process exited, or not a code "
                   "object): those frames show as unknown.",
                   MetricType::Counter, num(ps.read_errors));
    }
}

// The symbolizer's counters (symbolizer/symbolizer.h SymbolizerStats). Every label value
// comes from a fixed enum: kind (2), reason (8 miss reasons, 5 refusals).
void add_symbolizer_families(const sym::SymbolizerStats& s, std::vector<MetricFamily>& out) {
    auto gauge = [&](const char* name, const char* help, double v) {
        add_single(out, name, help, MetricType::Gauge, v);
    };
    auto counter = [&](const char* name, const char* help, uint64_t v) {
        add_single(out, name, help, MetricType::Counter, num(v));
    };
    gauge("hostprof_symbol_cache_bytes", "Estimated bytes held by cached ELF objects.",
          num(s.cache_bytes));
    gauge("hostprof_symbol_cache_limit_bytes", "Bound on the symbol cache (symbol_cache_size).",
          num(s.cache_limit_bytes));
    gauge("hostprof_symbol_cache_objects", "ELF objects in the symbol cache.",
          num(s.cache_objects));
    counter("hostprof_symbol_cache_hits_total", "ELF object lookups served from the cache.",
            s.cache_hits);
    counter("hostprof_symbol_cache_misses_total", "ELF objects read from disk.", s.cache_misses);
    counter("hostprof_symbol_cache_evictions_total",
            "ELF objects evicted by the symbol cache's bound.", s.cache_evictions);
    counter("hostprof_kallsyms_loads_total",
            "Reads of /proc/kallsyms: the first kernel frame, then kernel addresses not "
            "found at least 10 s after the last read (a module or BPF program loaded since).",
            s.kallsyms_loads);
    counter("hostprof_symbolizer_lookup_memory_releases_total",
            "Times the DWARF lookup state (line tables, touched debug data) of one profile "
            "build reached its bound and was released before the build ended.",
            s.lookup_memory_releases);
    gauge("hostprof_symbolizer_processes", "Processes whose mappings the symbolizer holds.",
          num(s.processes));

    auto frames =
        metric_family("hostprof_frames_total", "Frames symbolized, by kind.", MetricType::Counter);
    add_metric_value(frames, num(s.kernel_frames), {{"kind", "kernel"}});
    add_metric_value(frames, num(s.user_frames), {{"kind", "user"}});
    out.push_back(std::move(frames));
    auto misses =
        metric_family("hostprof_frames_unsymbolized_total",
                      "Frames left without a function name, by reason.", MetricType::Counter);
    for (int r = 1; r < sym::kMissReasonCount; ++r)
        add_metric_value(misses, num(s.unsymbolized[r]),
                         {{"reason", sym::miss_reason_name(static_cast<sym::MissReason>(r))}});
    out.push_back(std::move(misses));

    counter("hostprof_perf_map_malformed_lines_total",
            "Lines of /tmp/perf-PID.map files skipped as malformed.", s.perf_map_malformed_lines);
    counter("hostprof_symbolizer_files_opened_total",
            "Files opened inside processes' roots (binaries, debug files, perf maps).",
            s.files_opened);
    auto refusals = metric_family("hostprof_symbolizer_file_refusals_total",
                                  "Files not opened for a process, by reason (docs/security.md).",
                                  MetricType::Counter);
    for (sym::OpenRefusal r :
         {sym::OpenRefusal::Symlink, sym::OpenRefusal::Escape, sym::OpenRefusal::NotRegular,
          sym::OpenRefusal::TooLarge, sym::OpenRefusal::Error})
        add_metric_value(refusals, num(s.open_failures[static_cast<int>(r)]),
                         {{"reason", sym::open_refusal_name(r)}});
    out.push_back(std::move(refusals));
    auto minidebug = metric_family(
        "hostprof_symbolizer_minidebuginfo_total",
        "Objects whose .gnu_debugdata (MiniDebugInfo) was read, by result.", MetricType::Counter);
    add_metric_value(minidebug, num(s.minidebuginfo_loaded), {{"result", "loaded"}});
    add_metric_value(minidebug, num(s.minidebuginfo_errors), {{"result", "error"}});
    out.push_back(std::move(minidebug));

    gauge("hostprof_debuginfod_enabled", "Whether debuginfod lookups are on (--debuginfod-urls).",
          s.debuginfod_enabled ? 1 : 0);
    counter("hostprof_debuginfod_lookups_total", "Build-ids asked of debuginfod servers.",
            s.debuginfod_lookups);
    counter("hostprof_debuginfod_hits_total", "Debug files obtained from debuginfod.",
            s.debuginfod_hits);
    counter("hostprof_debuginfod_failures_total",
            "debuginfod lookups not found, timed out, refused or unusable.", s.debuginfod_failures);
    counter("hostprof_debuginfod_queue_drops_total",
            "Build-ids not looked up because the debuginfod queue was full.",
            s.debuginfod_queue_drops);
}

} // namespace

SelfUsage read_self_usage() {
    SelfUsage u;
    std::ifstream in("/proc/self/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t close = stat.rfind(')');
    if (close == std::string::npos)
        return u;
    std::istringstream rest(stat.substr(close + 2));
    std::vector<std::string> f;
    std::string tok;
    while (rest >> tok)
        f.push_back(tok);
    // rest starts at field 3: utime = field 14, stime = 15, rss = 24 (pages).
    if (f.size() > 21) {
        double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
        u.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;
        u.rss_bytes = std::stoull(f[21]) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    }
    // uordblks: allocated from arenas; hblkhd: large blocks mmapped on their own.
    // fordblks: free bytes held in the arenas (part of them may be paged out by trim).
    struct mallinfo2 mi = ::mallinfo2();
    u.heap_in_use_bytes = mi.uordblks + mi.hblkhd;
    u.heap_free_bytes = mi.fordblks;
    return u;
}

std::vector<BpfProgramStats> read_bpf_program_stats(const std::vector<ProgramFd>& progs) {
    std::vector<BpfProgramStats> out;
    for (const ProgramFd& p : progs) {
        bpf_prog_info info{};
        __u32 len = sizeof(info);
        if (bpf_obj_get_info_by_fd(p.fd, &info, &len) != 0)
            continue;
        out.push_back({p.name, info.run_time_ns, info.run_cnt, info.recursion_misses});
    }
    return out;
}

AgentMetrics::AgentMetrics(const Pipeline* pipeline, std::vector<ProgramState> programs,
                           std::vector<ProgramFd> prog_fds)
    : pipeline_(pipeline), programs_(std::move(programs)), prog_fds_(std::move(prog_fds)) {}

void AgentMetrics::add_service_samples(const std::string& service, uint64_t samples) {
    std::lock_guard lock(mu_);
    auto it = service_samples_.find(service);
    if (it == service_samples_.end() && service_samples_.size() >= kMaxServices)
        it = service_samples_.try_emplace("other", 0).first;
    else if (it == service_samples_.end())
        it = service_samples_.emplace(service, 0).first;
    it->second += samples;
}

std::vector<MetricFamily> AgentMetrics::Collect() const {
    std::vector<MetricFamily> out;

    auto attached = metric_family("hostprof_program_attached",
                                  "Whether a hook's BPF program is attached (1) or not (0).",
                                  MetricType::Gauge);
    for (const ProgramState& p : programs_)
        add_metric_value(attached, p.attached ? 1 : 0,
                         {{"collector", p.collector}, {"hook", p.hook}, {"mode", p.mode}});
    out.push_back(std::move(attached));

    if (pipeline_ != nullptr) {
        PipelineStats s = pipeline_->stats();
        const auto& k = s.collector.kernel;
        auto records =
            metric_family("hostprof_ringbuf_records_total",
                          "Records consumed from a BPF ring buffer.", MetricType::Counter);
        add_metric_value(records, static_cast<double>(s.collector.records), {{"ring", "profile"}});
        out.push_back(std::move(records));
        auto drops =
            metric_family("hostprof_ringbuf_dropped_total",
                          "Records lost because a BPF ring buffer was full.", MetricType::Counter);
        add_metric_value(drops, static_cast<double>(k[HP_PROF_STAT_RINGBUF_DROPS]),
                         {{"ring", "profile"}});
        out.push_back(std::move(drops));
        auto decode =
            metric_family("hostprof_decode_errors_total",
                          "Ring-buffer records rejected by the decoders.", MetricType::Counter);
        add_metric_value(decode, static_cast<double>(s.collector.decode_errors),
                         {{"ring", "profile"}});
        out.push_back(std::move(decode));
        auto window_drops =
            metric_family("hostprof_profile_stacks_dropped_total",
                          "Stack records the agent dropped after consuming them (consumer side): "
                          "the profile window already held its maximum of distinct stacks.",
                          MetricType::Counter);
        add_metric_value(window_drops, static_cast<double>(s.window_stack_drops));
        out.push_back(std::move(window_drops));

        auto samples =
            metric_family("hostprof_profile_events_total",
                          "Profiling events seen in the kernel, by kind.", MetricType::Counter);
        add_metric_value(samples, static_cast<double>(k[HP_PROF_STAT_ON_CPU_SAMPLES]),
                         {{"kind", "on_cpu"}});
        add_metric_value(samples, static_cast<double>(k[HP_PROF_STAT_ON_CPU_IDLE]),
                         {{"kind", "on_cpu_idle"}});
        add_metric_value(samples, static_cast<double>(k[HP_PROF_STAT_FILTERED]),
                         {{"kind", "filtered"}});
        add_metric_value(samples, static_cast<double>(k[HP_PROF_STAT_OFF_CPU_EVENTS]),
                         {{"kind", "off_cpu"}});
        add_metric_value(samples, static_cast<double>(k[HP_PROF_STAT_PROC_EVENTS]),
                         {{"kind", "process"}});
        add_metric_value(samples, static_cast<double>(k[HP_PROF_STAT_TICKS]), {{"kind", "tick"}});
        out.push_back(std::move(samples));

        auto untrimmed = metric_family(
            "hostprof_tick_stacks_untrimmed_total",
            "Tick-sampler samples whose kernel stack did not show the timer interrupt's entry "
            "within its first frames: kept whole, the interrupt's own frames on top.",
            MetricType::Counter);
        add_metric_value(untrimmed, static_cast<double>(k[HP_PROF_STAT_TICK_UNTRIMMED]));
        out.push_back(std::move(untrimmed));
        auto regs = metric_family(
            "hostprof_tick_regs_failures_total",
            "Tick-sampler samples whose interrupted registers told nothing, by reason "
            "(unreadable: the kernel stack was walked to tell user from kernel mode, at several "
            "times the cost; mismatch: they said kernel mode and the walk found none).",
            MetricType::Counter);
        add_metric_value(regs, static_cast<double>(k[HP_PROF_STAT_TICK_REGS_UNKNOWN]),
                         {{"reason", "unreadable"}});
        add_metric_value(regs, static_cast<double>(k[HP_PROF_STAT_TICK_REGS_MISMATCH]),
                         {{"reason", "mismatch"}});
        out.push_back(std::move(regs));

        auto stack_err = metric_family("hostprof_stack_errors_total",
                                       "bpf_get_stack failures, by stack.", MetricType::Counter);
        add_metric_value(stack_err, static_cast<double>(k[HP_PROF_STAT_KSTACK_ERRORS]),
                         {{"stack", "kernel"}});
        add_metric_value(stack_err, static_cast<double>(k[HP_PROF_STAT_USTACK_ERRORS]),
                         {{"stack", "user"}});
        out.push_back(std::move(stack_err));

        auto trunc =
            metric_family("hostprof_stacks_truncated_total",
                          "Stacks that filled all 127 frames (possibly cut short), by stack.",
                          MetricType::Counter);
        add_metric_value(trunc, static_cast<double>(s.kernel_stacks_truncated),
                         {{"stack", "kernel"}});
        add_metric_value(trunc, static_cast<double>(s.user_stacks_truncated), {{"stack", "user"}});
        out.push_back(std::move(trunc));

        auto wakeups = metric_family(
            "hostprof_ringbuf_wakeups_total",
            "Records shipped with a forced consumer wakeup, by reason (fill: "
            "the ring passed its wakeup fill level; new_process: the first "
            "sample of a process and its second one 5 ms later, for reading /proc at once).",
            MetricType::Counter);
        const double forced = static_cast<double>(k[HP_PROF_STAT_WAKEUPS]);
        const double fresh = static_cast<double>(k[HP_PROF_STAT_PROCESS_WAKEUPS]);
        add_metric_value(wakeups, forced > fresh ? forced - fresh : 0,
                         {{"ring", "profile"}, {"reason", "fill"}});
        add_metric_value(wakeups, fresh, {{"ring", "profile"}, {"reason", "new_process"}});
        out.push_back(std::move(wakeups));
        auto captures = metric_family(
            "hostprof_process_captures_total",
            "Sampled processes whose memory mappings the symbolizer tried to read, by "
            "result (exited: the process was gone before they were read, so its user "
            "frames stay unsymbolized).",
            MetricType::Counter);
        add_metric_value(captures, static_cast<double>(s.processes_captured),
                         {{"result", "captured"}});
        add_metric_value(captures, static_cast<double>(s.processes_exited_before_capture),
                         {{"result", "exited"}});
        out.push_back(std::move(captures));

        auto procs = metric_family("hostprof_process_table_entries",
                                   "Processes whose metadata is cached.", MetricType::Gauge);
        add_metric_value(procs, static_cast<double>(s.processes.size));
        out.push_back(std::move(procs));
        auto evict =
            metric_family("hostprof_process_table_evictions_total",
                          "Process-table entries evicted by its bound.", MetricType::Counter);
        add_metric_value(evict, static_cast<double>(s.processes.evictions));
        out.push_back(std::move(evict));

        add_unwind_families(s.collector.unwind, pipeline_->unwinder(), out);
        add_interpreter_families(s.collector.python, pipeline_->unwinder(),
                                 pipeline_->python_symbols(), out);

        sym::SymbolizerStats ss;
        if (pipeline_->symbolizer_stats(ss))
            add_symbolizer_families(ss, out);
    }

    {
        std::lock_guard lock(mu_);
        auto per_service =
            metric_family("hostprof_cpu_samples_total",
                          "On-CPU samples per service (completed windows).", MetricType::Counter);
        for (const auto& [svc, n] : service_samples_)
            add_metric_value(per_service, static_cast<double>(n), {{"service_name", svc}});
        out.push_back(std::move(per_service));
    }

    // The kernel counts run time and runs only while kernel.bpf_stats_enabled=1: a program
    // with no count was not measured, and a 0 would read as "costs nothing".
    auto run_time =
        metric_family("hostprof_bpf_program_run_seconds_total",
                      "Time spent running our BPF programs (only while "
                      "kernel.bpf_stats_enabled=1; absent for a program never measured).",
                      MetricType::Counter);
    auto run_count =
        metric_family("hostprof_bpf_program_runs_total",
                      "Runs of our BPF programs (only while kernel.bpf_stats_enabled=1; "
                      "absent for a program never measured).",
                      MetricType::Counter);
    auto misses = metric_family("hostprof_bpf_program_recursion_misses_total",
                                "Events the kernel did not hand to our BPF program because it was "
                                "already running on that CPU (the event came from an interrupt).",
                                MetricType::Counter);
    for (const BpfProgramStats& p : read_bpf_program_stats(prog_fds_)) {
        if (p.run_count > 0) {
            add_metric_value(run_time, static_cast<double>(p.run_time_ns) / 1e9,
                             {{"program", p.name}});
            add_metric_value(run_count, static_cast<double>(p.run_count), {{"program", p.name}});
        }
        add_metric_value(misses, static_cast<double>(p.recursion_misses), {{"program", p.name}});
    }
    out.push_back(std::move(run_time));
    out.push_back(std::move(run_count));
    out.push_back(std::move(misses));

    SelfUsage u = read_self_usage();
    auto cpu = metric_family("process_cpu_seconds_total", "Agent CPU time, user + system.",
                             MetricType::Counter);
    add_metric_value(cpu, u.cpu_seconds);
    out.push_back(std::move(cpu));
    auto rss =
        metric_family("process_resident_memory_bytes", "Agent resident memory.", MetricType::Gauge);
    add_metric_value(rss, static_cast<double>(u.rss_bytes));
    out.push_back(std::move(rss));
    auto heap_used = metric_family(
        "hostprof_heap_in_use_bytes",
        "Bytes the agent's malloc has handed out (arenas and mmapped blocks).", MetricType::Gauge);
    add_metric_value(heap_used, static_cast<double>(u.heap_in_use_bytes));
    out.push_back(std::move(heap_used));
    auto heap_free = metric_family(
        "hostprof_heap_free_bytes",
        "Free bytes malloc holds in its arenas (not all of them resident).", MetricType::Gauge);
    add_metric_value(heap_free, static_cast<double>(u.heap_free_bytes));
    out.push_back(std::move(heap_free));
    return out;
}

std::vector<prometheus::MetricFamily>
watchdog_metric_families(const std::vector<Watchdog::ConsumerReport>& consumers) {
    std::vector<prometheus::MetricFamily> out(2);
    out[0].name = "hostprof_watchdog_stalls_total";
    out[0].help = "Times a consumer (ring loop, latency thread, symbolizer) went longer than "
                  "the watchdog timeout without progress.";
    out[0].type = prometheus::MetricType::Counter;
    out[1].name = "hostprof_watchdog_seconds_since_progress";
    out[1].help = "Seconds since a consumer last made progress (0 while an idle task).";
    out[1].type = prometheus::MetricType::Gauge;
    for (const Watchdog::ConsumerReport& c : consumers) {
        prometheus::ClientMetric m;
        m.label = {{"consumer", c.name}};
        m.counter.value = static_cast<double>(c.stalls);
        out[0].metric.push_back(m);
        prometheus::ClientMetric g;
        g.label = {{"consumer", c.name}};
        g.gauge.value = c.seconds_since_progress;
        out[1].metric.push_back(std::move(g));
    }
    return out;
}

} // namespace hostprof
