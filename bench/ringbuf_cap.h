/* ABI between ringbuf_cap.bpf.c and ringbuf_cap.cpp (bench only). */
#ifndef HOSTPROF_BENCH_RINGBUF_CAP_H
#define HOSTPROF_BENCH_RINGBUF_CAP_H

#define HPB_RB_MAX_RECORD 4096
#define HPB_RB_MAX_BATCH 64

/* Wakeup strategies (cfg_mode). */
#define HPB_RB_WAKE_DEFAULT 0 /* flags 0: the kernel wakes the consumer when it has caught up */
#define HPB_RB_WAKE_BATCHED 1 /* the agent's: no wakeup below cfg_wakeup_bytes, forced above */
#define HPB_RB_WAKE_NONE 2    /* never wake; the consumer busy-polls (or is absent) */

#endif
