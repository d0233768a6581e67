// Ring-buffer capacity bench: a producer thread loops on getppid(); the BPF program
// (ringbuf_cap.bpf.c) writes `batch` records of `size` bytes per syscall into a ring
// buffer; a consumer thread drains it with one of the wakeup strategies:
//   default   flags 0 (the kernel wakes the consumer whenever it has caught up),
//             consumer in ring_buffer__poll(100 ms)
//   batched   the agent's strategy: BPF_RB_NO_WAKEUP below --wakeup-bytes, forced wakeup
//             above, consumer in ring_buffer__poll(100 ms) + ring_buffer__consume
//   busy      BPF_RB_NO_WAKEUP always, consumer spins on ring_buffer__consume
//   producer  no consumer at all: how fast the kernel side writes records until the
//             ring is full (the kernel's own limit; the ring is --ring-mb large)
// Prints one line of key=value pairs.
#include <bpf/libbpf.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "ringbuf_cap.h"
#include "ringbuf_cap.skel.h"

namespace {

struct Options {
    std::string mode = "batched";
    unsigned size = 64;
    unsigned batch = 8;
    double seconds = 3.0;
    unsigned ring_mb = 2;
    unsigned wakeup_bytes = 256 * 1024;
};

double now_s() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

double thread_cpu_s() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

void pin(unsigned cpu) {
    if (std::thread::hardware_concurrency() < 2)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % std::thread::hardware_concurrency(), &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

struct Consumer {
    uint64_t records = 0;
    uint64_t bytes = 0;
    uint64_t wakeups = 0;
    double cpu_s = 0;
};

int on_record(void* ctx, void* data, size_t size) {
    auto* c = static_cast<Consumer*>(ctx);
    c->records++;
    c->bytes += size + static_cast<const uint8_t*>(data)[0] * 0; // touch the record
    return 0;
}

int usage() {
    std::fprintf(stderr, "usage: ringbuf_cap [--mode default|batched|busy|producer] [--size N] "
                         "[--batch N] [--seconds S] [--ring-mb M] [--wakeup-bytes N]\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            return usage();
        std::string k = argv[i], v = argv[i + 1];
        if (k == "--mode")
            o.mode = v;
        else if (k == "--size")
            o.size = unsigned(std::strtoul(v.c_str(), nullptr, 10));
        else if (k == "--batch")
            o.batch = unsigned(std::strtoul(v.c_str(), nullptr, 10));
        else if (k == "--seconds")
            o.seconds = std::strtod(v.c_str(), nullptr);
        else if (k == "--ring-mb")
            o.ring_mb = unsigned(std::strtoul(v.c_str(), nullptr, 10));
        else if (k == "--wakeup-bytes")
            o.wakeup_bytes = unsigned(std::strtoul(v.c_str(), nullptr, 10));
        else
            return usage();
    }
    unsigned mode = HPB_RB_WAKE_BATCHED;
    if (o.mode == "default")
        mode = HPB_RB_WAKE_DEFAULT;
    else if (o.mode == "busy" || o.mode == "producer")
        mode = HPB_RB_WAKE_NONE;
    else if (o.mode != "batched")
        return usage();
    if (o.size < 8 || o.size > HPB_RB_MAX_RECORD || o.batch < 1 || o.batch > HPB_RB_MAX_BATCH)
        return usage();

    ringbuf_cap_bpf* skel = ringbuf_cap_bpf__open();
    if (!skel) {
        std::fprintf(stderr, "ringbuf_cap: open failed: %s\n", std::strerror(errno));
        return 1;
    }
    skel->rodata->cfg_size = o.size;
    skel->rodata->cfg_batch = o.batch;
    skel->rodata->cfg_mode = mode;
    skel->rodata->cfg_wakeup_bytes = o.wakeup_bytes;
    bpf_map__set_max_entries(skel->maps.hpb_rb, o.ring_mb * 1024u * 1024u);
    if (int err = ringbuf_cap_bpf__load(skel); err) {
        std::fprintf(stderr, "ringbuf_cap: load failed: %s\n", std::strerror(-err));
        ringbuf_cap_bpf__destroy(skel);
        return 1;
    }
    if (int err = ringbuf_cap_bpf__attach(skel); err) {
        std::fprintf(stderr, "ringbuf_cap: attach failed: %s\n", std::strerror(-err));
        ringbuf_cap_bpf__destroy(skel);
        return 1;
    }

    Consumer consumer;
    ring_buffer* rb = nullptr;
    if (o.mode != "producer") {
        rb = ring_buffer__new(bpf_map__fd(skel->maps.hpb_rb), on_record, &consumer, nullptr);
        if (!rb) {
            std::fprintf(stderr, "ringbuf_cap: ring_buffer__new: %s\n", std::strerror(errno));
            ringbuf_cap_bpf__destroy(skel);
            return 1;
        }
    }

    std::atomic<bool> stop{false};
    std::thread consumer_thread;
    if (rb) {
        consumer_thread = std::thread([&] {
            pin(1);
            double c0 = thread_cpu_s();
            bool busy = o.mode == "busy";
            while (!stop.load(std::memory_order_relaxed)) {
                if (busy) {
                    ring_buffer__consume(rb);
                    continue;
                }
                int n = ring_buffer__poll(rb, 100);
                if (n > 0)
                    consumer.wakeups++;
                ring_buffer__consume(rb);
            }
            ring_buffer__consume(rb); // what is left once the producer stopped
            consumer.cpu_s = thread_cpu_s() - c0;
        });
    }

    // Producer: this thread.
    pin(0);
    skel->bss->target_tid = uint32_t(syscall(SYS_gettid));
    uint64_t calls = 0;
    double t0 = now_s(), t1 = t0, deadline = t0 + o.seconds;
    while (true) {
        for (int i = 0; i < 256; i++)
            syscall(SYS_getppid);
        calls += 256;
        t1 = now_s();
        if (t1 >= deadline)
            break;
        if (o.mode == "producer" && __atomic_load_n(&skel->bss->dropped, __ATOMIC_RELAXED) > 0)
            break; // the ring is full: the kernel-side rate is what was written until now
    }
    skel->bss->target_tid = 0;
    double elapsed = t1 - t0;
    uint64_t produced = __atomic_load_n(&skel->bss->produced, __ATOMIC_RELAXED);
    uint64_t dropped = __atomic_load_n(&skel->bss->dropped, __ATOMIC_RELAXED);
    if (rb) {
        stop.store(true);
        consumer_thread.join();
    }
    uint64_t drained = rb ? consumer.records : produced;
    std::printf("mode=%s size=%u batch=%u seconds=%.3f syscalls=%llu produced=%llu drained=%llu "
                "dropped=%llu rate_produced=%.0f rate_drained=%.0f drop_pct=%.4f "
                "consumer_cpu_pct=%.2f wakeups=%llu wakeups_per_s=%.1f\n",
                o.mode.c_str(), o.size, o.batch, elapsed, (unsigned long long)calls,
                (unsigned long long)produced, (unsigned long long)drained,
                (unsigned long long)dropped, double(produced) / elapsed, double(drained) / elapsed,
                produced + dropped ? 100.0 * double(dropped) / double(produced + dropped) : 0.0,
                100.0 * consumer.cpu_s / elapsed, (unsigned long long)consumer.wakeups,
                double(consumer.wakeups) / elapsed);
    if (rb)
        ring_buffer__free(rb);
    ringbuf_cap_bpf__destroy(skel);
    return 0;
}
