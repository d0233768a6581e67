// Table-driven tests of the pure attach planner over kernels we do not have.
#include <gtest/gtest.h>

#include "kernel-compat/planner.h"

using namespace hostprof::compat;

namespace {

Feature on() {
    return {true, "test"};
}
Feature off(const char* why = "test: missing") {
    return {false, why};
}

// Every tracepoint the planner knows about, as a kernel's BTF would list them.
std::set<std::string> all_tracepoints() {
    std::set<std::string> s;
    for (const HookSpec& h : known_hooks()) {
        std::string name(h.name);
        if (auto slash = name.find('/'); slash != std::string::npos)
            s.insert(name.substr(slash + 1));
    }
    return s;
}

// The development VM: kernel 6.18, BTF, no kprobes, no fentry, tracefs not mounted.
Features this_machine() {
    Features f;
    f.kernel_btf = on();
    f.ringbuf = on();
    f.get_stack = on();
    f.perf_event = on();
    f.tp_btf = on();
    f.raw_tp = on();
    f.tracepoint = on();
    f.tracefs_mounted = false;
    f.fentry = off("load fentry/vfs_read: Operation not permitted");
    f.kprobe = off("no kprobe PMU");
    f.uprobe = on();
    f.atomics = on();
    f.btf_tracepoints = all_tracepoints();
    return f;
}

// A 5.15-like distribution kernel: everything works, tracefs mounted.
Features kernel_5_15() {
    Features f = this_machine();
    f.fentry = on();
    f.kprobe = on();
    f.tracefs_mounted = true;
    return f;
}

// A 4.x-like kernel without BTF (and hence without tp_btf).
Features no_btf() {
    Features f = kernel_5_15();
    f.kernel_btf = off("/sys/kernel/btf/vmlinux: No such file or directory");
    f.tp_btf = off("needs kernel BTF");
    f.fentry = off("needs kernel BTF");
    f.btf_tracepoints.clear();
    return f;
}

// Like 5.4: BTF but no BPF ring buffer (added in 5.8).
Features no_ringbuf() {
    Features f = kernel_5_15();
    f.ringbuf = off("map type rejected by the kernel");
    return f;
}

PlanConfig all_collectors() {
    return PlanConfig{};
}

struct Expect {
    std::string hook;
    Collector collector;
    AttachMode mode;
};

struct Case {
    std::string name;
    Features features;
    PlanConfig config;
    bool refused;
    bool needs_mount;
    std::vector<Expect> expect;
};

std::vector<Case> cases() {
    PlanConfig forced_tp;
    forced_tp.forced_tracepoint_mode = AttachMode::Tracepoint;

    Features ext = no_btf();
    ext.external_btf_path = "/var/lib/btf/5.4.bpf";
    ext.external_btf = on();

    Features bad_ext = no_btf();
    bad_ext.external_btf_path = "/nope.btf";
    bad_ext.external_btf = off("does not parse as BTF");

    Features no_raw = this_machine();
    no_raw.tp_btf = off();
    no_raw.raw_tp = off();

    Features nothing_tp = no_raw;
    nothing_tp.tracepoint = off("tracefs not mountable");

    Features missing_tp = kernel_5_15();
    missing_tp.btf_tracepoints.erase("tcp_probe");

    using enum AttachMode;
    using enum Collector;
    return {
        {"this machine (no kprobe, no fentry)",
         this_machine(),
         all_collectors(),
         false,
         false,
         {{"cpu-clock", Cpu, PerfEvent},
          {"sched/sched_switch", OffCpu, TpBtf},
          {"raw_syscalls/sys_enter", Syscalls, TpBtf},
          {"block/block_rq_complete", Block, TpBtf},
          {"tcp/tcp_probe", Tcp, TpBtf}}},
        {"5.15-like (everything)",
         kernel_5_15(),
         all_collectors(),
         false,
         false,
         {{"cpu-clock", Cpu, PerfEvent}, {"sched/sched_wakeup", RunQueue, TpBtf}}},
        {"no BTF: CO-RE refused",
         no_btf(),
         all_collectors(),
         true,
         false,
         {{"cpu-clock", Cpu, None}, {"sched/sched_switch", OffCpu, None}}},
        {"no BTF, external BTF given: raw_tp",
         ext,
         all_collectors(),
         false,
         false,
         {{"cpu-clock", Cpu, PerfEvent},
          {"sched/sched_switch", OffCpu, RawTp},
          {"raw_syscalls/sys_exit", Syscalls, RawTp}}},
        {"no BTF, external BTF unparsable: refused",
         bad_ext,
         all_collectors(),
         true,
         false,
         {{"cpu-clock", Cpu, None}}},
        {"no ring buffer: streaming refused, histograms kept",
         no_ringbuf(),
         all_collectors(),
         false,
         false,
         {{"cpu-clock", Cpu, None},
          {"sched/sched_switch", OffCpu, None},
          {"raw_syscalls/sys_enter", Syscalls, None},
          {"block/block_rq_complete", Block, None},
          {"tcp/tcp_probe", Tcp, TpBtf},
          {"sched/sched_switch", RunQueue, TpBtf}}},
        {"no tp_btf/raw_tp: classic tracepoint, mount tracefs",
         no_raw,
         all_collectors(),
         false,
         true,
         {{"sched/sched_switch", OffCpu, Tracepoint}, {"block/block_rq_issue", Block, Tracepoint}}},
        {"no tracepoint mode at all",
         nothing_tp,
         all_collectors(),
         false,
         false,
         {{"cpu-clock", Cpu, PerfEvent}, {"sched/sched_switch", OffCpu, None}}},
        {"forced classic tracepoint",
         this_machine(),
         forced_tp,
         false,
         true,
         {{"sched/sched_switch", OffCpu, Tracepoint}, {"cpu-clock", Cpu, PerfEvent}}},
        {"a tracepoint missing from the kernel",
         missing_tp,
         all_collectors(),
         false,
         false,
         {{"tcp/tcp_probe", Tcp, None}, {"tcp/tcp_retransmit_skb", Tcp, TpBtf}}},
    };
}

class PlannerTable : public ::testing::TestWithParam<Case> {};

TEST_P(PlannerTable, ChoosesModes) {
    const Case& c = GetParam();
    AttachPlan plan = plan_attach(c.features, c.config);
    EXPECT_EQ(!plan.refusal.empty(), c.refused) << plan.refusal;
    EXPECT_EQ(plan.needs_tracefs_mount, c.needs_mount);
    for (const Expect& e : c.expect) {
        const HookPlan* found = nullptr;
        for (const HookPlan& h : plan.hooks)
            if (h.hook == e.hook && h.collector == e.collector)
                found = &h;
        ASSERT_NE(found, nullptr) << e.hook;
        EXPECT_EQ(found->mode, e.mode) << e.hook << ": " << found->reason;
        EXPECT_FALSE(found->reason.empty()) << e.hook;
    }
}

INSTANTIATE_TEST_SUITE_P(Kernels, PlannerTable, ::testing::ValuesIn(cases()), [](const auto& info) {
    std::string n;
    for (char ch : info.param.name)
        n += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
    return n;
});

TEST(Planner, RefusalNamesTheWayOut) {
    AttachPlan plan = plan_attach(no_btf(), all_collectors());
    EXPECT_NE(plan.refusal.find("--btf"), std::string::npos) << plan.refusal;
    EXPECT_NE(plan.refusal.find("CONFIG_DEBUG_INFO_BTF"), std::string::npos);
}

TEST(Planner, NoRingbufReasonIsDocumentedChoice) {
    AttachPlan plan = plan_attach(no_ringbuf(), all_collectors());
    const HookPlan* cpu = plan.find("cpu-clock");
    ASSERT_NE(cpu, nullptr);
    EXPECT_NE(cpu->reason.find("no perf-buffer fallback"), std::string::npos) << cpu->reason;
    EXPECT_FALSE(plan.collector_ready(Collector::Cpu));
    // Syscalls and block stream their outliers: one object, one refusal.
    EXPECT_FALSE(plan.collector_ready(Collector::Syscalls));
    EXPECT_FALSE(plan.collector_ready(Collector::Block));
    // Map-only collectors keep working.
    EXPECT_TRUE(plan.collector_ready(Collector::Tcp));
    EXPECT_TRUE(plan.collector_ready(Collector::RunQueue));
}

TEST(Planner, NoRingbufRefusalNamesWhatIsMissing) {
    // A kernel before 5.8: every streaming hook is refused, and the reason names the
    // missing facility, the probe's finding and the kernel version that has it.
    AttachPlan plan = plan_attach(no_ringbuf(), all_collectors());
    for (const HookPlan& h : plan.hooks) {
        if (h.mode != AttachMode::None)
            continue;
        EXPECT_NE(h.reason.find("BPF ring buffer unavailable"), std::string::npos) << h.reason;
        EXPECT_NE(h.reason.find("map type rejected by the kernel"), std::string::npos) << h.reason;
        EXPECT_NE(h.reason.find("Linux >= 5.8"), std::string::npos) << h.reason;
    }
    const HookPlan* exec = plan.find("sched/sched_process_exec");
    ASSERT_NE(exec, nullptr);
    EXPECT_EQ(exec->mode, AttachMode::None);
}

// Debian 11's 5.10 (tests/vm): kprobes, fentry and BTF, no compare-and-swap (5.12), no
// tick sampler (its BTF has no per-CPU variables).
TEST(Planner, Kernel510BlockWithoutCompareAndSwapSaysWhy) {
    Features f = kernel_5_15();
    f.atomics = off("a BPF_CMPXCHG program does not load: Invalid argument (errno 22)");
    f.tick = off("runqueues and __irq_regs are not both in the kernel BTF's per-CPU section");
    AttachPlan plan = plan_attach(f, all_collectors());
    for (Collector c : kAllCollectors)
        EXPECT_TRUE(plan.collector_ready(c)) << to_string(c);
    for (const char* hook : {"block/block_rq_insert", "block/block_rq_issue"}) {
        const HookPlan* h = plan.find(hook);
        ASSERT_NE(h, nullptr);
        EXPECT_EQ(h->mode, AttachMode::TpBtf);
        EXPECT_NE(h->reason.find("hash map"), std::string::npos) << h->reason;
        EXPECT_NE(h->reason.find("BPF_CMPXCHG"), std::string::npos) << h->reason;
    }
    EXPECT_EQ(plan.find("block/block_rq_complete")->reason.find("hash map"), std::string::npos);
    const HookPlan* cpu = plan.find("cpu-clock");
    ASSERT_NE(cpu, nullptr) << "no tick: cpu-clock";
    EXPECT_EQ(cpu->mode, AttachMode::PerfEvent);
    EXPECT_NE(cpu->reason.find("per-CPU section"), std::string::npos) << cpu->reason;
    // kprobes and fentry are there, and still every tracepoint hook takes tp_btf.
    for (const HookPlan& h : plan.hooks) {
        if (h.hook != "cpu-clock") {
            EXPECT_EQ(h.mode, AttachMode::TpBtf) << h.hook;
        }
    }
}

TEST(Planner, OnlySelectedCollectorsArePlanned) {
    PlanConfig pc;
    pc.collectors = {Collector::Block};
    AttachPlan plan = plan_attach(this_machine(), pc);
    ASSERT_EQ(plan.hooks.size(), 3u);
    for (const HookPlan& h : plan.hooks)
        EXPECT_EQ(h.collector, Collector::Block);
    EXPECT_TRUE(plan.collector_ready(Collector::Block));
    EXPECT_FALSE(plan.collector_ready(Collector::Cpu)); // not planned at all
}

TEST(Planner, TpBtfNeedsKernelBtfNotExternal) {
    Features f = no_btf();
    f.external_btf_path = "x.btf";
    f.external_btf = on();
    f.tp_btf = on(); // even if the probe said so, tp_btf needs the kernel's own BTF
    PlanConfig pc;
    pc.forced_tracepoint_mode = AttachMode::TpBtf;
    AttachPlan plan = plan_attach(f, pc);
    const HookPlan* sw = plan.find("sched/sched_switch");
    ASSERT_NE(sw, nullptr);
    EXPECT_EQ(sw->mode, AttachMode::None);
    EXPECT_NE(sw->reason.find("kernel's own BTF"), std::string::npos) << sw->reason;
}

TEST(Planner, ModeNamesRoundTrip) {
    for (AttachMode m : {AttachMode::TpBtf, AttachMode::RawTp, AttachMode::Tracepoint})
        EXPECT_EQ(attach_mode_from_string(to_string(m)), m);
    EXPECT_FALSE(attach_mode_from_string("kprobe"));
    for (Collector c : kAllCollectors)
        EXPECT_EQ(collector_from_string(to_string(c)), c);
}

// The tick sampler (on-CPU samples from the scheduler tick): this machine, with what the
// probe finds here (HZ 250, tick_nohz_handler in kallsyms, __irq_regs in BTF).
Features with_tick(Features f) {
    f.tick = on();
    f.tick_handler = 0xffffffff814437d0ULL;
    f.irq_entry = 0xffffffff81000df0ULL;
    f.irq_entry_end = 0xffffffff81000e10ULL;
    f.irq_regs_from_rq = -3800;
    f.tick_hz = 250;
    f.btf_tracepoints.insert("hrtimer_expire_entry");
    return f;
}

PlanConfig cpu_at(int hz, SamplingClock clock = SamplingClock::Auto) {
    PlanConfig pc;
    pc.collectors = {Collector::Cpu};
    pc.frequency_hz = hz;
    pc.sampling_clock = clock;
    return pc;
}

// The Cpu collector's sampling hook: kTickHook or "cpu-clock".
const HookPlan& sampling_hook(const AttachPlan& plan) {
    for (const HookPlan& h : plan.hooks)
        if (h.hook == kTickHook || h.hook == "cpu-clock")
            return h;
    static const HookPlan none{};
    ADD_FAILURE() << "no sampling hook planned";
    return none;
}

TEST(PlannerSamplingClock, AutoTakesTheTickUpToItsRate) {
    for (int hz : {1, 19, 99, 250}) {
        AttachPlan plan = plan_attach(with_tick(this_machine()), cpu_at(hz));
        const HookPlan& h = sampling_hook(plan);
        EXPECT_EQ(h.hook, kTickHook) << hz << ": " << h.reason;
        EXPECT_EQ(h.mode, AttachMode::TpBtf) << h.reason;
        EXPECT_NE(h.reason.find(std::to_string(hz) + " of 250 ticks"), std::string::npos)
            << h.reason;
        EXPECT_EQ(plan.tick_hz, 250);
        EXPECT_EQ(plan.tick_handler, 0xffffffff814437d0ULL);
        EXPECT_TRUE(plan.collector_ready(Collector::Cpu));
    }
}

TEST(PlannerSamplingClock, AboveTheTickRateAutoUsesCpuClockAndSaysWhy) {
    AttachPlan plan = plan_attach(with_tick(this_machine()), cpu_at(251));
    const HookPlan& h = sampling_hook(plan);
    EXPECT_EQ(h.hook, "cpu-clock");
    EXPECT_EQ(h.mode, AttachMode::PerfEvent);
    EXPECT_NE(h.reason.find("above the tick rate (250 Hz)"), std::string::npos) << h.reason;
    EXPECT_EQ(plan.tick_hz, 0) << "no tick parameters when the tick is not used";
}

TEST(PlannerSamplingClock, ForcedTickThatCannotWorkIsRefusedNotSwapped) {
    AttachPlan plan = plan_attach(with_tick(this_machine()), cpu_at(999, SamplingClock::Tick));
    const HookPlan& h = sampling_hook(plan);
    EXPECT_EQ(h.hook, kTickHook);
    EXPECT_EQ(h.mode, AttachMode::None);
    EXPECT_NE(h.reason.find("sampling_clock tick"), std::string::npos) << h.reason;
    EXPECT_FALSE(plan.collector_ready(Collector::Cpu));

    Features nohz = with_tick(this_machine());
    nohz.tick = off("nohz_full CPUs (1-3) run busy without a tick");
    plan = plan_attach(nohz, cpu_at(19, SamplingClock::Tick));
    EXPECT_EQ(sampling_hook(plan).mode, AttachMode::None);
    EXPECT_NE(sampling_hook(plan).reason.find("nohz_full"), std::string::npos);
}

TEST(PlannerSamplingClock, ForcedCpuClockIgnoresTheTick) {
    AttachPlan plan = plan_attach(with_tick(this_machine()), cpu_at(19, SamplingClock::CpuClock));
    EXPECT_EQ(sampling_hook(plan).hook, "cpu-clock");
    EXPECT_EQ(sampling_hook(plan).mode, AttachMode::PerfEvent);
}

TEST(PlannerSamplingClock, WithoutTheTickAutoFallsBackWithTheReason) {
    // A kernel where the probe found no tick (here: hidden kallsyms addresses).
    Features f = this_machine();
    f.tick = off("tick_nohz_handler/tick_sched_timer not in /proc/kallsyms");
    AttachPlan plan = plan_attach(f, cpu_at(19));
    const HookPlan& h = sampling_hook(plan);
    EXPECT_EQ(h.hook, "cpu-clock");
    EXPECT_EQ(h.mode, AttachMode::PerfEvent);
    EXPECT_NE(h.reason.find("tick sampler not used"), std::string::npos) << h.reason;
    EXPECT_NE(h.reason.find("kallsyms"), std::string::npos) << h.reason;

    // The tracepoint missing from the kernel: cpu-clock too.
    Features gone = with_tick(this_machine());
    gone.btf_tracepoints.erase("hrtimer_expire_entry");
    EXPECT_EQ(sampling_hook(plan_attach(gone, cpu_at(19))).mode, AttachMode::PerfEvent);
}

TEST(PlannerSamplingClock, TickFollowsTheTracepointFallbacks) {
    Features f = with_tick(this_machine());
    f.tp_btf = off();
    AttachPlan plan = plan_attach(f, cpu_at(99));
    EXPECT_EQ(sampling_hook(plan).mode, AttachMode::RawTp);
    f.raw_tp = off();
    plan = plan_attach(f, cpu_at(99));
    EXPECT_EQ(sampling_hook(plan).mode, AttachMode::Tracepoint);
    EXPECT_TRUE(plan.needs_tracefs_mount);
    f.tracepoint = off();
    plan = plan_attach(f, cpu_at(99));
    EXPECT_EQ(sampling_hook(plan).hook, "cpu-clock") << "no tracepoint mode: cpu-clock";
    EXPECT_EQ(sampling_hook(plan).mode, AttachMode::PerfEvent);
}

TEST(PlannerSamplingClock, NamesRoundTrip) {
    for (SamplingClock c : {SamplingClock::Auto, SamplingClock::Tick, SamplingClock::CpuClock})
        EXPECT_EQ(sampling_clock_from_string(to_string(c)), c);
    EXPECT_FALSE(sampling_clock_from_string("hpet"));
}

} // namespace
