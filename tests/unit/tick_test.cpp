// The tick sampler's parsers (kernel-compat/tick.h) over text the kernel publishes.
#include <gtest/gtest.h>

#include <bpf/btf.h>

#include <memory>
#include <sstream>

#include "kernel-compat/tick.h"

using namespace hostprof::compat;

namespace {

TEST(TickSymbols, FindsTheCallbackAndTheInterruptEntry) {
    // Lines as /proc/kallsyms prints them on this VM (6.18: the low-resolution handler
    // has a name of its own), plus a module's symbol of the same name, which must not win.
    std::istringstream in("ffffffff81000df0 T asm_sysvec_apic_timer_interrupt\n"
                          "ffffffff81000e10 T asm_sysvec_x86_platform_ipi\n"
                          "ffffffff814437d0 t tick_nohz_handler\n"
                          "ffffffff81443920 t tick_nohz_lowres_handler\n"
                          "ffffffffc0001000 t tick_nohz_handler\t[some_module]\n");
    TickSymbols s = find_tick_symbols(in);
    EXPECT_EQ(s.handler, 0xffffffff814437d0ULL);
    EXPECT_EQ(s.irq_entry, 0xffffffff81000df0ULL);
    EXPECT_EQ(s.irq_entry_end, 0xffffffff81000e10ULL) << "the entry ends at the next symbol";
    EXPECT_TRUE(s.complete());
}

TEST(TickSymbols, OlderKernelsCallbackAndUnsortedListing) {
    // Linux 5.x / 6.1: the callback was tick_sched_timer. Modules' symbols come after
    // the kernel's, so the entry's end is the nearest higher address, not the next line.
    std::istringstream in("ffffffff8113c2e0 t tick_sched_timer\n"
                          "ffffffff81a00c00 T asm_sysvec_apic_timer_interrupt\n"
                          "ffffffff81a00d00 T asm_sysvec_spurious_apic_interrupt\n"
                          "ffffffff81a00c20 T asm_sysvec_x86_platform_ipi\n");
    TickSymbols s = find_tick_symbols(in);
    EXPECT_EQ(s.handler, 0xffffffff8113c2e0ULL);
    EXPECT_EQ(s.irq_entry_end, 0xffffffff81a00c20ULL);
}

TEST(TickSymbols, BothNamesBefore69AndPerCpuSymbolsAtZero) {
    // Debian's 6.1 (kernel matrix, tests/vm): CONFIG_KALLSYMS_ALL lists per-CPU variables
    // at their offsets from 0, and tick_nohz_handler is the low-resolution handler there,
    // beside the hrtimer callback tick_sched_timer.
    std::istringstream in("0000000000000000 A fixed_percpu_data\n"
                          "0000000000001000 A cpu_debug_store\n"
                          "ffffffffa9758d90 t tick_sched_handle\n"
                          "ffffffffa9758f60 t tick_sched_timer\n"
                          "ffffffffa9758fe0 t tick_nohz_handler\n"
                          "ffffffffaa200eb0 T asm_sysvec_apic_timer_interrupt\n"
                          "ffffffffaa200ed0 T asm_sysvec_x86_platform_ipi\n");
    TickSymbols s = find_tick_symbols(in);
    EXPECT_EQ(s.handler, 0xffffffffa9758f60ULL) << "tick_sched_timer, not the lowres handler";
    EXPECT_EQ(s.irq_entry, 0xffffffffaa200eb0ULL);
    EXPECT_EQ(s.irq_entry_end, 0xffffffffaa200ed0ULL);
    EXPECT_TRUE(s.complete()) << "zero per-CPU offsets are not hidden addresses";
}

TEST(TickSymbols, HiddenAddressesAndAbsenceAreIncomplete) {
    // kptr_restrict: the names are listed with zero addresses.
    std::istringstream hidden("0000000000000000 T asm_sysvec_apic_timer_interrupt\n"
                              "0000000000000000 t tick_nohz_handler\n");
    EXPECT_FALSE(find_tick_symbols(hidden).complete());
    EXPECT_EQ(find_tick_symbols(hidden).handler, 0u);
    std::istringstream data("ffffffff81000df0 T asm_sysvec_apic_timer_interrupt\n"
                            "ffffffff81000e10 T x\nffffffff81443700 D tick_nohz_handler\n");
    EXPECT_EQ(find_tick_symbols(data).handler, 0u) << "a data symbol is not the callback";
    std::istringstream no_entry("ffffffff814437d0 t tick_nohz_handler\n");
    EXPECT_FALSE(find_tick_symbols(no_entry).complete()) << "no interrupt entry: no trimming";
    std::istringstream garbage("zzzz t tick_nohz_handler\n\n t\n");
    EXPECT_FALSE(find_tick_symbols(garbage).complete());
}

TEST(TickRate, FromTheCoarseClockResolution) {
    EXPECT_EQ(tick_hz_from_resolution(4'000'000), 250);
    EXPECT_EQ(tick_hz_from_resolution(1'000'000), 1000);
    EXPECT_EQ(tick_hz_from_resolution(10'000'000), 100);
    EXPECT_EQ(tick_hz_from_resolution(3'333'333), 300);
    EXPECT_EQ(tick_hz_from_resolution(1), 0) << "a high-resolution clock is not a tick";
    EXPECT_EQ(tick_hz_from_resolution(0), 0);
    EXPECT_EQ(tick_hz_from_resolution(-5), 0);
}

TEST(TickNohzFull, OnlyListedCpusCount) {
    EXPECT_FALSE(lists_nohz_full_cpus(""));
    EXPECT_FALSE(lists_nohz_full_cpus("\n"));
    EXPECT_FALSE(lists_nohz_full_cpus("(null)\n"));
    EXPECT_TRUE(lists_nohz_full_cpus("1-3\n"));
}

// A kernel BTF in miniature: per-CPU variables in DATASEC ".data..percpu" (offsets as on
// this VM's 6.18 kernel), and a variable of the same name in another section.
std::unique_ptr<btf, void (*)(btf*)> percpu_btf(bool with_irq_regs) {
    std::unique_ptr<btf, void (*)(btf*)> b(btf__new_empty(), btf__free);
    int u64 = btf__add_int(b.get(), "u64", 8, 0);
    int rq = btf__add_var(b.get(), "runqueues", BTF_VAR_GLOBAL_ALLOCATED, u64);
    int regs = btf__add_var(b.get(), "__irq_regs", BTF_VAR_GLOBAL_ALLOCATED, u64);
    int other = btf__add_var(b.get(), "cpu_number", BTF_VAR_GLOBAL_ALLOCATED, u64);
    btf__add_datasec(b.get(), ".data..percpu", 200000);
    btf__add_datasec_var_info(b.get(), other, 86068, 4);
    if (with_irq_regs)
        btf__add_datasec_var_info(b.get(), regs, 191656, 8);
    btf__add_datasec_var_info(b.get(), rq, 195456, 3584);
    int decoy = btf__add_var(b.get(), "__irq_regs", BTF_VAR_GLOBAL_ALLOCATED, u64);
    btf__add_datasec(b.get(), ".data", 64);
    btf__add_datasec_var_info(b.get(), decoy, 8, 8);
    return b;
}

TEST(TickIrqRegs, DistanceFromTheRunqueueInThePerCpuSection) {
    auto b = percpu_btf(true);
    EXPECT_EQ(irq_regs_from_runqueue(b.get()), 191656 - 195456);
}

TEST(TickIrqRegs, MissingVariableOrBtfIsZero) {
    auto b = percpu_btf(false);
    EXPECT_EQ(irq_regs_from_runqueue(b.get()), 0) << "__irq_regs only outside the per-CPU section";
    EXPECT_EQ(irq_regs_from_runqueue(nullptr), 0);
}

} // namespace
