#include "agent/collect/tcp_collector.h"

#include <cerrno>

#include "agent/collect/latency_bpf_util.h"
#include "tcp.skel.h"

namespace hostprof {

void TcpFamilyStats::add(const TcpFamilyStats& o) {
    connect.merge(o.connect);
    srtt.merge(o.srtt);
    duration.merge(o.duration);
    sent_bytes.merge(o.sent_bytes);
    received_bytes.merge(o.received_bytes);
    retransmits += o.retransmits;
    resets_sent += o.resets_sent;
    resets_received += o.resets_received;
    connect_failed += o.connect_failed;
}

const TcpFamilyStats* TcpSnapshot::find(std::string_view family) const {
    for (const TcpFamilyStats& f : families)
        if (f.family == family)
            return &f;
    return nullptr;
}

const TcpFamilyStats* TcpSnapshot::find(std::string_view family, std::string_view port) const {
    for (const TcpFamilyStats& f : series)
        if (f.family == family && f.port == port)
            return &f;
    return nullptr;
}

Result<std::unique_ptr<TcpCollector>> TcpCollector::start(const TcpOptions& options) {
    if (options.mode != compat::AttachMode::TpBtf && options.mode != compat::AttachMode::RawTp)
        return Error{EINVAL, "tcp: needs tp_btf or raw_tp (sockets are keyed by pointer)"};
    if (options.ports.size() > HP_TCP_MAX_PORTS)
        return Error{EINVAL, "tcp: at most " + std::to_string(HP_TCP_MAX_PORTS) + " ports"};
    std::unique_ptr<TcpCollector> c(new TcpCollector());
    c->ports_.push_back("other");
    for (uint16_t p : options.ports) {
        if (p == 0)
            return Error{EINVAL, "tcp: port 0 cannot be listed"};
        c->ports_.push_back(std::to_string(p));
    }
    auto skel = Skeleton<tcp_bpf>::open();
    if (!skel)
        return skel.error();
    c->skel_ = std::move(skel.value());
    tcp_bpf* s = c->skel_.get();
    for (size_t i = 0; i < options.ports.size(); ++i)
        s->rodata->cfg_ports[i] = options.ports[i];
    if (Status st = latency::configure_native(s->maps.hp_native, s->rodata->cfg_native_buckets,
                                              s->rodata->cfg_native_bounds, options.native_schema,
                                              HP_TCP_NATIVE_HISTS);
        !st)
        return st.error();
    c->native_schema_ = options.native_schema;
    const bool btf = options.mode == compat::AttachMode::TpBtf;
    struct Hook {
        bpf_program* btf;
        bpf_program* raw;
        const char* name;
    };
    const Hook hooks[] = {
        {s->progs.hp_tcpstate_btf, s->progs.hp_tcpstate_raw, "sock/inet_sock_set_state"},
        {s->progs.hp_tcpprobe_btf, s->progs.hp_tcpprobe_raw, "tcp/tcp_probe"},
        {s->progs.hp_tcpretx_btf, s->progs.hp_tcpretx_raw, "tcp/tcp_retransmit_skb"},
        {s->progs.hp_tcprstout_btf, s->progs.hp_tcprstout_raw, "tcp/tcp_send_reset"},
        {s->progs.hp_tcprstin_btf, s->progs.hp_tcprstin_raw, "tcp/tcp_receive_reset"},
    };
    for (const Hook& h : hooks) {
        bpf_program__set_autoload(h.btf, btf);
        bpf_program__set_autoload(h.raw, !btf);
    }
    if (Status st = c->skel_.load(); !st)
        return st.error();
    for (const Hook& h : hooks)
        if (Status st = latency::attach_chosen(h.btf, h.raw, h.raw, h.name, options.mode, c->links_,
                                               c->attached_);
            !st)
            return st.error();
    return c;
}

TcpCollector::~TcpCollector() {
    links_.clear();
    skel_.reset();
}

TcpSnapshot TcpCollector::snapshot() const {
    TcpSnapshot out;
    std::vector<hp_tcp_hist> per_cpu(latency::possible_cpus());
    for (uint32_t fam = 0; fam < 2; ++fam) {
        TcpFamilyStats total;
        total.family = fam == 0 ? "ipv4" : "ipv6";
        for (uint32_t slot = 0; slot < ports_.size(); ++slot) {
            TcpFamilyStats f;
            f.family = total.family;
            f.port = ports_[slot];
            f.connect.slots.assign(HP_TCP_SLOTS, 0);
            f.srtt.slots.assign(HP_TCP_SLOTS, 0);
            f.duration.slots.assign(HP_TCP_SLOTS, 0);
            f.sent_bytes.slots.assign(HP_TCP_SLOTS, 0);
            f.received_bytes.slots.assign(HP_TCP_SLOTS, 0);
            uint32_t idx = fam * HP_TCP_PORT_SLOTS + slot;
            if (bpf_map__lookup_elem(skel_->maps.hp_tcp_hist, &idx, sizeof(idx), per_cpu.data(),
                                     per_cpu.size() * sizeof(hp_tcp_hist), 0) == 0) {
                for (const hp_tcp_hist& h : per_cpu) {
                    for (size_t i = 0; i < HP_TCP_SLOTS; ++i) {
                        f.connect.slots[i] += h.connect[i];
                        f.srtt.slots[i] += h.srtt[i];
                        f.duration.slots[i] += h.duration[i];
                        f.sent_bytes.slots[i] += h.sent[i];
                        f.received_bytes.slots[i] += h.received[i];
                    }
                    f.duration.sum += h.duration_sum_ns;
                    f.sent_bytes.sum += h.sent_sum;
                    f.received_bytes.sum += h.received_sum;
                    f.connect.sum += h.connect_sum_ns;
                    f.srtt.sum += h.srtt_sum_ns;
                    f.retransmits += h.retransmits;
                    f.resets_sent += h.resets_sent;
                    f.resets_received += h.resets_received;
                    f.connect_failed += h.connect_failed;
                }
            }
            if (native_schema_ >= 0) {
                const uint32_t first = idx * HP_TCP_NATIVE_KINDS;
                const struct {
                    LatencyHistogram& h;
                    uint32_t kind;
                } natives[] = {{f.connect, HP_TCP_NATIVE_CONNECT},
                               {f.srtt, HP_TCP_NATIVE_SRTT},
                               {f.duration, HP_TCP_NATIVE_DURATION}};
                for (const auto& n : natives)
                    n.h.native =
                        latency::read_native(skel_->maps.hp_native, first + n.kind, native_schema_);
            }
            total.add(f);
            out.series.push_back(std::move(f));
        }
        out.families.push_back(std::move(total));
    }
    out.kernel_stats.assign(HP_TCP_STAT_MAX, 0);
    latency::sum_percpu_counters(skel_->maps.hp_tcp_stats, out.kernel_stats);
    return out;
}

std::vector<ProgramFd> TcpCollector::programs() const {
    return loaded_programs(skel_->obj);
}

} // namespace hostprof
