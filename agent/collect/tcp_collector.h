// The TCP collector: owns the `tcp` BPF skeleton (sock:inet_sock_set_state, tcp:tcp_probe,
// tcp:tcp_retransmit_skb, tcp:tcp_send_reset, tcp:tcp_receive_reset) and its
// links. Per address family and port (the configured ports, everything else "other"):
// active-connect latency, smoothed RTT, retransmits, resets, failed connects, and at each
// close the connection's lifetime and payload bytes, aggregated in
// the kernel; snapshot() reads them.
#pragma once

#include <linux/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/collect/latency_histogram.h"
#include "common/bpf_handles.h"
#include "common/result.h"
#include "kernel-compat/planner.h"
#include "tcp.h"

struct tcp_bpf;

namespace hostprof {

struct TcpOptions {
    // tp_btf or raw_tp (sockets are keyed by pointer); start() refuses Tracepoint.
    compat::AttachMode mode = compat::AttachMode::TpBtf;
    // Ports with series of their own (at most HP_TCP_MAX_PORTS, non-zero): a connection
    // counts under its local port when listed, else under its remote port when listed,
    // else under "other". Never addresses.
    std::vector<uint16_t> ports;
    // Exact native-histogram buckets at this schema (0..3) for the connect, RTT and
    // lifetime histograms; -1: none (bpf/native.h).
    int native_schema = -1;
};

struct TcpFamilyStats {
    std::string family;       // "ipv4", "ipv6"
    std::string port;         // a configured port, "other", or "" in per-family totals
    LatencyHistogram connect; // ns
    LatencyHistogram srtt;    // ns
    uint64_t retransmits = 0;
    uint64_t resets_sent = 0;
    uint64_t resets_received = 0;
    uint64_t connect_failed = 0;
    // Connections closed after an ESTABLISHED transition the collector saw (active or
    // passive); one observation each, at the transition to CLOSE.
    LatencyHistogram duration;       // ns, ESTABLISHED -> CLOSE
    LatencyHistogram sent_bytes;     // payload bytes sent (retransmissions counted once)
    LatencyHistogram received_bytes; // payload bytes received

    void add(const TcpFamilyStats& o);
};

struct TcpSnapshot {
    std::vector<TcpFamilyStats> series;   // per family and port, as exported
    std::vector<TcpFamilyStats> families; // ipv4, ipv6: the sums over their ports
    std::vector<uint64_t> kernel_stats;   // hp_tcp_stats summed
    const TcpFamilyStats* find(std::string_view family) const;
    const TcpFamilyStats* find(std::string_view family, std::string_view port) const;
};

class TcpCollector {
  public:
    static Result<std::unique_ptr<TcpCollector>> start(const TcpOptions& options);
    ~TcpCollector();
    TcpCollector(const TcpCollector&) = delete;
    TcpCollector& operator=(const TcpCollector&) = delete;

    TcpSnapshot snapshot() const;
    const std::vector<std::string>& attached() const { return attached_; }
    // Every loaded program, for run-time statistics (descriptors stay owned here).
    std::vector<ProgramFd> programs() const;

  private:
    TcpCollector() = default;
    Skeleton<tcp_bpf> skel_;
    std::vector<BpfLink> links_;
    std::vector<std::string> attached_;
    std::vector<std::string> ports_; // label values by port slot: "other", then the ports
    int native_schema_ = -1;
};

} // namespace hostprof
