// The attach planner: a pure function from (Features, PlanConfig) to an AttachPlan that
// says, per hook, how it will be attached, or why it will not. No I/O here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernel-compat/features.h"

namespace hostprof::compat {

enum class AttachMode { None, PerfEvent, TpBtf, RawTp, Tracepoint };
std::string_view to_string(AttachMode mode);
std::optional<AttachMode> attach_mode_from_string(std::string_view s);

enum class Collector { Cpu, OffCpu, Syscalls, Tcp, Block, RunQueue };
std::string_view to_string(Collector c);
std::optional<Collector> collector_from_string(std::string_view s);
inline constexpr Collector kAllCollectors[] = {Collector::Cpu,      Collector::OffCpu,
                                               Collector::Syscalls, Collector::Tcp,
                                               Collector::Block,    Collector::RunQueue};

enum class HookKind { PerfEvent, Tracepoint };

// The on-CPU sampling clock: the scheduler tick the kernel takes anyway (a tracepoint on
// its hrtimer, no interrupt of our own), or a software cpu-clock perf event per CPU.
// Auto: the tick where it can serve the frequency, else cpu-clock.
enum class SamplingClock { Auto, Tick, CpuClock };
std::string_view to_string(SamplingClock c);
std::optional<SamplingClock> sampling_clock_from_string(std::string_view s);

// The hook the tick sampler attaches to, in place of "cpu-clock".
inline constexpr std::string_view kTickHook = "timer/hrtimer_expire_entry";

struct HookSpec {
    std::string_view name; // "sched/sched_switch", "cpu-clock"
    HookKind kind;
    Collector collector;
    bool needs_ringbuf; // the hook streams records (not only map aggregation)
    bool needs_stacks;  // the hook calls bpf_get_stack
};

// Every hook hostprof knows, in collector order.
const std::vector<HookSpec>& known_hooks();

struct PlanConfig {
    std::vector<Collector> collectors{std::begin(kAllCollectors), std::end(kAllCollectors)};
    // Auto by default; otherwise force one tracepoint mode (for tests and workarounds).
    std::optional<AttachMode> forced_tracepoint_mode;
    SamplingClock sampling_clock = SamplingClock::Auto;
    int frequency_hz = 19; // on-CPU samples a second per CPU: the tick serves up to HZ
};

struct HookPlan {
    std::string hook;
    Collector collector;
    AttachMode mode = AttachMode::None;
    std::string reason; // why this mode, or why none
};

struct AttachPlan {
    bool co_re_possible = false; // some BTF is there to relocate against
    std::string btf_source;      // "kernel" (vmlinux) or the external file path
    std::string refusal;         // non-empty: nothing can load, and this is why
    bool needs_tracefs_mount = false;
    std::vector<HookPlan> hooks;
    // Set when the on-CPU samples come from the tick (the Cpu hook is kTickHook).
    uint64_t tick_handler = 0;
    uint64_t irq_entry = 0, irq_entry_end = 0;
    int64_t irq_regs_from_rq = 0;
    int tick_hz = 0;

    const HookPlan* find(std::string_view hook) const;
    bool collector_ready(Collector c) const; // every hook of c has a mode
};

AttachPlan plan_attach(const Features& features, const PlanConfig& config);

} // namespace hostprof::compat
