// SPDX-License-Identifier: GPL-2.0
/* Ring-buffer capacity bench: on every sys_enter of one thread (the producer, which
 * loops on getppid), write cfg_batch records of cfg_size bytes to a ring buffer with
 * the wakeup strategy cfg_mode. Counts what it wrote and what it dropped. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "ringbuf_cap.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 cfg_size = 64;
const volatile __u32 cfg_batch = 1;
const volatile __u32 cfg_mode = HPB_RB_WAKE_BATCHED;
const volatile __u64 cfg_wakeup_bytes = 256 * 1024;

__u32 target_tid = 0;
__u64 produced = 0;
__u64 dropped = 0;

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 2 * 1024 * 1024); /* resized by userspace before load */
} hpb_rb SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u8[HPB_RB_MAX_RECORD]);
} hpb_rb_scratch SEC(".maps");

static __always_inline __u64 wakeup_flag(void) {
    if (cfg_mode == HPB_RB_WAKE_DEFAULT)
        return 0;
    if (cfg_mode == HPB_RB_WAKE_NONE)
        return BPF_RB_NO_WAKEUP;
    return bpf_ringbuf_query(&hpb_rb, BPF_RB_AVAIL_DATA) >= cfg_wakeup_bytes ? BPF_RB_FORCE_WAKEUP
                                                                             : BPF_RB_NO_WAKEUP;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(hpb_rb_produce, struct pt_regs* regs, long id) {
    __u32 zero = 0, size = cfg_size;
    __u8* buf;

    if ((__u32)bpf_get_current_pid_tgid() != target_tid)
        return 0;
    buf = bpf_map_lookup_elem(&hpb_rb_scratch, &zero);
    if (!buf)
        return 0;
    if (size > HPB_RB_MAX_RECORD)
        size = HPB_RB_MAX_RECORD;
    if (size < 8)
        size = 8;
    for (__u32 i = 0; i < HPB_RB_MAX_BATCH && i < cfg_batch; i++) {
        *(__u64*)buf = bpf_ktime_get_ns();
        if (bpf_ringbuf_output(&hpb_rb, buf, size, wakeup_flag()))
            __sync_fetch_and_add(&dropped, 1);
        else
            __sync_fetch_and_add(&produced, 1);
    }
    return 0;
}
