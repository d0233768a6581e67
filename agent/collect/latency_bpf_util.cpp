#include "agent/collect/latency_bpf_util.h"

#include <algorithm>
#include <cerrno>

namespace hostprof::latency {

void choose_variant(bpf_program* btf, bpf_program* raw, bpf_program* tp, bool wanted,
                    compat::AttachMode mode) {
    bpf_program__set_autoload(btf, wanted && mode == compat::AttachMode::TpBtf);
    bpf_program__set_autoload(raw, wanted && mode == compat::AttachMode::RawTp);
    bpf_program__set_autoload(tp, wanted && mode == compat::AttachMode::Tracepoint);
}

bpf_program* chosen(bpf_program* btf, bpf_program* raw, bpf_program* tp) {
    for (bpf_program* p : {btf, raw, tp})
        if (bpf_program__autoload(p))
            return p;
    return nullptr;
}

Status attach_chosen(bpf_program* btf, bpf_program* raw, bpf_program* tp, const char* hook,
                     compat::AttachMode mode, std::vector<BpfLink>& links,
                     std::vector<std::string>& attached) {
    bpf_program* p = chosen(btf, raw, tp);
    if (p == nullptr)
        return Error{0, std::string("no variant of ") + hook + " selected for " +
                            std::string(compat::to_string(mode))};
    auto link = take_link(bpf_program__attach(p), std::string("attach ") + hook + " (" +
                                                      std::string(compat::to_string(mode)) + ")");
    if (!link)
        return link.error();
    links.push_back(std::move(link.value()));
    attached.push_back(std::string(hook) + " (" + std::string(compat::to_string(mode)) + ")");
    return {};
}

Status configure_native(bpf_map* map, uint32_t& cfg_buckets,
                        std::span<__u64, HP_NATIVE_MAX_BOUNDS> cfg_bounds, int schema,
                        uint32_t histograms) {
    cfg_buckets = 0;
    if (schema < 0)
        return {};
    const uint32_t buckets = native_bucket_count(schema);
    if (buckets == 0)
        return Error{EINVAL, "native histogram schema " + std::to_string(schema) +
                                 " is not one of 0, 1, 2, 3"};
    const std::vector<uint64_t> bounds = native_bounds_ns(schema);
    std::fill(cfg_bounds.begin(), cfg_bounds.end(), HP_NATIVE_PAD);
    std::copy(bounds.begin(), bounds.end(), cfg_bounds.begin());
    int err = bpf_map__set_value_size(map, buckets * sizeof(uint64_t));
    if (err == 0)
        err = bpf_map__set_max_entries(map, histograms);
    if (err != 0)
        return Error{-err, std::string("sizing the native-histogram map ") + bpf_map__name(map)};
    cfg_buckets = buckets;
    return {};
}

bool read_native_percpu(const bpf_map* map, uint32_t hist, uint32_t buckets,
                        std::vector<std::vector<uint64_t>>& per_cpu) {
    const size_t ncpu = possible_cpus();
    std::vector<uint64_t> values(ncpu * buckets);
    if (buckets == 0 || bpf_map__lookup_elem(map, &hist, sizeof(hist), values.data(),
                                             values.size() * sizeof(uint64_t), 0) != 0)
        return false;
    per_cpu.assign(ncpu, {});
    for (size_t c = 0; c < ncpu; ++c)
        per_cpu[c].assign(values.begin() + static_cast<ptrdiff_t>(c * buckets),
                          values.begin() + static_cast<ptrdiff_t>((c + 1) * buckets));
    return true;
}

NativeHistogram read_native(const bpf_map* map, uint32_t hist, int schema) {
    NativeHistogram h;
    const uint32_t buckets = native_bucket_count(schema);
    std::vector<std::vector<uint64_t>> per_cpu;
    if (!read_native_percpu(map, hist, buckets, per_cpu))
        return h;
    h.schema = schema;
    h.buckets.assign(buckets, 0);
    for (const auto& cpu : per_cpu)
        for (size_t k = 0; k < buckets; ++k)
            h.buckets[k] += cpu[k];
    return h;
}

size_t possible_cpus() {
    int n = libbpf_num_possible_cpus();
    return n > 0 ? static_cast<size_t>(n) : 1;
}

void sum_percpu_counters(const bpf_map* map, std::vector<uint64_t>& out) {
    std::vector<uint64_t> values(possible_cpus());
    for (uint32_t i = 0; i < out.size(); ++i) {
        out[i] = 0;
        if (bpf_map__lookup_elem(map, &i, sizeof(i), values.data(),
                                 values.size() * sizeof(uint64_t), 0) != 0)
            continue;
        for (uint64_t v : values)
            out[i] += v;
    }
}

} // namespace hostprof::latency
