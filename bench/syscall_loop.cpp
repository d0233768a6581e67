// The syscall-heavy victim: calls getppid() in a loop for SECONDS (default 5) and prints
// the rate. getppid does almost nothing in the kernel, so what a tracer adds per
// syscall (sys_enter + sys_exit hooks) shows at full scale.
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

static double now_s() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

int main(int argc, char** argv) {
    double seconds = argc > 1 ? std::strtod(argv[1], nullptr) : 5.0;
    uint64_t calls = 0;
    double t0 = now_s(), t1 = t0;
    while (t1 - t0 < seconds) {
        for (int i = 0; i < 1024; i++)
            syscall(SYS_getppid);
        calls += 1024;
        t1 = now_s();
    }
    double elapsed = t1 - t0;
    std::printf("calls=%llu seconds=%.3f calls_per_s=%.0f ns_per_call=%.1f\n",
                (unsigned long long)calls, elapsed, double(calls) / elapsed,
                elapsed * 1e9 / double(calls));
    return 0;
}
