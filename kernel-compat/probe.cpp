// Feature probing by trying: every BPF feature is established by loading (and where it
// matters attaching) a two-instruction program, never by reading a version number.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"
#include "kernel-compat/features.h"
#include "kernel-compat/tick.h"
#include "kernel-compat/tracefs.h"

namespace hostprof::compat {
namespace {

struct BtfDeleter {
    void operator()(btf* b) const { btf__free(b); }
};
using BtfPtr = std::unique_ptr<btf, BtfDeleter>;

// r0 = 0; exit
const bpf_insn kReturnZero[] = {
    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = 0},
    {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
};

std::string err_text(int err) {
    err = err < 0 ? -err : err;
    return std::string(std::strerror(err)) + " (errno " + std::to_string(err) + ")";
}

Feature yes(std::string detail) {
    return Feature{true, std::move(detail)};
}
Feature no(std::string detail) {
    return Feature{false, std::move(detail)};
}

UniqueFd load_prog(bpf_prog_type type, const bpf_prog_load_opts* opts = nullptr) {
    int fd = bpf_prog_load(type, "hp_probe", "GPL", kReturnZero, 2, opts);
    return UniqueFd(fd < 0 ? -1 : fd);
}

int perf_event_open(perf_event_attr* attr, pid_t pid, int cpu) {
    return static_cast<int>(
        ::syscall(__NR_perf_event_open, attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC));
}

// Attaches prog_fd to a perf event: the step that proves the hook really works.
Feature attach_to_perf_event(perf_event_attr& attr, pid_t pid, int cpu, int prog_fd,
                             const std::string& what) {
    UniqueFd pfd(perf_event_open(&attr, pid, cpu));
    if (!pfd)
        return no("perf_event_open for " + what + ": " + err_text(errno));
    if (::ioctl(pfd.get(), PERF_EVENT_IOC_SET_BPF, prog_fd) != 0)
        return no("attach to " + what + ": " + err_text(errno));
    return yes("loaded and attached to " + what);
}

// The dynamic PMU type of kprobe/uprobe, or -1 when the kernel has no such PMU.
int pmu_type(const char* name) {
    std::ifstream in(std::string("/sys/bus/event_source/devices/") + name + "/type");
    int type = -1;
    if (!(in >> type))
        return -1;
    return type;
}

Feature probe_btf_file(const std::string& path, BtfPtr* keep) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return no(path + ": " + err_text(errno));
    btf* b = btf__parse(path.c_str(), nullptr);
    if (b == nullptr)
        return no(path + ": does not parse as BTF: " + err_text(errno));
    std::string detail = path + ": " + std::to_string(btf__type_cnt(b)) + " types";
    if (keep)
        keep->reset(b);
    else
        btf__free(b);
    return yes(detail);
}

Feature probe_ringbuf() {
    int r = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr);
    if (r == 1) {
        // Creating one proves it beyond the type check.
        int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "hp_probe_rb", 0, 0, 4096, nullptr);
        if (fd < 0)
            return no("create ring buffer map: " + err_text(errno));
        ::close(fd);
        return yes("created a BPF_MAP_TYPE_RINGBUF map");
    }
    return no(r == 0 ? "map type rejected by the kernel" : "probe failed: " + err_text(r));
}

Feature probe_get_stack() {
    int r = libbpf_probe_bpf_helper(BPF_PROG_TYPE_PERF_EVENT, BPF_FUNC_get_stack, nullptr);
    if (r == 1)
        return yes("helper accepted in perf_event programs");
    return no(r == 0 ? "helper rejected in perf_event programs" : "probe failed: " + err_text(r));
}

