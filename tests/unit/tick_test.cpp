// The tick sampler's parsers (kernel-compat/tick.h) over text the kernel publishes.
#include <gtest/gtest.h>

#include <sstream>

#include "kernel-compat/tick.h"

using namespace hostprof::compat;

namespace {

TEST(TickSymbols, FindsTheCallbackAndTheInterruptEntry) {
    // Lines as /proc/kallsyms prints them on this VM (6.18), plus an older kernel's name
    // and a module's symbol of the same name, which must not win.
    std::istringstream in("ffffffff81000df0 T asm_sysvec_apic_timer_interrupt\n"
                          "ffffffff81000e10 T asm_sysvec_x86_platform_ipi\n"
                          "ffffffff81443500 t tick_sched_timer\n"
                          "ffffffff814437d0 t tick_nohz_handler\n"
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

} // namespace
