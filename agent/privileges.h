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
// programs detached through descriptors already held, which needs no capability.
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
// of them it has) in the effective and permitted sets
// of the calling thread (call before any other thread exists) and sets no_new_privs.
Status drop_to_runtime_capabilities();
uint64_t runtime_capability_mask();

} // namespace hostprof
