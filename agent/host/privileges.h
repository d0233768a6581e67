// Capabilities: refuse to start without the ones loading needs (naming the missing one),
// and drop all but the few that run time needs once programs are attached.
//
// Needed to load and attach: CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN on kernels before
// 5.8), CAP_SYS_ADMIN also to mount tracefs for classic tracepoints, CAP_SYS_RESOURCE on
// kernels that still charge BPF memory to RLIMIT_MEMLOCK.
// Kept at run time: CAP_SYS_PTRACE (read /proc/PID/maps and /proc/PID/root of any
// process), CAP_DAC_READ_SEARCH (open binaries, debug files and perf maps of other
// users) and CAP_SYSLOG (real addresses in /proc/kallsyms, which the symbolizer re-reads
// when modules or BPF programs appear; without it every kernel frame is 0), and, when granted,
// CAP_CHECKPOINT_RESTORE (open /proc/PID/map_files/*: binaries deleted or replaced since the
// process mapped them; without it their frames are unsymbolized). Maps are read and
// programs detached through descriptors already held, which needs no capability on
// recent kernels; older ones (measured: Debian 11's 5.10; 6.1 no longer) refuse every
// bpf() command to a thread without CAP_BPF while kernel.unprivileged_bpf_disabled is
// set, so CAP_BPF is kept there (found by trying a map lookup, see below).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace hostprof {

struct CapabilitySets {
    uint64_t effective = 0;
    uint64_t permitted = 0;
};

// Parses CapEff/CapPrm from /proc/self/status text.
CapabilitySets parse_capabilities(const std::string& status_text);
CapabilitySets current_capabilities();
std::string capability_names(uint64_t mask);

// Error naming the first missing capability needed to load and attach.
Status check_load_capabilities(const CapabilitySets& caps);

// Keeps only CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH, CAP_SYSLOG and CAP_CHECKPOINT_RESTORE (those
// of them it has) in the effective and permitted sets and sets no_new_privs: of the
// calling thread, then of every other thread of the process (capabilities are per thread;
// each takes the caller's sets in a handler of a real-time signal; an error names the
// threads that did not within 2 s).
// When a map lookup on a held descriptor fails with EPERM once the effective set is
// lowered, CAP_BPF (CAP_SYS_ADMIN on kernels without CAP_BPF) is kept as well: returns
// that extra capability, 0 when none was needed.
Result<uint64_t> drop_to_runtime_capabilities();
uint64_t runtime_capability_mask();

} // namespace hostprof
