// Helpers shared by the latency collectors: choosing one variant of a tracepoint hook,
// and reading per-CPU map values.
#pragma once

#include <bpf/libbpf.h>
#include <linux/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "agent/collect/latency_histogram.h"
#include "bpf/native.h"
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

// Before load: sizes a program's hp_native map (bpf/lib/hp_native.h) for `histograms`
// native histograms at `schema` and writes the bucket bounds into its .rodata
// (cfg_native_buckets, cfg_native_bounds); schema -1 leaves native buckets off.
Status configure_native(bpf_map* map, uint32_t& cfg_buckets,
                        std::span<__u64, HP_NATIVE_MAX_BOUNDS> cfg_bounds, int schema,
                        uint32_t histograms);

// Native histogram `hist` of a configured hp_native map, per CPU: per_cpu gets one
// vector of buckets per possible CPU. false when it cannot be read.
bool read_native_percpu(const bpf_map* map, uint32_t hist, uint32_t buckets,
                        std::vector<std::vector<uint64_t>>& per_cpu);

// The same, summed over CPUs; schema -1 (nothing) when off or unreadable.
NativeHistogram read_native(const bpf_map* map, uint32_t hist, int schema);

// Number of possible CPUs (the length of a per-CPU value array), >= 1.
size_t possible_cpus();

// Sums a per-CPU array of __u64 counters into out (out.size() entries, keys 0..n-1).
void sum_percpu_counters(const bpf_map* map, std::vector<uint64_t>& out);

} // namespace hostprof::latency
