// SPDX-License-Identifier: GPL-2.0
/* TCP: active-connect latency (inet_sock_set_state SYN_SENT -> ESTABLISHED), connection
 * lifetime and payload bytes at CLOSE, smoothed RTT (tcp_probe), retransmits and resets,
 * per address family and configured port, in per-CPU maps. tp_btf and raw_tp variants are compiled
 * (sockets are keyed by pointer); userspace enables one. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "lib/hp_log2.h"
#include "lib/hp_native.h"
#include "tcp.h"

char LICENSE[] SEC("license") = "GPL";

#define HP_AF_INET6 10
#define HP_TCP_ESTABLISHED 1
#define HP_TCP_SYN_SENT 2
#define HP_TCP_CLOSE 7

/* The `tcp_ports` setting: ports with series of their own (0 ends the list). */
const volatile __u16 cfg_ports[HP_TCP_MAX_PORTS] = {};

/* Per socket, from SYN_SENT (active) or ESTABLISHED (passive) until CLOSE. */
struct hp_tcp_sock {
	__u64 syn_sent_ns;    /* 0: not an active connect in progress */
	__u64 established_ns; /* 0: not (yet) established */
	/* Port slot, fixed at SYN_SENT and ESTABLISHED: at CLOSE the kernel has already
	 * released the local port of most sockets (inet_num reads 0). */
	__u32 slot;
	__u32 pad;
};

/* struct sock * -> hp_tcp_sock. An entry lives as long as its connection: sized for
 * that many concurrently tracked sockets; a full map is counted, not silent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, __u64);
	__type(value, struct hp_tcp_sock);
} hp_tcp_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * HP_TCP_PORT_SLOTS);
	__type(key, __u32);
	__type(value, struct hp_tcp_hist);
} hp_tcp_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HP_TCP_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hp_tcp_stats SEC(".maps");

/* Port slot of a port in host byte order: 0 when it is not configured. */
static __always_inline __u32 port_slot(__u16 port)
{
	for (__u32 i = 0; i < HP_TCP_MAX_PORTS; i++) {
		if (cfg_ports[i] == 0)
			break;
		if (cfg_ports[i] == port)
			return i + 1;
	}
	return 0;
}

static __always_inline __u32 hist_index(bool ipv6, __u32 slot)
{
	return (ipv6 ? HP_TCP_PORT_SLOTS : 0) + slot;
}

static __always_inline struct hp_tcp_hist *hist_at(bool ipv6, __u32 slot)
{
	__u32 idx = hist_index(ipv6, slot);

	return bpf_map_lookup_elem(&hp_tcp_hist, &idx);
}

static __always_inline void native_add(bool ipv6, __u32 slot, enum hp_tcp_native kind, __u64 d)
{
	hp_native_add(hist_index(ipv6, slot) * HP_TCP_NATIVE_KINDS + kind, d);
}

static __always_inline bool is_ipv6(const struct sock *sk)
{
	return sk && BPF_CORE_READ(sk, __sk_common.skc_family) == HP_AF_INET6;
}

/* The local port when configured, else the remote port when configured, else "other". */
static __always_inline __u32 slot_of(const struct sock *sk)
{
	__u32 slot;

	if (!sk || cfg_ports[0] == 0)
		return 0;
	slot = port_slot(BPF_CORE_READ(sk, __sk_common.skc_num));
	if (slot == 0)
		slot = port_slot(bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport)));
	return slot;
}

static __always_inline struct hp_tcp_hist *hist_of(const struct sock *sk)
{
	return hist_at(is_ipv6(sk), slot_of(sk));
}

/* A global function, verified once on its own: inlined, every log2 step is a branch and
 * the four histograms of one close multiply the paths past the verifier's limit. */
__noinline __u32 hp_tcp_slot(__u64 v)
{
	return hp_log2_slot(v, HP_TCP_SLOTS);
}

static __always_inline void add(__u64 *slots, __u64 v)
{
	__u32 slot = hp_tcp_slot(v);

	if (slot < HP_TCP_SLOTS)
		slots[slot] += 1;
}

static __always_inline void count_stat(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&hp_tcp_stats, &stat);

	if (v)
		*v += 1;
}

/* The connection closes: its lifetime since ESTABLISHED and its payload bytes. Sent:
 * bytes_sent counts every transmission, bytes_retrans the retransmitted ones, so the
 * difference counts each payload byte once (SYN and FIN carry none). Received:
 * bytes_received follows rcv_nxt, which the FIN advances by one; tcp_fin() sets
 * SOCK_DONE when it consumed one, and nothing clears it before this transition. */
static __always_inline void closed(const struct sock *sk, __u64 lifetime_ns, __u32 slot)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u64 sent, retrans, received;
	bool ipv6 = is_ipv6(sk);
	struct hp_tcp_hist *h = hist_at(ipv6, slot);

	if (!h)
		return;
	native_add(ipv6, slot, HP_TCP_NATIVE_DURATION, lifetime_ns);
	sent = BPF_CORE_READ(tp, bytes_sent);
	retrans = BPF_CORE_READ(tp, bytes_retrans);
	sent = sent > retrans ? sent - retrans : 0;
	received = BPF_CORE_READ(tp, bytes_received);
	if (received && (BPF_CORE_READ(sk, __sk_common.skc_flags) &
			 (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DONE))))
		received -= 1;
	add(h->duration, lifetime_ns);
	h->duration_sum_ns += lifetime_ns;
	add(h->sent, sent);
	h->sent_sum += sent;
	add(h->received, received);
	h->received_sum += received;
}

