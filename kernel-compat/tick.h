// What the tick sampler needs to know about the running kernel, read from text the
// kernel publishes (kallsyms, sysfs) and from the coarse clocks' resolution. Pure
// parsers here; probe.cpp feeds them the real files.
#pragma once

#include <cstdint>
#include <istream>
#include <string_view>

struct btf;

namespace hostprof::compat {

// What the tick sampler looks for in /proc/kallsyms. Any 0: not found, or the addresses
// are hidden (kptr_restrict without CAP_SYSLOG lists zeros).
struct TickSymbols {
    // The scheduler tick's hrtimer callback: tick_nohz_handler (Linux 6.9+) or
    // tick_sched_timer (before, when tick_nohz_handler named the low-resolution mode's
    // handler: tick_sched_timer wins wherever it exists).
    uint64_t handler = 0;
    // The local timer interrupt's entry code [irq_entry, irq_entry_end) (x86:
    // asm_sysvec_apic_timer_interrupt, up to the next symbol): the frame at which a
    // stack walked from inside the tick crosses into what the interrupt found.
    uint64_t irq_entry = 0;
    uint64_t irq_entry_end = 0;
    bool complete() const { return handler != 0 && irq_entry != 0 && irq_entry_end > irq_entry; }
};
TickSymbols find_tick_symbols(std::istream& kallsyms);

// How far this CPU's __irq_regs (the registers the running interrupt saved) lies from
// its runqueue (`runqueues`): both are per-CPU variables, so the distance is the same on
// every CPU, and the kernel's BTF gives their offsets in the per-CPU section (DATASEC
// ".data..percpu"). The tick sampler reaches the runqueue from the current task. 0 when
// either variable is not in the BTF.
int64_t irq_regs_from_runqueue(const btf* vmlinux);

// CONFIG_HZ from the resolution of CLOCK_MONOTONIC_COARSE (one tick, in ns): 4000000 ->
// 250. 0 when the resolution is not a plausible tick (HZ outside 24..10000).
int tick_hz_from_resolution(long resolution_ns);

// True when /sys/devices/system/cpu/nohz_full names CPUs: a busy CPU there runs without
// a tick, so the tick cannot serve as its sampling clock.
bool lists_nohz_full_cpus(std::string_view nohz_full_text);

} // namespace hostprof::compat