// What the user-stack unwinder (bpf/lib/hp_unwind.h) needs beyond the rest: an LPM trie
// (the {pid, address} -> table lookup), an mmap'able array (the rows, written by
// userspace in place) and bpf_probe_read_user (5.5). Its walk also needs BPF global
// functions (5.6), which every kernel with BTF tracing has.
Feature probe_unwind() {
    if (libbpf_probe_bpf_helper(BPF_PROG_TYPE_PERF_EVENT, BPF_FUNC_probe_read_user, nullptr) != 1)
        return no("bpf_probe_read_user is not available (Linux 5.5+): frame pointers only");
    LIBBPF_OPTS(bpf_map_create_opts, lpm, .map_flags = BPF_F_NO_PREALLOC);
    int fd = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "hp_probe_lpm", 16, 16, 1, &lpm);
    if (fd < 0)
        return no("create an LPM trie map: " + err_text(errno) + ": frame pointers only");
    ::close(fd);
    LIBBPF_OPTS(bpf_map_create_opts, mm, .map_flags = BPF_F_MMAPABLE);
    fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "hp_probe_mmap", 4, 8, 1, &mm);
    if (fd < 0)
        return no("create an mmap'able array: " + err_text(errno) + ": frame pointers only");
    ::close(fd);
    return yes("unwind tables: LPM trie, mmap'able array and bpf_probe_read_user work");
}

Feature probe_perf_event() {
    UniqueFd prog = load_prog(BPF_PROG_TYPE_PERF_EVENT);
    if (!prog)
        return no("load perf_event program: " + err_text(errno));
    perf_event_attr attr{};
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.freq = 1;
    attr.sample_freq = 19;
    attr.disabled = 1;
    return attach_to_perf_event(attr, -1, 0, prog.get(), "cpu-clock on CPU 0");
}

Feature probe_tp_btf(const btf* vmlinux) {
    if (vmlinux == nullptr)
        return no("needs kernel BTF");
    int id = btf__find_by_name_kind(vmlinux, "btf_trace_sched_switch", BTF_KIND_TYPEDEF);
    if (id < 0)
        return no("btf_trace_sched_switch not in kernel BTF");
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_RAW_TP,
                .attach_btf_id = static_cast<__u32>(id));
    UniqueFd prog = load_prog(BPF_PROG_TYPE_TRACING, &opts);
    if (!prog)
        return no("load tp_btf program: " + err_text(errno));
    UniqueFd link(bpf_raw_tracepoint_open(nullptr, prog.get()));
    if (!link)
        return no("attach tp_btf/sched_switch: " + err_text(errno));
    return yes("loaded and attached tp_btf/sched_switch");
}

Feature probe_raw_tp() {
    UniqueFd prog = load_prog(BPF_PROG_TYPE_RAW_TRACEPOINT);
    if (!prog)
        return no("load raw_tp program: " + err_text(errno));
    UniqueFd link(bpf_raw_tracepoint_open("sched_switch", prog.get()));
    if (!link)
        return no("attach raw_tp/sched_switch: " + err_text(errno));
    return yes("loaded and attached raw_tp/sched_switch");
}

Feature probe_tracepoint_in(const std::string& tracefs) {
    std::ifstream in(tracefs + "/events/sched/sched_switch/id");
    long long id = -1;
    if (!(in >> id))
        return no("cannot read " + tracefs + "/events/sched/sched_switch/id");
    UniqueFd prog = load_prog(BPF_PROG_TYPE_TRACEPOINT);
    if (!prog)
        return no("load tracepoint program: " + err_text(errno));
    perf_event_attr attr{};
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.config = static_cast<__u64>(id);
    attr.sample_period = 1;
    attr.disabled = 1;
    return attach_to_perf_event(attr, -1, 0, prog.get(), "tracepoint sched/sched_switch");
}

