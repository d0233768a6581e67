// Loads the empty tp_btf programs of floor.bpf.c on sys_enter/sys_exit (or, with the
// argument "clock", the pair that reads the clock once per hook), prints "ready", and
// holds them attached until SIGINT/SIGTERM: the physical floor of syscall tracing.
// With "sample HZ": the empty perf_event program on a cpu-clock event of every online
// CPU sampling at HZ, the floor of sampling (what the timer interrupt costs any tool).
#include <linux/perf_event.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "floor.skel.h"

int main(int argc, char** argv) {
    const bool clock = argc > 1 && std::strcmp(argv[1], "clock") == 0;
    const bool sample = argc > 2 && std::strcmp(argv[1], "sample") == 0;
    const long hz = sample ? std::strtol(argv[2], nullptr, 10) : 0;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, nullptr);

    floor_bpf* skel = floor_bpf__open();
    if (skel) {
        bpf_program__set_autoload(skel->progs.hpb_floor_enter, !clock && !sample);
        bpf_program__set_autoload(skel->progs.hpb_floor_exit, !clock && !sample);
        bpf_program__set_autoload(skel->progs.hpb_clock_enter, clock);
        bpf_program__set_autoload(skel->progs.hpb_clock_exit, clock);
        bpf_program__set_autoload(skel->progs.hpb_sample, sample);
        if (floor_bpf__load(skel) != 0) {
            floor_bpf__destroy(skel);
            skel = nullptr;
        }
    }
    if (!skel) {
        std::fprintf(stderr, "floor: load failed: %s\n", std::strerror(errno));
        return 1;
    }
    std::vector<bpf_link*> links;
    if (sample) {
        // The attributes a profiler uses: software cpu-clock, a frequency, every CPU.
        const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        for (int cpu = 0; cpu < cpus; ++cpu) {
            perf_event_attr attr{};
            attr.size = sizeof(attr);
            attr.type = PERF_TYPE_SOFTWARE;
            attr.config = PERF_COUNT_SW_CPU_CLOCK;
            attr.freq = 1;
            attr.sample_freq = static_cast<__u64>(hz);
            const int fd = static_cast<int>(syscall(SYS_perf_event_open, &attr, -1, cpu, -1, 0));
            bpf_link* link =
                fd < 0 ? nullptr : bpf_program__attach_perf_event(skel->progs.hpb_sample, fd);
            if (!link) {
                std::fprintf(stderr, "floor: cpu-clock at %ld Hz on CPU %d: %s\n", hz, cpu,
                             std::strerror(errno));
                if (fd >= 0)
                    close(fd);
                for (bpf_link* l : links)
                    bpf_link__destroy(l);
                floor_bpf__destroy(skel);
                return 1;
            }
            links.push_back(link);
        }
    } else if (int err = floor_bpf__attach(skel); err) {
        std::fprintf(stderr, "floor: attach failed: %s\n", std::strerror(-err));
        floor_bpf__destroy(skel);
        return 1;
    }
    std::printf("ready\n");
    std::fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    for (bpf_link* l : links)
        bpf_link__destroy(l); // closes the perf event too
    floor_bpf__destroy(skel);
    return 0;
}