static __always_inline void set_state(const struct sock *sk, int oldstate, int newstate)
{
	__u64 key = (__u64)sk, now;
	struct hp_tcp_sock *e, fresh = {};
	struct hp_tcp_hist *h;

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return;
	now = bpf_ktime_get_ns();
	if (newstate == HP_TCP_SYN_SENT) {
		fresh.syn_sent_ns = now;
		fresh.slot = slot_of(sk);
		if (bpf_map_update_elem(&hp_tcp_start, &key, &fresh, BPF_ANY) != 0)
			count_stat(HP_TCP_STAT_START_FAILED);
		return;
	}
	e = bpf_map_lookup_elem(&hp_tcp_start, &key);
	if (newstate == HP_TCP_ESTABLISHED) {
		/* Active (from SYN_SENT) or passive (a child socket from SYN_RECV). */
		if (!e) {
			if (oldstate == HP_TCP_SYN_SENT)
				count_stat(HP_TCP_STAT_MISSED_START);
			fresh.established_ns = now;
			fresh.slot = slot_of(sk);
			if (bpf_map_update_elem(&hp_tcp_start, &key, &fresh, BPF_ANY) != 0)
				count_stat(HP_TCP_STAT_START_FAILED);
			return;
		}
		if (oldstate == HP_TCP_SYN_SENT && !e->syn_sent_ns) {
			count_stat(HP_TCP_STAT_MISSED_START);
		} else if (oldstate == HP_TCP_SYN_SENT) {
			__u64 d = now - e->syn_sent_ns;
			bool ipv6 = is_ipv6(sk);
			__u32 slot = slot_of(sk);

			h = hist_at(ipv6, slot);
			if (h) {
				add(h->connect, d);
				h->connect_sum_ns += d;
				native_add(ipv6, slot, HP_TCP_NATIVE_CONNECT, d);
			}
		}
		e->syn_sent_ns = 0;
		e->established_ns = now;
		e->slot = slot_of(sk);
		return;
	}
	if (newstate != HP_TCP_CLOSE)
		return;
	if (oldstate == HP_TCP_SYN_SENT && e && e->syn_sent_ns) {
		h = hist_at(is_ipv6(sk), e->slot);
		if (h)
			h->connect_failed += 1;
	} else if (e && e->established_ns) {
		closed(sk, now - e->established_ns, e->slot);
	}
	if (e)
		bpf_map_delete_elem(&hp_tcp_start, &key);
}

static __always_inline void probe(struct sock *sk)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	bool ipv6 = is_ipv6(sk);
	__u32 slot = slot_of(sk);
	struct hp_tcp_hist *h = hist_at(ipv6, slot);
	__u64 srtt_ns;

	if (!h)
		return;
	srtt_ns = (__u64)(BPF_CORE_READ(tp, srtt_us) >> 3) * 1000;
	add(h->srtt, srtt_ns);
	h->srtt_sum_ns += srtt_ns;
	native_add(ipv6, slot, HP_TCP_NATIVE_SRTT, srtt_ns);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(hp_tcpstate_btf, const struct sock *sk, int oldstate, int newstate)
{
	set_state(sk, oldstate, newstate);
	return 0;
}

SEC("raw_tp/inet_sock_set_state")
int BPF_PROG(hp_tcpstate_raw, const struct sock *sk, int oldstate, int newstate)
{
	set_state(sk, oldstate, newstate);
	return 0;
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(hp_tcpprobe_btf, struct sock *sk)
{
	probe(sk);
	return 0;
}

SEC("raw_tp/tcp_probe")
int BPF_PROG(hp_tcpprobe_raw, struct sock *sk)
{
	probe(sk);
	return 0;
}

static __always_inline void bump_retransmit(const struct sock *sk)
{
	struct hp_tcp_hist *h = hist_of(sk);

	if (h)
		h->retransmits += 1;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(hp_tcpretx_btf, const struct sock *sk)
{
	bump_retransmit(sk);
	return 0;
}

SEC("raw_tp/tcp_retransmit_skb")
int BPF_PROG(hp_tcpretx_raw, const struct sock *sk)
{
	bump_retransmit(sk);
	return 0;
}

/* tcp_send_reset: sk is NULL for a reset answering a packet without a socket. */
static __always_inline void bump_reset(const struct sock *sk, bool sent)
{
	struct hp_tcp_hist *h = hist_of(sk);

	if (!h)
		return;
	if (sent)
		h->resets_sent += 1;
	else
		h->resets_received += 1;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(hp_tcprstout_btf, const struct sock *sk)
{
	bump_reset(sk, true);
	return 0;
}

SEC("raw_tp/tcp_send_reset")
int BPF_PROG(hp_tcprstout_raw, const struct sock *sk)
{
	bump_reset(sk, true);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(hp_tcprstin_btf, struct sock *sk)
{
	bump_reset(sk, false);
	return 0;
}

SEC("raw_tp/tcp_receive_reset")
int BPF_PROG(hp_tcprstin_raw, struct sock *sk)
{
	bump_reset(sk, false);
	return 0;
}