Feature probe_tracepoint(const std::string& tracefs_path, bool& mounted) {
    mounted = tracefs_is_mounted(tracefs_path);
    if (mounted) {
        Feature f = probe_tracepoint_in(tracefs_path);
        f.detail += " (tracefs mounted at " + tracefs_path + ")";
        return f;
    }
    // Not mounted: find out whether it can be, on a private temporary mount point, so
    // probing changes nothing on the host.
    char dir[] = "/tmp/hostprof-tracefs-XXXXXX";
    if (::mkdtemp(dir) == nullptr)
        return no("tracefs not mounted, and mkdtemp failed: " + err_text(errno));
    Feature f;
    if (::mount("nodev", dir, "tracefs", 0, nullptr) != 0) {
        f = no("tracefs not mounted at " + tracefs_path + " and not mountable: " + err_text(errno));
    } else {
        f = probe_tracepoint_in(dir);
        if (f.available)
            f.detail = "tracefs not mounted at " + tracefs_path +
                       " but mountable; a test attach through it worked";
        ::umount2(dir, MNT_DETACH);
    }
    ::rmdir(dir);
    return f;
}

Feature probe_fentry(const btf* vmlinux) {
    if (vmlinux == nullptr)
        return no("needs kernel BTF");
    int id = -1;
    const char* target = nullptr;
    for (const char* fn : {"vfs_read", "do_nanosleep", "schedule"}) {
        id = btf__find_by_name_kind(vmlinux, fn, BTF_KIND_FUNC);
        if (id > 0) {
            target = fn;
            break;
        }
    }
    if (id <= 0)
        return no("no probe target function in kernel BTF");
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY,
                .attach_btf_id = static_cast<__u32>(id));
    UniqueFd prog = load_prog(BPF_PROG_TYPE_TRACING, &opts);
    if (!prog)
        return no(std::string("load fentry/") + target + ": " + err_text(errno));
    UniqueFd link(bpf_raw_tracepoint_open(nullptr, prog.get()));
    if (!link)
        return no(std::string("attach fentry/") + target + ": " + err_text(errno));
    return yes(std::string("loaded and attached fentry/") + target);
}

Feature probe_kprobe() {
    int type = pmu_type("kprobe");
    if (type < 0)
        return no("no kprobe PMU in /sys/bus/event_source/devices (CONFIG_KPROBES off?)");
    UniqueFd prog = load_prog(BPF_PROG_TYPE_KPROBE);
    if (!prog)
        return no("load kprobe program: " + err_text(errno));
    static const char kTarget[] = "vfs_read";
    perf_event_attr attr{};
    attr.size = sizeof(attr);
    attr.type = static_cast<__u32>(type);
    attr.config1 = reinterpret_cast<__u64>(kTarget);
    attr.config2 = 0;
    return attach_to_perf_event(attr, -1, 0, prog.get(), "kprobe vfs_read");
}

} // namespace

