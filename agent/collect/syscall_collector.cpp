#include "agent/collect/syscall_collector.h"

#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <tuple>

#include "agent/collect/latency_bpf_util.h"
#include "kernel-compat/features.h"
#include "kernel-compat/syscall_table.h"
#include "syscalls.skel.h"

namespace hostprof {

namespace {

LatencyHistogram sum_hists(const std::vector<hp_sys_hist>& per_cpu) {
    LatencyHistogram h;
    h.slots.assign(HP_SYS_SLOTS, 0);
    for (const hp_sys_hist& v : per_cpu) {
        for (size_t i = 0; i < HP_SYS_SLOTS; ++i)
            h.slots[i] += v.slots[i];
        h.sum += v.sum_ns;
    }
    return h;
}

} // namespace

const SyscallStats* SyscallSnapshot::find(std::string_view name) const {
    for (const SyscallStats& s : syscalls)
        if (s.name == name)
            return &s;
    return nullptr;
}

const SyscallStats* SyscallSnapshot::find(uint64_t cgroup_id, std::string_view name) const {
    for (const SyscallStats& s : by_cgroup)
        if (s.cgroup_id == cgroup_id && s.name == name)
            return &s;
    return nullptr;
}

Result<std::unique_ptr<SyscallCollector>> SyscallCollector::start(const SyscallOptions& options,
                                                                  OutlierHandler on_outlier) {
    if (options.cgroup_ids.size() > HP_SYS_MAX_CGROUPS)
        return Error{EINVAL, "syscalls: at most " + std::to_string(HP_SYS_MAX_CGROUPS) +
                                 " cgroups can have their own histograms, " +
                                 std::to_string(options.cgroup_ids.size()) + " given"};
    std::unique_ptr<SyscallCollector> c(new SyscallCollector());
    c->on_outlier_ = std::move(on_outlier);

    auto skel = Skeleton<syscalls_bpf>::open();
    if (!skel)
        return skel.error();
    c->skel_ = std::move(skel.value());
    syscalls_bpf* s = c->skel_.get();

    c->per_cgroup_ = options.per_cgroup || !options.cgroup_ids.empty();
    s->rodata->cfg_per_cgroup = c->per_cgroup_;
    s->rodata->cfg_filter_tgid = options.tgid;
    // Outliers wake the consumer at once: the process may exit soon after its slow call,
    // and its mappings must be read while it lives. Their rate is bounded by the
    // threshold (>= 100 us per call and thread), unlike per-syscall events.
    s->rodata->cfg_wakeup_bytes = 0;
    s->rodata->cfg_self_tgid = static_cast<uint32_t>(::getpid());
    if (auto nr = syscall_number("exit"))
        s->rodata->cfg_nr_exit = *nr;
    if (auto nr = syscall_number("exit_group"))
        s->rodata->cfg_nr_exit_group = *nr;
    // The syscall in flight lives in task-local storage where tracing programs can use it
    // (Linux 5.11+: a pointer walk per syscall instead of a hash lookup); elsewhere in an
    // LRU hash by tid. The map not used shrinks to a harmless one-entry hash.
    // Probed by kernel-compat in the attach mode's program type (raw_tp stands for tp_btf).
    const bool task_storage =
        !options.force_hash_in_flight &&
        compat::probe_task_storage(options.mode != compat::AttachMode::Tracepoint).available;
    s->rodata->cfg_task_storage = task_storage;
    if (task_storage) {
        bpf_map__set_max_entries(s->maps.hp_sys_start, 1);
    } else {
        bpf_map__set_type(s->maps.hp_sys_task, BPF_MAP_TYPE_HASH);
        bpf_map__set_max_entries(s->maps.hp_sys_task, 1);
    }
    c->in_flight_ = task_storage ? "task storage" : "lru hash";
    for (uint32_t nr = 0; nr < HP_SYS_MAX_NR; ++nr)
        s->rodata->cfg_outlier_ns[nr] = options.outlier_threshold_ns;
    for (const auto& [name, ns] : options.outlier_threshold_overrides) {
        auto nr = syscall_number(name);
        if (!nr)
            return Error{EINVAL,
                         "syscalls: unknown syscall name '" + name + "' in the outlier thresholds"};
        s->rodata->cfg_outlier_ns[*nr] = ns;
    }
    uint64_t min_ns = 0;
    for (uint64_t ns : s->rodata->cfg_outlier_ns)
        if (ns != 0 && (min_ns == 0 || ns < min_ns))
            min_ns = ns;
    s->rodata->cfg_outlier_min_ns = min_ns;
    if (Status st = latency::configure_native(s->maps.hp_native, s->rodata->cfg_native_buckets,
                                              s->rodata->cfg_native_bounds, options.native_schema,
                                              HP_SYS_MAX_NR);
        !st)
        return st.error();
    c->native_schema_ = options.native_schema;

    // tp_btf with task storage: the syscall in flight sits in a per-CPU slot and moves to
    // task storage only when its thread is switched out (bpf/syscalls.bpf.c, hp_sys_cpu).
    const bool cpu_slot = task_storage && options.mode == compat::AttachMode::TpBtf;
    s->rodata->cfg_cpu_slot = cpu_slot;
    bpf_program__set_autoload(s->progs.hp_sysswitch_btf, cpu_slot);
    if (cpu_slot)
        c->in_flight_ = "per-CPU slot + task storage";
    latency::choose_variant(s->progs.hp_sysenter_btf, s->progs.hp_sysenter_raw,
                            s->progs.hp_sysenter_tp, true, options.mode);
    latency::choose_variant(s->progs.hp_sysexit_btf, s->progs.hp_sysexit_raw,
                            s->progs.hp_sysexit_tp, true, options.mode);
    // Slow syscalls' user stacks: the profile collector's unwind tables, when it runs.
    s->rodata->cfg_unwind = options.unwind.valid();
    if (options.unwind.valid()) {
        if (bpf_map__reuse_fd(s->maps.hp_unw_mappings, options.unwind.mappings) != 0 ||
            bpf_map__reuse_fd(s->maps.hp_unw_pages, options.unwind.pages) != 0 ||
            bpf_map__set_max_entries(s->maps.hp_unw_rows, options.unwind.row_count) != 0 ||
            bpf_map__reuse_fd(s->maps.hp_unw_rows, options.unwind.rows) != 0 ||
            bpf_map__reuse_fd(s->maps.hp_unw_stats, options.unwind.stats) != 0)
            return errno_error("syscalls: share the profile collector's unwind maps");
    }
    // And its Python maps: the processes it found, the threads' states, the counters.
    s->rodata->cfg_python = options.unwind.valid() && options.unwind.python();
    if (s->rodata->cfg_python) {
        if (bpf_map__reuse_fd(s->maps.hp_py_procs, options.unwind.py_procs) != 0 ||
            bpf_map__reuse_fd(s->maps.hp_py_threads, options.unwind.py_threads) != 0 ||
            bpf_map__reuse_fd(s->maps.hp_py_stats, options.unwind.py_stats) != 0)
            return errno_error("syscalls: share the profile collector's Python maps");
    }
    if (Status st = c->skel_.load(); !st)
        return st.error();

    if (c->per_cgroup_)
        if (Status st = c->set_cgroups(options.cgroup_ids); !st)
            return st.error();

    // The ring consumer exists before the first outlier can be written.
    ring_buffer* rb = ring_buffer__new(bpf_map__fd(s->maps.hp_sys_events),
                                       &SyscallCollector::on_record, c.get(), nullptr);
    if (rb == nullptr)
        return errno_error("syscalls: create ring buffer consumer");
    c->ring_.reset(rb);

    // Exit before enter: an enter without its exit program would only fill the start map.
    if (Status st = latency::attach_chosen(s->progs.hp_sysexit_btf, s->progs.hp_sysexit_raw,
                                           s->progs.hp_sysexit_tp, "raw_syscalls/sys_exit",
                                           options.mode, c->links_, c->attached_);
        !st)
        return st.error();
    // Then the switch hook, before any enter can fill a CPU slot it must empty.
    if (cpu_slot) {
        auto link = take_link(bpf_program__attach(s->progs.hp_sysswitch_btf),
                              "attach sched/sched_switch (tp_btf)");
        if (!link)
            return link.error();
        c->links_.push_back(std::move(link.value()));
        c->attached_.push_back("sched/sched_switch (tp_btf)");
    }
    if (Status st = latency::attach_chosen(s->progs.hp_sysenter_btf, s->progs.hp_sysenter_raw,
                                           s->progs.hp_sysenter_tp, "raw_syscalls/sys_enter",
                                           options.mode, c->links_, c->attached_);
        !st)
        return st.error();
    return c;
}

Status SyscallCollector::set_cgroups(const std::vector<uint64_t>& cgroup_ids) {
    if (!per_cgroup_)
        return Error{EINVAL, "syscalls: per-cgroup histograms were not enabled at start"};
    if (cgroup_ids.size() > HP_SYS_MAX_CGROUPS)
        return Error{EINVAL, "syscalls: at most " + std::to_string(HP_SYS_MAX_CGROUPS) +
                                 " cgroups can have their own histograms, " +
                                 std::to_string(cgroup_ids.size()) + " given"};
    syscalls_bpf* s = skel_.get();
    std::set<uint64_t> want(cgroup_ids.begin(), cgroup_ids.end());
    std::set<uint64_t> gone;
    for (uint64_t cg : cgroups_)
        if (!want.contains(cg))
            gone.insert(cg);
    for (uint64_t cg : gone)
        bpf_map__delete_elem(s->maps.hp_sys_cgroups, &cg, sizeof(cg), 0);
    if (!gone.empty()) {
        // Their histograms go too: collect the keys first, deleting while iterating
        // would restart the walk.
        std::vector<hp_sys_cg_key> dead;
        hp_sys_cg_key key{}, next{};
        const void* prev = nullptr;
        while (bpf_map__get_next_key(s->maps.hp_sys_cg_hist, prev, &next, sizeof(next)) == 0) {
            if (gone.contains(next.cgroup_id))
                dead.push_back(next);
            key = next;
            prev = &key;
        }
        for (const hp_sys_cg_key& k : dead)
            bpf_map__delete_elem(s->maps.hp_sys_cg_hist, &k, sizeof(k), 0);
    }
    for (uint64_t cg : want) {
        uint8_t one = 1;
        if (bpf_map__update_elem(s->maps.hp_sys_cgroups, &cg, sizeof(cg), &one, sizeof(one),
                                 BPF_ANY) != 0)
            return errno_error("syscalls: add cgroup " + std::to_string(cg) + " to the allowlist");
    }
    cgroups_.assign(want.begin(), want.end());
    return {};
}

SyscallCollector::~SyscallCollector() {
    // Stop the consumer, detach, then free the object.
    ring_.reset();
    links_.clear();
    skel_.reset();
}

int SyscallCollector::on_record(void* ctx, void* data, size_t size) {
    auto* self = static_cast<SyscallCollector*>(ctx);
    ++self->records_;
    auto rec = decode_syscall_outlier({static_cast<const std::byte*>(data), size});
    if (!rec) {
        ++self->decode_errors_;
        return 0;
    }
    if (self->on_outlier_)
        self->on_outlier_(*rec);
    return 0;
}

int SyscallCollector::poll(int timeout_ms) {
    int n = ring_buffer__poll(ring_.get(), timeout_ms);
    if (n < 0)
        return n;
    // Wakeups are batched in the kernel below a fill level: drain the rest too.
    int m = consume();
    return m < 0 ? m : n + m;
}

int SyscallCollector::consume() {
    return ring_buffer__consume(ring_.get());
}

int SyscallCollector::ring_fd() const {
    return ring_buffer__epoll_fd(ring_.get());
}

SyscallSnapshot SyscallCollector::snapshot() const {
    SyscallSnapshot out;
    out.per_cgroup = per_cgroup_;
    const syscalls_bpf* s = skel_.get();
    const size_t ncpu = latency::possible_cpus();
    std::vector<hp_sys_hist> hists(ncpu);

    for (uint32_t nr = 0; nr < HP_SYS_MAX_NR; ++nr) {
        if (bpf_map__lookup_elem(s->maps.hp_sys_hist, &nr, sizeof(nr), hists.data(),
                                 hists.size() * sizeof(hp_sys_hist), 0) != 0)
            continue;
        LatencyHistogram h = sum_hists(hists);
        if (h.count() == 0)
            continue;
        if (native_schema_ >= 0)
            h.native = latency::read_native(s->maps.hp_native, nr, native_schema_);
        out.syscalls.push_back({nr, syscall_label(nr), 0, std::move(h), {}});
    }

    std::vector<uint64_t> counts(ncpu);
    hp_sys_err_key key{}, next{};
    const void* prev = nullptr;
    while (bpf_map__get_next_key(s->maps.hp_sys_errors, prev, &next, sizeof(next)) == 0) {
        key = next;
        prev = &key;
        if (bpf_map__lookup_elem(s->maps.hp_sys_errors, &key, sizeof(key), counts.data(),
                                 counts.size() * sizeof(uint64_t), 0) != 0)
            continue;
        uint64_t total = 0;
        for (uint64_t v : counts)
            total += v;
        auto it = std::find_if(out.syscalls.begin(), out.syscalls.end(),
                               [&](const SyscallStats& st) { return st.nr == key.nr; });
        if (it == out.syscalls.end()) // its histogram was read before the error was counted
            continue;
        it->errors[static_cast<int>(key.err)] += total;
    }

    hp_sys_cg_key ckey{}, cnext{};
    prev = nullptr;
    while (bpf_map__get_next_key(s->maps.hp_sys_cg_hist, prev, &cnext, sizeof(cnext)) == 0) {
        ckey = cnext;
        prev = &ckey;
        if (bpf_map__lookup_elem(s->maps.hp_sys_cg_hist, &ckey, sizeof(ckey), hists.data(),
                                 hists.size() * sizeof(hp_sys_hist), 0) != 0)
            continue;
        out.by_cgroup.push_back(
            {ckey.nr, syscall_label(ckey.nr), ckey.cgroup_id, sum_hists(hists), {}});
    }
    std::sort(out.by_cgroup.begin(), out.by_cgroup.end(),
              [](const SyscallStats& a, const SyscallStats& b) {
                  return std::tie(a.cgroup_id, a.nr) < std::tie(b.cgroup_id, b.nr);
              });

    out.kernel_stats.assign(HP_SYS_STAT_MAX, 0);
    latency::sum_percpu_counters(s->maps.hp_sys_stats, out.kernel_stats);
    out.outlier_records = records_.load(std::memory_order_relaxed);
    out.decode_errors = decode_errors_.load(std::memory_order_relaxed);
    return out;
}

std::string errno_label(int err) {
    switch (err) { // kernel-internal codes a syscall can return to the exit tracepoint
    case 512:
        return "ERESTARTSYS";
    case 513:
        return "ERESTARTNOINTR";
    case 514:
        return "ERESTARTNOHAND";
    case 516:
        return "ERESTART_RESTARTBLOCK";
    default:
        break;
    }
    if (const char* n = strerrorname_np(err))
        return n;
    return std::to_string(err);
}

std::vector<ProgramFd> SyscallCollector::programs() const {
    return loaded_programs(skel_->obj);
}

} // namespace hostprof
