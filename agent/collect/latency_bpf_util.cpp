#include "agent/collect/latency_bpf_util.h"

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
