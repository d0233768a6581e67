#include "kernel-compat/planner.h"

#include <algorithm>

namespace hostprof::compat {

std::string_view to_string(AttachMode mode) {
    switch (mode) {
    case AttachMode::None:
        return "none";
    case AttachMode::PerfEvent:
        return "perf_event";
    case AttachMode::TpBtf:
        return "tp_btf";
    case AttachMode::RawTp:
        return "raw_tp";
    case AttachMode::Tracepoint:
        return "tracepoint";
    }
    return "?";
}

std::optional<AttachMode> attach_mode_from_string(std::string_view s) {
    for (AttachMode m : {AttachMode::TpBtf, AttachMode::RawTp, AttachMode::Tracepoint})
        if (to_string(m) == s)
            return m;
    return std::nullopt;
}

std::string_view to_string(SamplingClock c) {
    switch (c) {
    case SamplingClock::Auto:
        return "auto";
    case SamplingClock::Tick:
        return "tick";
    case SamplingClock::CpuClock:
        return "cpu-clock";
    }
    return "?";
}

std::optional<SamplingClock> sampling_clock_from_string(std::string_view s) {
    for (SamplingClock c : {SamplingClock::Auto, SamplingClock::Tick, SamplingClock::CpuClock})
        if (to_string(c) == s)
            return c;
    return std::nullopt;
}

std::string_view to_string(Collector c) {
    switch (c) {
    case Collector::Cpu:
        return "cpu";
    case Collector::OffCpu:
        return "offcpu";
    case Collector::Syscalls:
        return "syscalls";
    case Collector::Tcp:
        return "tcp";
    case Collector::Block:
        return "block";
    case Collector::RunQueue:
        return "runqueue";
    }
    return "?";
}

std::optional<Collector> collector_from_string(std::string_view s) {
    for (Collector c : kAllCollectors)
        if (to_string(c) == s)
            return c;
    return std::nullopt;
}

const std::vector<HookSpec>& known_hooks() {
    using enum HookKind;
    using enum Collector;
    static const std::vector<HookSpec> hooks = {
        {"cpu-clock", PerfEvent, Cpu, true, true},
        {"sched/sched_process_exec", Tracepoint, Cpu, true, false},
        {"sched/sched_process_exit", Tracepoint, Cpu, true, false},
        {"sched/sched_switch", Tracepoint, OffCpu, true, true},
        {"raw_syscalls/sys_enter", Tracepoint, Syscalls, true, false},
        {"raw_syscalls/sys_exit", Tracepoint, Syscalls, true, true},
        {"sock/inet_sock_set_state", Tracepoint, Tcp, false, false},
        {"tcp/tcp_probe", Tracepoint, Tcp, false, false},
        {"tcp/tcp_retransmit_skb", Tracepoint, Tcp, false, false},
        {"tcp/tcp_send_reset", Tracepoint, Tcp, false, false},
        {"tcp/tcp_receive_reset", Tracepoint, Tcp, false, false},
        {"block/block_rq_insert", Tracepoint, Block, true, false},
        {"block/block_rq_issue", Tracepoint, Block, true, false},
        {"block/block_rq_complete", Tracepoint, Block, true, false},
        {"sched/sched_wakeup", Tracepoint, RunQueue, false, false},
        {"sched/sched_wakeup_new", Tracepoint, RunQueue, false, false},
        {"sched/sched_switch", Tracepoint, RunQueue, false, false},
    };
    return hooks;
}

const HookPlan* AttachPlan::find(std::string_view hook) const {
    for (const HookPlan& h : hooks)
        if (h.hook == hook)
            return &h;
    return nullptr;
}

bool AttachPlan::collector_ready(Collector c) const {
    bool any = false;
    for (const HookPlan& h : hooks) {
        if (h.collector != c)
            continue;
        if (h.mode == AttachMode::None)
            return false;
        any = true;
    }
    return any;
}

namespace {

std::string unavailable(std::string_view what, const Feature& f) {
    std::string s(what);
    s += " unavailable";
    if (!f.detail.empty())
        s += " (" + f.detail + ")";
    return s;
}

// Why mode m cannot serve a tracepoint hook, or "" when it can.
std::string tracepoint_mode_blocker(AttachMode m, const Features& f) {
    switch (m) {
    case AttachMode::TpBtf:
        if (!f.kernel_btf.available)
            return "tp_btf needs the kernel's own BTF (an external BTF file cannot stand in)";
        return f.tp_btf.available ? "" : unavailable("tp_btf", f.tp_btf);
    case AttachMode::RawTp:
        return f.raw_tp.available ? "" : unavailable("raw_tp", f.raw_tp);
    case AttachMode::Tracepoint:
        return f.tracepoint.available ? "" : unavailable("classic tracepoint", f.tracepoint);
    default:
        return "not a tracepoint attach mode";
    }
}

HookPlan plan_perf_event(const HookSpec& spec, const Features& f) {
    HookPlan p{std::string(spec.name), spec.collector, AttachMode::None, {}};
    if (!f.perf_event.available)
        p.reason = unavailable("perf_event program on cpu-clock", f.perf_event);
    else if (spec.needs_stacks && !f.get_stack.available)
        p.reason = unavailable("bpf_get_stack", f.get_stack);
    else {
        p.mode = AttachMode::PerfEvent;
        p.reason = "software cpu-clock event on every online CPU";
    }
    return p;
}

HookPlan plan_tracepoint(const HookSpec& spec, const Features& f, const PlanConfig& config,
                         bool& needs_mount) {
    HookPlan p{std::string(spec.name), spec.collector, AttachMode::None, {}};
    std::string_view event = spec.name.substr(spec.name.find('/') + 1);
    if (!f.btf_tracepoints.empty() && !f.btf_tracepoints.contains(std::string(event))) {
        p.reason = "tracepoint " + std::string(spec.name) + " does not exist in this kernel";
        return p;
    }
    std::vector<AttachMode> order = {AttachMode::TpBtf, AttachMode::RawTp, AttachMode::Tracepoint};
    if (config.forced_tracepoint_mode)
        order = {*config.forced_tracepoint_mode};
    std::string why_not;
    for (AttachMode m : order) {
        std::string blocker = tracepoint_mode_blocker(m, f);
        if (blocker.empty()) {
            p.mode = m;
            if (config.forced_tracepoint_mode)
                p.reason = "forced by --attach-mode";
            else if (m == AttachMode::TpBtf)
                p.reason = "BTF-typed arguments, lowest overhead";
            else
                p.reason = "fallback: " + why_not;
            if (m == AttachMode::Tracepoint && !f.tracefs_mounted) {
                needs_mount = true;
                p.reason += (p.reason.empty() ? "" : "; ") + std::string("tracefs will be mounted");
            }
            return p;
        }
        why_not += (why_not.empty() ? "" : "; ") + blocker;
    }
    p.reason = why_not;
    return p;
}

// Why the tick cannot be the sampling clock here, or "" when it can.
std::string tick_blocker(const Features& f, const PlanConfig& config) {
    if (!f.tick.available)
        return unavailable("tick sampler", f.tick);
    if (f.tick_hz <= 0)
        return "tick rate unknown";
    if (config.frequency_hz > f.tick_hz)
        return "frequency " + std::to_string(config.frequency_hz) + " Hz is above the tick rate (" +
               std::to_string(f.tick_hz) + " Hz)";
    if (!f.get_stack.available)
        return unavailable("bpf_get_stack", f.get_stack);
    return "";
}

// On-CPU sampling: the tick's hrtimer tracepoint where the tick can serve (no timer
// interrupt of our own per sample), else the cpu-clock perf event. A forced clock that
// cannot work here is refused with the reason, never swapped silently.
HookPlan plan_on_cpu(const HookSpec& spec, const Features& f, const PlanConfig& config,
                     bool& needs_mount) {
    std::string why_not_tick;
    if (config.sampling_clock != SamplingClock::CpuClock) {
        why_not_tick = tick_blocker(f, config);
        if (why_not_tick.empty()) {
            HookSpec tick{kTickHook, HookKind::Tracepoint, spec.collector, spec.needs_ringbuf,
                          spec.needs_stacks};
            bool mount = false;
            HookPlan p = plan_tracepoint(tick, f, config, mount);
            if (p.mode != AttachMode::None) {
                needs_mount = needs_mount || mount;
                p.reason = "scheduler tick sampler, " + std::to_string(config.frequency_hz) +
                           " of " + std::to_string(f.tick_hz) + " ticks a second per busy CPU; " +
                           p.reason;
                return p;
            }
            why_not_tick = p.reason;
        }
        if (config.sampling_clock == SamplingClock::Tick)
            return {std::string(kTickHook), spec.collector, AttachMode::None,
                    "sampling_clock tick: " + why_not_tick};
    }
    HookPlan p = plan_perf_event(spec, f);
    if (!why_not_tick.empty() && p.mode != AttachMode::None)
        p.reason += " (tick sampler not used: " + why_not_tick + ")";
    return p;
}

HookPlan plan_hook(const HookSpec& spec, const Features& f, const PlanConfig& config,
                   bool& needs_mount) {
    if (spec.needs_ringbuf && !f.ringbuf.available) {
        // Documented choice (docs/kernel-support.md): no perf-buffer fallback. Streaming
        // collectors refuse; map-aggregating collectors keep working.
        return {std::string(spec.name), spec.collector, AttachMode::None,
                unavailable("BPF ring buffer", f.ringbuf) +
                    "; hostprof has no perf-buffer fallback (needs Linux >= 5.8)"};
    }
    if (spec.kind == HookKind::PerfEvent)
        return plan_on_cpu(spec, f, config, needs_mount);
    return plan_tracepoint(spec, f, config, needs_mount);
}

} // namespace

AttachPlan plan_attach(const Features& f, const PlanConfig& config) {
    AttachPlan plan;
    if (f.kernel_btf.available) {
        plan.co_re_possible = true;
        plan.btf_source = "kernel";
    } else if (f.external_btf.available) {
        plan.co_re_possible = true;
        plan.btf_source = f.external_btf_path;
    } else {
        plan.refusal =
            "this kernel exposes no BTF (/sys/kernel/btf/vmlinux: " +
            (f.kernel_btf.detail.empty() ? std::string("missing") : f.kernel_btf.detail) +
            ") so CO-RE programs cannot be relocated; pass --btf FILE with this "
            "kernel's BTF (e.g. from BTFHub), or use a kernel built with "
            "CONFIG_DEBUG_INFO_BTF=y";
        if (!f.external_btf_path.empty())
            plan.refusal += "; the given --btf " + f.external_btf_path +
                            " did not parse: " + f.external_btf.detail;
    }

    for (const HookSpec& spec : known_hooks()) {
        if (std::find(config.collectors.begin(), config.collectors.end(), spec.collector) ==
            config.collectors.end())
            continue;
        if (!plan.co_re_possible) {
            plan.hooks.push_back({std::string(spec.name), spec.collector, AttachMode::None,
                                  "no BTF: CO-RE refused (see refusal)"});
            continue;
        }
        plan.hooks.push_back(plan_hook(spec, f, config, plan.needs_tracefs_mount));
        HookPlan& h = plan.hooks.back();
        // Block insert/issue claim in-flight slots with compare-and-swap; without it
        // (before 5.12) the collector loads variants that keep requests in a hash map.
        if (spec.collector == Collector::Block && spec.name != "block/block_rq_complete" &&
            h.mode != AttachMode::None && !f.atomics.available)
            h.reason += "; requests in flight kept in the hash map alone (" +
                        unavailable("BPF compare-and-exchange", f.atomics) + ")";
        if (plan.hooks.back().hook == kTickHook && plan.hooks.back().mode != AttachMode::None) {
            plan.tick_handler = f.tick_handler;
            plan.irq_entry = f.irq_entry;
            plan.irq_entry_end = f.irq_entry_end;
            plan.irq_regs_from_rq = f.irq_regs_from_rq;
            plan.tick_hz = f.tick_hz;
        }
    }
    return plan;
}

} // namespace hostprof::compat
