// Helpers shared by the latency collectors: choosing one variant of a tracepoint hook,
// and reading per-CPU map values.
#pragma once

#include <bpf/libbpf.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/bpf_handles.h"
#include "common/result.h"
#include "kernel-compat/planner.h"

namespace hostprof::latency {

// Enables exactly one of the tp_btf / raw_tp / classic tracepoint variants of a hook
// (or none when !wanted).
void choose_variant(bpf_program* btf, bpf_program* raw, bpf_program* tp, bool wanted,
                    compat::AttachMode mode);

// The variant choose_variant enabled, or nullptr.
bpf_program* chosen(bpf_program* btf, bpf_program* raw, bpf_program* tp);

// Attaches the enabled variant; appends the link and "hook (mode)" on success.
Status attach_chosen(bpf_program* btf, bpf_program* raw, bpf_program* tp, const char* hook,
                     compat::AttachMode mode, std::vector<BpfLink>& links,
                     std::vector<std::string>& attached);

// Number of possible CPUs (the length of a per-CPU value array), >= 1.
size_t possible_cpus();

// Sums a per-CPU array of __u64 counters into out (out.size() entries, keys 0..n-1).
void sum_percpu_counters(const bpf_map* map, std::vector<uint64_t>& out);

} // namespace hostprof::latency
