/* The ABI between tcp.bpf.c and userspace: fixed-width fields, no pointers. */
#ifndef HOSTPROF_BPF_TCP_H
#define HOSTPROF_BPF_TCP_H

#define HP_TCP_SLOTS 36 /* log2(ns) slots: slot i is [2^i, 2^(i+1)) ns; the last is open */

/* Ports with series of their own (the `tcp_ports` setting); every other connection is
 * counted under port slot 0 ("other"). */
#define HP_TCP_MAX_PORTS 16
#define HP_TCP_PORT_SLOTS (HP_TCP_MAX_PORTS + 1)

/* Native histograms (bpf/native.h) of the durations: histogram
 * (family * HP_TCP_PORT_SLOTS + port slot) * HP_TCP_NATIVE_KINDS + kind. */
enum hp_tcp_native {
	HP_TCP_NATIVE_CONNECT,
	HP_TCP_NATIVE_SRTT,
	HP_TCP_NATIVE_DURATION,
	HP_TCP_NATIVE_KINDS,
};
#define HP_TCP_NATIVE_HISTS (2 * HP_TCP_PORT_SLOTS * HP_TCP_NATIVE_KINDS)

/* Value of the per-CPU array hp_tcp_hist, indexed family * HP_TCP_PORT_SLOTS + port slot
 * (family 0 IPv4, 1 IPv6; port slot 0 "other", slot i+1 the i-th configured port). A
 * connection's port is its local port when that is configured (a service this host
 * serves), else its remote port when that is (a service this host calls). */
struct hp_tcp_hist {
	__u64 connect[HP_TCP_SLOTS]; /* active connect: SYN_SENT -> ESTABLISHED, ns */
	__u64 srtt[HP_TCP_SLOTS];    /* smoothed RTT at each tcp_probe, ns */
	__u64 connect_sum_ns;
	__u64 srtt_sum_ns;
	__u64 retransmits;     /* tcp_retransmit_skb */
	__u64 resets_sent;     /* tcp_send_reset */
	__u64 resets_received; /* tcp_receive_reset */
	__u64 connect_failed;  /* SYN_SENT -> CLOSE */
	/* At CLOSE, for connections whose ESTABLISHED transition was seen: */
	__u64 duration[HP_TCP_SLOTS]; /* lifetime, ESTABLISHED -> CLOSE, ns */
	__u64 sent[HP_TCP_SLOTS];     /* payload bytes sent, each byte once */
	__u64 received[HP_TCP_SLOTS]; /* payload bytes received (the FIN not counted) */
	__u64 duration_sum_ns;
	__u64 sent_sum;
	__u64 received_sum;
};

enum hp_tcp_stat {
	HP_TCP_STAT_START_FAILED, /* the per-socket map refused a socket (full) */
	HP_TCP_STAT_MISSED_START, /* SYN_SENT -> ESTABLISHED without the SYN_SENT entry */
	HP_TCP_STAT_MAX,
};

#endif /* HOSTPROF_BPF_TCP_H */
