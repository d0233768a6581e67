// Starts RATE short processes per second (default 100; /bin/true) for SECONDS, reaping
// them as they exit: the process churn under which the agent's footprint is measured.
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

extern char** environ;

int main(int argc, char** argv) {
    double rate = argc > 1 ? std::strtod(argv[1], nullptr) : 100.0;
    double seconds = argc > 2 ? std::strtod(argv[2], nullptr) : 60.0;
    const char* prog = argc > 3 ? argv[3] : "/bin/true";
    if (rate <= 0 || seconds <= 0)
        return 2;
    const int64_t period_ns = int64_t(1e9 / rate);
    timespec next{};
    clock_gettime(CLOCK_MONOTONIC, &next);
    const int64_t total = int64_t(rate * seconds);
    int64_t started = 0, failed = 0;
    char* const args[] = {const_cast<char*>(prog), nullptr};
    for (int64_t i = 0; i < total; i++) {
        pid_t pid;
        if (posix_spawn(&pid, prog, nullptr, nullptr, args, environ) == 0)
            started++;
        else
            failed++;
        while (waitpid(-1, nullptr, WNOHANG) > 0) {
        }
        next.tv_nsec += period_ns;
        while (next.tv_nsec >= 1000000000) {
            next.tv_nsec -= 1000000000;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
    }
    while (waitpid(-1, nullptr, 0) > 0) {
    }
    std::printf("started=%lld failed=%lld\n", (long long)started, (long long)failed);
    return failed == 0 ? 0 : 1;
}
