// How the agent configures glibc's allocator: one setting while it starts (loading BPF
// objects), another once everything is attached. Called by main and by the benchmarks,
// so that they measure the allocator the agent runs with.
#pragma once

namespace hostprof {

// While starting: blocks up to 32 MiB come from the heap, and freed heap memory stays
// mapped. libbpf reads the kernel's BTF (5.5 MB here) into a fresh buffer for every BPF
// object it loads, six times in an agent's start; from mmap each copy page-faulted in
// anew, and a fault costs 11-25 us on a VM with shadowed page tables: start to first
// sample 578-708 ms with the run-time setting, 316-440 ms with this one (bench VM, 3 runs
// each, as GLIBC_TUNABLES and as this call; BENCHMARKS.md section 3 has the full run).
// Called first thing in main.
void set_startup_malloc_policy();

// At run time: a fixed mmap threshold (glibc's default 128 KiB, no longer raised at run
// time) and glibc's default trim threshold, then what the start left free goes back.
// glibc raises the threshold each time a large mmapped block is freed, up to 32 MiB; the
// agent frees large blocks all the time (encoded profiles, libdw line tables, ELF
// sections read for symbolization), so after a few profiles they were all carved from
// the arenas instead, and the arenas kept 20-30 MiB free but resident (churn test: RSS
// 50-58 MiB with 13-16 MiB in use; with the fixed threshold 36-46 MiB). The cost: every
// large buffer is fresh memory whose first touch faults, so the hot ones are reused
// (proto::WriterPool). Called once the collectors are attached.
void set_runtime_malloc_policy();

// Both leave the allocator alone when GLIBC_TUNABLES sets glibc.malloc.mmap_threshold:
// the operator decides then.

} // namespace hostprof
