#include "kernel-compat/tick.h"

#include <bpf/btf.h>

#include "common/text.h"

#include <string>
#include <vector>

namespace hostprof::compat {

// "ADDRESS TYPE NAME[\t[MODULE]]", split in place (a stream per line made the start-up
// read of ~120,000 lines cost ~50 ms).
TickSymbols find_tick_symbols(std::istream& kallsyms) {
    TickSymbols out;
    uint64_t older = 0;
    std::vector<uint64_t> addresses; // every symbol's, to find where the entry code ends
    std::string line;
    while (std::getline(kallsyms, line)) {
        std::string_view rest(line);
        const std::string_view addr = next_field(rest), type = next_field(rest),
                               name = next_field(rest);
        uint64_t a = 0;
        if (type.size() != 1 || name.empty() || !parse_hex(addr, a))
            continue;
        const bool text = type[0] == 't' || type[0] == 'T';
        if (a == 0) {
            // A text symbol at 0: addresses hidden (kptr_restrict), none can be trusted.
            // Per-CPU variables are listed at their offsets from 0 with
            // CONFIG_KALLSYMS_ALL (`0000000000000000 A fixed_percpu_data`).
            if (text)
                return {};
            continue;
        }
        addresses.push_back(a);
        if (!text)
            continue;
        if (name == "tick_sched_timer" && older == 0)
            older = a;
        else if (name == "tick_nohz_handler" && out.handler == 0)
            out.handler = a;
        else if (name == "asm_sysvec_apic_timer_interrupt" && out.irq_entry == 0)
            out.irq_entry = a;
    }
    // Before 6.9 the callback was tick_sched_timer, and tick_nohz_handler was the
    // low-resolution mode's clock event handler (6.9 renamed them tick_nohz_handler and
    // tick_nohz_lowres_handler): where both names exist, tick_sched_timer is the one.
    if (older != 0)
        out.handler = older;
    if (out.irq_entry != 0) {
        for (uint64_t a : addresses)
            if (a > out.irq_entry && (out.irq_entry_end == 0 || a < out.irq_entry_end))
                out.irq_entry_end = a;
    }
    return out;
}

int64_t irq_regs_from_runqueue(const btf* b) {
    if (b == nullptr)
        return 0;
    int64_t rq = -1, regs = -1;
    for (__u32 id = 1; id < btf__type_cnt(b); ++id) {
        const btf_type* t = btf__type_by_id(b, id);
        if (t == nullptr || !btf_is_datasec(t))
            continue;
        const char* sec = btf__name_by_offset(b, t->name_off);
        if (sec == nullptr || std::string_view(sec) != ".data..percpu")
            continue;
        const btf_var_secinfo* v = btf_var_secinfos(t);
        for (__u16 i = 0; i < btf_vlen(t); ++i, ++v) {
            const btf_type* var = btf__type_by_id(b, v->type);
            const char* name = var ? btf__name_by_offset(b, var->name_off) : nullptr;
            if (name == nullptr)
                continue;
            if (std::string_view(name) == "runqueues")
                rq = v->offset;
            else if (std::string_view(name) == "__irq_regs")
                regs = v->offset;
        }
    }
    return rq < 0 || regs < 0 ? 0 : regs - rq;
}

int tick_hz_from_resolution(long resolution_ns) {
    if (resolution_ns <= 0)
        return 0;
    long hz = (1'000'000'000L + resolution_ns / 2) / resolution_ns;
    return hz >= 24 && hz <= 10'000 ? static_cast<int>(hz) : 0;
}

bool lists_nohz_full_cpus(std::string_view text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.remove_suffix(1);
    return !text.empty() && text != "(null)";
}

} // namespace hostprof::compat
