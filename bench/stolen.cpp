// The victim that sees everything a profiler takes from it: one thread pinned to each
// online CPU reads CLOCK_MONOTONIC (vDSO, ~20 ns) in a tight loop for SECONDS; any step
// between two reads longer than 1 us is time the CPU spent elsewhere: interrupts (the
// profiling timer's included), the perf/BPF handler that runs in them, the tool's own
// threads and the context switches to them, the host's noise. Prints the sum over all
// CPUs per wall second, how much of it came in steps under 128 us (interrupt-sized), and
// the median length of those steps (at a high sampling rate most of them are samples: the
// median is then what one sample takes from the workload).
//
// Unlike run_time_ns or a tool's CPU time, this sees the cost every sampling profiler
// pays in the interrupt that is not its own code (the hrtimer expiry, on a VM a VM exit),
// and perf's in-kernel unwinding, which no counter here reports. Side by side with "no
// tool", the difference is what the tool costs the workload.
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>
#include <vector>

namespace {

uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

constexpr uint64_t kSmallNs = 128'000;
constexpr uint64_t kBinNs = 50; // resolution of the step-length histogram

struct Result {
    uint64_t elapsed_ns = 0;
    uint64_t stolen_ns = 0;
    uint64_t small_ns = 0; // in steps under 128 us
    uint64_t steps = 0;
    std::vector<uint64_t> bins = std::vector<uint64_t>(kSmallNs / kBinNs); // steps < 128 us
};

void watch(int cpu, uint64_t duration_ns, Result& out) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    const uint64_t start = now_ns();
    uint64_t prev = start;
    Result r;
    for (;;) {
        const uint64_t t = now_ns();
        const uint64_t step = t - prev;
        prev = t;
        if (step > 1'000) {
            r.stolen_ns += step;
            r.steps++;
            if (step < kSmallNs) {
                r.small_ns += step;
                r.bins[step / kBinNs]++;
            }
        }
        if (t - start >= duration_ns)
            break;
    }
    r.elapsed_ns = prev - start;
    out = r;
}

} // namespace

int main(int argc, char** argv) {
    const double seconds = argc > 1 ? std::strtod(argv[1], nullptr) : 5.0;
    if (seconds <= 0)
        return 2;
    std::vector<int> cpus;
    cpu_set_t online;
    if (sched_getaffinity(0, sizeof(online), &online) != 0)
        return 1;
    for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &online))
            cpus.push_back(c);
    std::vector<Result> results(cpus.size());
    std::vector<std::thread> threads;
    const auto duration = static_cast<uint64_t>(seconds * 1e9);
    for (size_t i = 0; i < cpus.size(); ++i)
        threads.emplace_back(watch, cpus[i], duration, std::ref(results[i]));
    for (auto& t : threads)
        t.join();
    double stolen = 0, small = 0, steps = 0;
    std::vector<uint64_t> bins(kSmallNs / kBinNs);
    uint64_t small_steps = 0;
    for (const Result& r : results)
        for (size_t b = 0; b < bins.size(); ++b) {
            bins[b] += r.bins[b];
            small_steps += r.bins[b];
        }
    double median_us = 0;
    for (size_t b = 0, seen = 0; b < bins.size(); ++b) {
        seen += bins[b];
        if (2 * seen >= small_steps && small_steps > 0) {
            median_us = (static_cast<double>(b) + 0.5) * kBinNs / 1000.0;
            break;
        }
    }
    for (const Result& r : results) {
        const double per_s = 1e9 / static_cast<double>(r.elapsed_ns);
        stolen += static_cast<double>(r.stolen_ns) * per_s;
        small += static_cast<double>(r.small_ns) * per_s;
        steps += static_cast<double>(r.steps) * per_s;
    }
    // ns per wall second summed over CPUs = % of one CPU x 1e7
    std::printf("cpus=%zu stolen_pct=%.4f small_pct=%.4f steps_per_s=%.1f small_step_p50_us=%.3f\n",
                cpus.size(), stolen / 1e7, small / 1e7, steps, median_us);
    return 0;
}
