// Loads the empty tp_btf programs of floor.bpf.c on sys_enter/sys_exit, prints "ready",
// and holds them attached until SIGINT/SIGTERM: the physical floor of syscall tracing.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "floor.skel.h"

int main() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, nullptr);

    floor_bpf* skel = floor_bpf__open_and_load();
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