Feature probe_bpf_atomics() {
    auto op = [](uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
        return bpf_insn{.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
    };
    // *(u64 *)(r10 - 8) = 0; r0 = 0; r1 = 1; r0 = cmpxchg(r10 - 8, r0, r1); r0 = 0; exit
    const bpf_insn insns[] = {
        op(BPF_ST | BPF_MEM | BPF_DW, BPF_REG_10, 0, -8, 0),
        op(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0),
        op(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_1, 0, 0, 1),
        op(BPF_STX | BPF_ATOMIC | BPF_DW, BPF_REG_10, BPF_REG_1, -8, BPF_CMPXCHG),
        op(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0),
        op(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    };
    int fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "hp_probe_atomic", "GPL", insns,
                           sizeof(insns) / sizeof(insns[0]), nullptr);
    if (fd < 0)
        return no("a BPF_CMPXCHG program does not load: " + err_text(errno) +
                  " (atomics with fetch are Linux 5.12+)");
    ::close(fd);
    return yes("a BPF_CMPXCHG program loads");
}

namespace {

// One helper in one program type: libbpf loads a program calling it.
Feature probe_helper(bpf_prog_type type, bpf_func_id helper, const std::string& name,
                     const std::string& where, const char* needs) {
    int r = libbpf_probe_bpf_helper(type, helper, nullptr);
    if (r == 1)
        return yes(name + " accepted in " + where + " programs");
    if (r == 0)
        return no(name + " rejected in " + where + " programs (needs " + needs + ")");
    return no(name + " probe failed: " + err_text(r));
}

} // namespace

Feature probe_task_btf() {
    return probe_helper(BPF_PROG_TYPE_PERF_EVENT, BPF_FUNC_get_current_task_btf,
                        "bpf_get_current_task_btf", "perf_event", "Linux 5.11+");
}

Feature probe_task_stack() {
    return probe_helper(BPF_PROG_TYPE_PERF_EVENT, BPF_FUNC_get_task_stack, "bpf_get_task_stack",
                        "perf_event", "Linux 5.9+");
}

Feature probe_task_storage(bool raw_tp) {
    int r = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_TASK_STORAGE, nullptr);
    if (r != 1)
        return no(r == 0 ? "map type BPF_MAP_TYPE_TASK_STORAGE rejected (needs Linux 5.11+)"
                         : "task storage map probe failed: " + err_text(r));
    const bpf_prog_type type = raw_tp ? BPF_PROG_TYPE_RAW_TRACEPOINT : BPF_PROG_TYPE_TRACEPOINT;
    const std::string where = raw_tp ? "raw_tp" : "tracepoint";
    Feature f =
        probe_helper(type, BPF_FUNC_task_storage_get, "bpf_task_storage_get", where, "Linux 5.11+");
    if (!f.available)
        return f;
    f = probe_helper(type, BPF_FUNC_get_current_task_btf, "bpf_get_current_task_btf", where,
                     "Linux 5.11+");
    if (!f.available)
        return f;
    return yes("task storage map; bpf_task_storage_get and bpf_get_current_task_btf accepted in " +
               where + " programs");
}

namespace {

// A function of ours for the uprobe test attach: never called, only located.
extern "C" __attribute__((noinline, used)) int hostprof_uprobe_probe_target(int x) {
    return x + 1;
}

// File offset of a code address in /proc/self/exe, from /proc/self/maps.
long long file_offset_of(const void* addr, std::string& path) {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    auto a = reinterpret_cast<unsigned long long>(addr);
    while (std::getline(maps, line)) {
        unsigned long long start = 0, end = 0, off = 0;
        char perms[8] = {};
        int consumed = 0;
        if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %*s %*s %n", &start, &end, perms, &off,
                        &consumed) < 4)
            continue;
        if (a >= start && a < end && perms[2] == 'x') {
            path = line.substr(static_cast<size_t>(consumed));
            return static_cast<long long>(a - start + off);
        }
    }
    return -1;
}

Feature probe_uprobe() {
    int type = pmu_type("uprobe");
    if (type < 0)
        return no("no uprobe PMU in /sys/bus/event_source/devices (CONFIG_UPROBES off?)");
    std::string path;
    long long off =
        file_offset_of(reinterpret_cast<const void*>(&hostprof_uprobe_probe_target), path);
    if (off < 0 || path.empty())
        return no("cannot locate a probe target in /proc/self/maps");
    UniqueFd prog = load_prog(BPF_PROG_TYPE_KPROBE);
    if (!prog)
        return no("load uprobe program: " + err_text(errno));
    perf_event_attr attr{};
    attr.size = sizeof(attr);
    attr.type = static_cast<__u32>(type);
    attr.config1 = reinterpret_cast<__u64>(path.c_str());
    attr.config2 = static_cast<__u64>(off);
    return attach_to_perf_event(attr, ::getpid(), -1, prog.get(), "uprobe on our own binary");
}

void collect_btf_tracepoints(const btf* b, std::set<std::string>& out) {
    static const std::string kPrefix = "btf_trace_";
    for (__u32 id = 1; id < btf__type_cnt(b); ++id) {
        const btf_type* t = btf__type_by_id(b, id);
        if (t == nullptr || btf_kind(t) != BTF_KIND_TYPEDEF)
            continue;
        const char* name = btf__name_by_offset(b, t->name_off);
        if (name != nullptr && std::strncmp(name, kPrefix.c_str(), kPrefix.size()) == 0)
            out.insert(name + kPrefix.size());
    }
}

