#include "agent/collect/profile_collector.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "agent/collect/latency_bpf_util.h"
#include "common/unique_fd.h"
#include "kernel-compat/features.h"
#include "profile.skel.h"

namespace hostprof {

std::vector<int> online_cpus() {
    std::ifstream in("/sys/devices/system/cpu/online");
    std::string text;
    std::getline(in, text);
    std::vector<int> cpus;
    std::stringstream ss(text);
    std::string range;
    while (std::getline(ss, range, ',')) {
        int lo = 0, hi = 0;
        if (std::sscanf(range.c_str(), "%d-%d", &lo, &hi) == 2) {
            for (int c = lo; c <= hi; ++c)
                cpus.push_back(c);
        } else if (std::sscanf(range.c_str(), "%d", &lo) == 1) {
            cpus.push_back(lo);
        }
    }
    return cpus;
}

using latency::choose_variant;
using latency::chosen;

Status ProfileCollector::open_and_load(const ProfileOptions& options, bool unwind) {
    skel_.reset();
    auto skel = Skeleton<profile_bpf>::open();
    if (!skel)
        return skel.error();
    skel_ = std::move(skel.value());
    profile_bpf* s = skel_.get();
    if (bpf_map__set_max_entries(s->maps.hp_prof_events, options.ring_bytes) != 0)
        return errno_error("ring buffer size " + std::to_string(options.ring_bytes));
    s->rodata->cfg_filter_pids = !options.pids.empty();
    s->rodata->cfg_filter_cgroups = !options.cgroup_dir.empty();
    s->rodata->cfg_offcpu_min_ns = options.off_cpu_min_ns;
    s->rodata->cfg_task_btf = compat::probe_task_btf().available;
    s->rodata->cfg_task_stack = compat::probe_task_stack().available;
    auto* p = s->progs.hp_cpu_sample;
    const bool tick = options.on_cpu_mode != compat::AttachMode::PerfEvent;
    if (options.on_cpu && tick) {
        if (options.tick_handler == 0 || options.irq_entry_end <= options.irq_entry ||
            options.tick_hz <= 0 || options.frequency_hz > options.tick_hz)
            return Error{0, "tick sampler: needs the tick handler's and the timer interrupt's "
                            "addresses and a frequency at most the tick rate (" +
                                std::to_string(options.tick_hz) + " Hz)"};
        s->rodata->cfg_tick_fn = options.tick_handler;
        s->rodata->cfg_irq_entry_lo = options.irq_entry;
        s->rodata->cfg_irq_entry_hi = options.irq_entry_end;
        s->rodata->cfg_irq_regs_from_rq = options.irq_regs_from_rq;
        // Each tick owes frequency / HZ of a sample (32-bit fixed point).
        s->rodata->cfg_tick_below = (static_cast<uint64_t>(options.frequency_hz) << 32) /
                                    static_cast<uint64_t>(options.tick_hz);
    }
    bpf_program__set_autoload(p, options.on_cpu && !tick);
    choose_variant(s->progs.hp_tick_btf, s->progs.hp_tick_raw, s->progs.hp_tick_tp,
                   options.on_cpu && tick, options.on_cpu_mode);
    choose_variant(s->progs.hp_exec_btf, s->progs.hp_exec_raw, s->progs.hp_exec_tp, true,
                   options.proc_mode);
    choose_variant(s->progs.hp_exit_btf, s->progs.hp_exit_raw, s->progs.hp_exit_tp, true,
                   options.proc_mode);
    choose_variant(s->progs.hp_offcpu_btf, s->progs.hp_offcpu_raw, s->progs.hp_offcpu_tp,
                   options.off_cpu, options.off_cpu_mode);

    s->rodata->cfg_unwind = unwind;
    s->rodata->cfg_python = unwind && options.python;
    // The rows map is sized by the budget; without unwinding it takes one row.
    const uint64_t rows =
        unwind ? std::max<uint64_t>(options.unwind_budget_bytes / sizeof(hp_unw_row), 1024) : 1;
    if (bpf_map__set_max_entries(s->maps.hp_unw_rows,
                                 static_cast<uint32_t>(std::min<uint64_t>(rows, 1u << 28))) != 0)
        return errno_error("unwind rows map size");
    // Page index entries (preallocated: tracing programs need that on older kernels): one
    // per 64 KiB of code with rows. Measured: libc 22 pages for 28k rows, a host of 100
    // programs 2,782 for 3.6 M rows (bench/unwind_bench.cpp): one per 256 rows is ample.
    if (bpf_map__set_max_entries(s->maps.hp_unw_pages,
                                 static_cast<uint32_t>(std::max<uint64_t>(rows / 256, 4096))) != 0)
        return errno_error("unwind pages map size");
    return skel_.load();
}

Result<std::unique_ptr<ProfileCollector>>
ProfileCollector::start(const ProfileOptions& options, StackHandler on_stack, ProcHandler on_proc) {
    std::unique_ptr<ProfileCollector> c(new ProfileCollector());
    c->on_stack_ = std::move(on_stack);
    c->on_proc_ = std::move(on_proc);

    // With unwind tables first; if the verifier rejects the walker, again without it (the
    // frame-pointer walk of bpf_get_stack), and /readyz says why.
    bool unwind = options.unwind;
    for (;;) {
        if (Status st = c->open_and_load(options, unwind); st) {
            break;
        } else if (!unwind) {
            return st.error();
        } else {
            c->unwind_status_ =
                "frame pointers only: the unwinder did not load (" + st.error().message() + ")";
            unwind = false;
        }
    }
    profile_bpf* s = c->skel_.get();
    auto* p = s->progs.hp_cpu_sample;
    const bool tick = options.on_cpu_mode != compat::AttachMode::PerfEvent;
    if (unwind) {
        const uint32_t rows = bpf_map__max_entries(s->maps.hp_unw_rows);
        auto maps = unwind::BpfTableMaps::open(
            bpf_map__fd(s->maps.hp_unw_mappings), bpf_map__fd(s->maps.hp_unw_pages),
            bpf_map__fd(s->maps.hp_unw_rows), rows,
            options.python ? bpf_map__fd(s->maps.hp_py_procs) : -1);
        if (!maps)
            return maps.error();
        unwind::StoreOptions so;
        so.proc_root = options.proc_root;
        so.builder = options.unwind_builder;
        so.python = options.python;
        c->unwind_ = std::make_unique<unwind::Store>(std::move(maps.value()), std::move(so));
        // The processes named up front get their tables before the first sample (a
        // process's first samples otherwise take frame pointers while its tables build).
        for (uint32_t pid : options.pids)
            c->unwind_->add_process(pid);
        if (!options.pids.empty())
            c->unwind_->wait_idle(5000);
        c->unwind_status_ = std::string("unwind tables (CFI, Go") +
                            (options.python ? ", Python frames" : "") +
                            ") with frame-pointer fallback";
    } else if (c->unwind_status_.empty()) {
        c->unwind_status_ = "frame pointers only (unwinding off)";
    }

    for (uint32_t pid : options.pids) {
        uint8_t one = 1;
        if (bpf_map__update_elem(s->maps.hp_prof_pids, &pid, sizeof(pid), &one, sizeof(one),
                                 BPF_ANY) != 0)
            return errno_error("add pid " + std::to_string(pid) + " to the filter");
    }

    if (!options.cgroup_dir.empty()) {
        UniqueFd dir(::open(options.cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!dir)
            return errno_error("cgroup filter: open " + options.cgroup_dir);
        uint32_t zero = 0;
        int fd = dir.get();
        if (bpf_map__update_elem(s->maps.hp_prof_cgroup_tree, &zero, sizeof(zero), &fd, sizeof(fd),
                                 BPF_ANY) != 0)
            return errno_error("cgroup filter: " + options.cgroup_dir +
                               " is not a cgroup v2 directory");
    }

    // Tracepoint hooks first, so exec/exit notices flow before the first sample.
    struct Hook {
        bpf_program* prog;
        const char* name;
        compat::AttachMode mode;
    };
    std::vector<Hook> hooks = {
        {chosen(s->progs.hp_exec_btf, s->progs.hp_exec_raw, s->progs.hp_exec_tp),
         "sched/sched_process_exec", options.proc_mode},
        {chosen(s->progs.hp_exit_btf, s->progs.hp_exit_raw, s->progs.hp_exit_tp),
         "sched/sched_process_exit", options.proc_mode},
    };
    if (options.off_cpu)
        hooks.push_back(
            {chosen(s->progs.hp_offcpu_btf, s->progs.hp_offcpu_raw, s->progs.hp_offcpu_tp),
             "sched/sched_switch", options.off_cpu_mode});
    for (const Hook& h : hooks) {
        auto link = take_link(bpf_program__attach(h.prog), std::string("attach ") + h.name);
        if (!link)
            return link.error();
        c->links_.push_back(std::move(link.value()));
        c->attached_.push_back(std::string(h.name) + " (" + std::string(compat::to_string(h.mode)) +
                               ")");
    }

    if (options.on_cpu && tick) {
        if (Status st = latency::attach_chosen(s->progs.hp_tick_btf, s->progs.hp_tick_raw,
                                               s->progs.hp_tick_tp, compat::kTickHook.data(),
                                               options.on_cpu_mode, c->links_, c->attached_);
            !st)
            return st.error();
        // "hook (mode)" from attach_chosen, with the share of ticks sampled.
        c->attached_.back().insert(c->attached_.back().size() - 1,
                                   ", scheduler tick: " + std::to_string(options.frequency_hz) +
                                       " of " + std::to_string(options.tick_hz) +
                                       " ticks/s per CPU");
    } else if (options.on_cpu) {
        int cpus_attached = 0;
        for (int cpu : online_cpus()) {
            perf_event_attr attr{};
            attr.size = sizeof(attr);
            attr.type = PERF_TYPE_SOFTWARE;
            attr.config = PERF_COUNT_SW_CPU_CLOCK;
            attr.freq = 1;
            attr.sample_freq = static_cast<__u64>(options.frequency_hz);
            UniqueFd pfd(static_cast<int>(
                ::syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC)));
            if (!pfd) {
                if (errno == ENODEV) // went offline since we listed it
                    continue;
                return errno_error("perf_event_open cpu-clock on CPU " + std::to_string(cpu));
            }
            bpf_link* raw = bpf_program__attach_perf_event(p, pfd.get());
            if (raw == nullptr)
                return errno_error("attach perf_event program on CPU " + std::to_string(cpu));
            pfd.release(); // the link owns the perf event now and closes it on destroy
            c->links_.emplace_back(raw);
            ++cpus_attached;
        }
        if (cpus_attached == 0)
            return Error{0, "cpu-clock: no online CPU accepted a perf event"};
        c->attached_.push_back("cpu-clock (perf_event, " + std::to_string(cpus_attached) +
                               " CPUs at " + std::to_string(options.frequency_hz) + " Hz)");
    }

    ring_buffer* rb = ring_buffer__new(bpf_map__fd(s->maps.hp_prof_events),
                                       &ProfileCollector::on_record, c.get(), nullptr);
    if (rb == nullptr)
        return errno_error("create ring buffer consumer");
    c->ring_.reset(rb);
    return c;
}

ProfileCollector::~ProfileCollector() {
    // Order matters: stop the consumer, detach links, then free the object.
    ring_.reset();
    links_.clear();
    skel_.reset();
}

int ProfileCollector::on_record(void* ctx, void* data, size_t size) {
    auto* self = static_cast<ProfileCollector*>(ctx);
    std::span<const std::byte> bytes(static_cast<const std::byte*>(data), size);
    ++self->records_;
    auto kind = record_kind(bytes);
    if (!kind) {
        ++self->decode_errors_;
        return 0;
    }
    if (*kind == HP_PROF_ON_CPU || *kind == HP_PROF_OFF_CPU) {
        auto rec = decode_stack_record(bytes);
        if (!rec) {
            ++self->decode_errors_;
            return 0;
        }
        if (self->on_stack_)
            self->on_stack_(*rec);
    } else {
        auto rec = decode_proc_record(bytes);
        if (!rec) {
            ++self->decode_errors_;
            return 0;
        }
        if (self->on_proc_)
            self->on_proc_(*rec);
    }
    return 0;
}

int ProfileCollector::poll(int timeout_ms) {
    int n = ring_buffer__poll(ring_.get(), timeout_ms);
    if (n < 0)
        return n;
    // Wakeups are batched in the kernel (BPF_RB_NO_WAKEUP below a fill level), so drain
    // what arrived without a wakeup too.
    int m = consume();
    return m < 0 ? m : n + m;
}

int ProfileCollector::consume() {
    return ring_buffer__consume(ring_.get());
}

std::vector<ProgramFd> ProfileCollector::programs() const {
    return loaded_programs(skel_->obj);
}

unwind::MapFds ProfileCollector::unwind_maps() const {
    unwind::MapFds m;
    if (!unwind_)
        return m;
    m.mappings = bpf_map__fd(skel_->maps.hp_unw_mappings);
    m.pages = bpf_map__fd(skel_->maps.hp_unw_pages);
    m.rows = bpf_map__fd(skel_->maps.hp_unw_rows);
    m.stats = bpf_map__fd(skel_->maps.hp_unw_stats);
    m.row_count = bpf_map__max_entries(skel_->maps.hp_unw_rows);
    if (skel_->rodata->cfg_python) {
        m.py_procs = bpf_map__fd(skel_->maps.hp_py_procs);
        m.py_threads = bpf_map__fd(skel_->maps.hp_py_threads);
        m.py_stats = bpf_map__fd(skel_->maps.hp_py_stats);
    }
    return m;
}

int ProfileCollector::ring_fd() const {
    return ring_buffer__epoll_fd(ring_.get());
}

ProfileCounters ProfileCollector::counters() const {
    ProfileCounters out;
    out.records = records_.load(std::memory_order_relaxed);
    out.decode_errors = decode_errors_.load(std::memory_order_relaxed);
    // The per-CPU counter arrays, summed (latency::sum_percpu_counters).
    auto sum = [](const bpf_map* map, auto& into) {
        std::vector<uint64_t> v(into.size());
        latency::sum_percpu_counters(map, v);
        std::copy(v.begin(), v.end(), into.begin());
    };
    sum(skel_->maps.hp_prof_stats, out.kernel);
    sum(skel_->maps.hp_unw_stats, out.unwind);
    sum(skel_->maps.hp_py_stats, out.python);
    return out;
}

} // namespace hostprof
