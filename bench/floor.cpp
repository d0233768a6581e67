// Loads the empty tp_btf programs of floor.bpf.c on sys_enter/sys_exit (or, with the
// argument "clock", the pair that reads the clock once per hook), prints "ready", and
// holds them attached until SIGINT/SIGTERM: the physical floor of syscall tracing.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "floor.skel.h"

int main(int argc, char** argv) {
    const bool clock = argc > 1 && std::strcmp(argv[1], "clock") == 0;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, nullptr);

    floor_bpf* skel = floor_bpf__open();
    if (skel) {
        bpf_program__set_autoload(skel->progs.hpb_floor_enter, !clock);
        bpf_program__set_autoload(skel->progs.hpb_floor_exit, !clock);
        bpf_program__set_autoload(skel->progs.hpb_clock_enter, clock);
        bpf_program__set_autoload(skel->progs.hpb_clock_exit, clock);
        if (floor_bpf__load(skel) != 0) {
            floor_bpf__destroy(skel);
            skel = nullptr;
        }
    }
    if (!skel) {
        std::fprintf(stderr, "floor: load failed: %s\n", std::strerror(errno));
        return 1;
    }
    if (int err = floor_bpf__attach(skel); err) {
        std::fprintf(stderr, "floor: attach failed: %s\n", std::strerror(-err));
        floor_bpf__destroy(skel);
        return 1;
    }
    std::printf("ready\n");
    std::fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    floor_bpf__destroy(skel);
    return 0;
}