// The tick sampler's needs (tick.h); the tracepoint itself is planned like any other.
Feature probe_tick(const ProbeOptions& o, const btf* vmlinux, Features& f) {
    timespec res{};
    if (::clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0 && res.tv_sec == 0)
        f.tick_hz = tick_hz_from_resolution(res.tv_nsec);
    std::ifstream nohz(o.nohz_full_path);
    std::stringstream nohz_text;
    nohz_text << nohz.rdbuf();
    if (lists_nohz_full_cpus(nohz_text.str()))
        return no("nohz_full CPUs (" + nohz_text.str().substr(0, 64) + ") run busy without a tick");
    if (f.tick_hz == 0)
        return no("tick rate unknown (CLOCK_MONOTONIC_COARSE resolution " +
                  std::to_string(res.tv_nsec) + " ns)");
    f.irq_regs_from_rq = irq_regs_from_runqueue(vmlinux);
    if (f.irq_regs_from_rq == 0)
        return no("runqueues and __irq_regs (the interrupted registers) are not both in the "
                  "kernel BTF's per-CPU section");
    std::ifstream kallsyms(o.kallsyms_path);
    if (!kallsyms)
        return no("cannot read " + o.kallsyms_path + ": " + err_text(errno));
    TickSymbols sym = find_tick_symbols(kallsyms);
    if (!sym.complete())
        return no(std::string(sym.handler == 0 ? "tick_nohz_handler/tick_sched_timer"
                                               : "asm_sysvec_apic_timer_interrupt") +
                  " not in " + o.kallsyms_path + " (or its addresses are hidden: kptr_restrict)");
    f.tick_handler = sym.handler;
    f.irq_entry = sym.irq_entry;
    f.irq_entry_end = sym.irq_entry_end;
    char text[160];
    std::snprintf(text, sizeof(text), "tick handler at 0x%llx, HZ %d",
                  static_cast<unsigned long long>(sym.handler), f.tick_hz);
    return yes(text);
}

int silent_print(enum libbpf_print_level, const char*, va_list) {
    return 0;
}

} // namespace

Features probe_features(const ProbeOptions& options) {
    Features f;
    utsname u{};
    if (::uname(&u) == 0)
        f.kernel_release = u.release;

    // Probes fail on purpose: keep libbpf quiet while they run.
    libbpf_print_fn_t old_print = libbpf_set_print(silent_print);

    BtfPtr vmlinux;
    f.kernel_btf = probe_btf_file(options.vmlinux_btf_path, &vmlinux);
    f.external_btf_path = options.external_btf_path;
    if (!options.external_btf_path.empty()) {
        BtfPtr external;
        f.external_btf = probe_btf_file(options.external_btf_path, &external);
        if (!vmlinux && external)
            collect_btf_tracepoints(external.get(), f.btf_tracepoints);
    }
    if (vmlinux)
        collect_btf_tracepoints(vmlinux.get(), f.btf_tracepoints);

    f.ringbuf = probe_ringbuf();
    f.get_stack = probe_get_stack();
    f.unwind = probe_unwind();
    f.perf_event = probe_perf_event();
    f.tp_btf = probe_tp_btf(vmlinux.get());
    f.raw_tp = probe_raw_tp();
    f.tracepoint = probe_tracepoint(options.tracefs_path, f.tracefs_mounted);
    f.fentry = probe_fentry(vmlinux.get());
    f.kprobe = probe_kprobe();
    f.uprobe = probe_uprobe();
    f.atomics = probe_bpf_atomics();
    f.task_btf = probe_task_btf();
    f.task_stack = probe_task_stack();
    f.task_storage = probe_task_storage(true);
    f.tick = probe_tick(options, vmlinux.get(), f);

    libbpf_set_print(old_print);
    return f;
}

} // namespace hostprof::compat
