// Exporter render costs (issue 9 targets: /metrics of 10,000 series <= 10 ms CPU; pprof
// encode+gzip of a 60 s, 99 Hz host profile <= 20 ms). Inputs are synthetic but sized
// like a busy host; see BENCHMARKS.md "Exporters".
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "agent/host/malloc_policy.h"
#include "exporters/flamegraph.h"
#include "exporters/folded.h"
#include "exporters/metrics.h"
#include "exporters/pprof.h"

namespace hostprof {
namespace {

// 10,000 series: 50 log2 histograms of 27 buckets (+Inf, _count, _sum: 30 series each,
// 1,500), 6,000 counters (per pid and ring buffer), 2,500 gauges.
std::vector<prometheus::MetricFamily> metrics_10k() {
    std::vector<prometheus::MetricFamily> families;
    static std::vector<uint64_t> counts(27);
    for (size_t i = 0; i < counts.size(); ++i)
        counts[i] = (i * 7919) % 1000;
    std::vector<Log2Histogram> hs;
    for (int i = 0; i < 50; ++i)
        hs.push_back({counts, 1e-9, std::nullopt, {{"syscall", "syscall_" + std::to_string(i)}}});
    families.push_back(
        log2_histogram_family("hostprof_syscall_latency_seconds", "Syscall latency.", hs));
    prometheus::MetricFamily c{
        "hostprof_cpu_samples_total", "CPU samples.", prometheus::MetricType::Counter, {}};
    for (int i = 0; i < 6000; ++i) {
        prometheus::ClientMetric m;
        m.label = {{"pid", std::to_string(1000 + i)}, {"service", "svc-" + std::to_string(i % 40)}};
        m.counter.value = i * 3.0;
        c.metric.push_back(std::move(m));
    }
    families.push_back(std::move(c));
    prometheus::MetricFamily g{
        "hostprof_process_rss_bytes", "RSS.", prometheus::MetricType::Gauge, {}};
    for (int i = 0; i < 2500; ++i) {
        prometheus::ClientMetric m;
        m.label = {{"pid", std::to_string(1000 + i)}};
        m.gauge.value = 1e6 + i;
        g.metric.push_back(std::move(m));
    }
    families.push_back(std::move(g));
    return families;
}

enum class Stacks { kTreeShaped, kRandom };

// A 60 s, 99 Hz, 2-CPU host profile, unmerged: 11,880 samples (one per CPU tick, the
// worst case; the aggregator normally merges equal stacks), depth 8..40, over 4,000
// locations in 60 mappings, 50 processes with pid/comm/service_name labels.
// kTreeShaped: stacks walk a call tree (at each level child 0, 1 or 2 with p = .6/.3/.1),
// so they share prefixes like real ones. kRandom: every frame drawn uniformly, the
// adversarial case for gzip.
Profile host_profile_60s(Stacks shape) {
    Profile p;
    set_cpu_profile_types(p, 99);
    p.duration_nanos = 60'000'000'000;
    std::mt19937 rng(42);
    for (int m = 0; m < 60; ++m)
        p.mappings.push_back({0x400000ULL + m * 0x1000000ULL, 0x400000ULL + (m + 1) * 0x1000000ULL,
                              0, "/usr/lib/lib" + std::to_string(m) + ".so",
                              std::string(40, static_cast<char>('a' + m % 6))});
    constexpr uint32_t kLocations = 4000;
    for (uint32_t l = 0; l < kLocations; ++l) {
        Location loc{0x400000ULL + l * 64ULL, static_cast<int32_t>(l % 60), {}};
        loc.lines.push_back(
            {"ns" + std::to_string(l % 97) + "::Class::function_" + std::to_string(l),
             "src/file" + std::to_string(l % 300) + ".cc", l % 900});
        if (l % 5 == 0)
            loc.lines.insert(loc.lines.begin(),
                             {"inlined_helper_" + std::to_string(l), "src/h.h", 12});
        p.locations.push_back(std::move(loc));
    }
    std::uniform_int_distribution<uint32_t> any_location(0, kLocations - 1);
    std::uniform_int_distribution<int> depth(8, 40);
    std::discrete_distribution<uint32_t> child({6, 3, 1});
    for (int s = 0; s < 60 * 99 * 2; ++s) {
        Sample sample;
        const int proc = s % 50;
        uint32_t node = static_cast<uint32_t>(proc) * 61;
        for (int d = depth(rng); d > 0; --d) {
            node = shape == Stacks::kRandom ? any_location(rng)
                                            : (node * 31 + child(rng) * 7 + 1) % kLocations;
            sample.locations.push_back(node);
        }
        std::reverse(sample.locations.begin(), sample.locations.end()); // leaf first
        sample.values = {1, p.period};
        sample.labels = {{"pid", std::to_string(2000 + proc)},
                         {"comm", "worker-" + std::to_string(proc)},
                         {"service_name", "svc-" + std::to_string(proc % 12)}};
        p.samples.push_back(std::move(sample));
    }
    return p;
}

void BM_MetricsText004_10k(benchmark::State& state) {
    const auto families = metrics_10k();
    size_t bytes = 0;
    for (auto _ : state) {
        const std::string out = render_prometheus_text(families);
        bytes = out.size();
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_MetricsText004_10k)->Unit(benchmark::kMillisecond);

void BM_MetricsOpenMetrics_10k(benchmark::State& state) {
    const auto families = metrics_10k();
    ExemplarSet ex;
    for (int i = 0; i < 50; ++i)
        ex.set("hostprof_syscall_latency_seconds", {{"syscall", "syscall_" + std::to_string(i)}},
               log2_bucket_upper_bound(20, 1e-9),
               {{{"pid", "42"}, {"stack_id", "abc"}}, 0.001, 1.7e9});
    size_t bytes = 0;
    for (auto _ : state) {
        const std::string out = render_openmetrics(families, ex);
        bytes = out.size();
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_MetricsOpenMetrics_10k)->Unit(benchmark::kMillisecond);

void BM_PprofEncodeGzip_60s99Hz2Cpu(benchmark::State& state) {
    const Profile p = host_profile_60s(state.range(0) == 0 ? Stacks::kTreeShaped : Stacks::kRandom);
    size_t bytes = 0;
    for (auto _ : state) {
        const std::string out = render_pprof(p);
        bytes = out.size();
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["gzip_bytes"] = static_cast<double>(bytes);
    state.counters["samples"] = static_cast<double>(p.samples.size());
}
BENCHMARK(BM_PprofEncodeGzip_60s99Hz2Cpu)
    ->ArgName("random_stacks")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond);

// The same without gzip: the protobuf encoder alone.
void BM_PprofEncodeOnly_60s99Hz2Cpu(benchmark::State& state) {
    const Profile p = host_profile_60s(state.range(0) == 0 ? Stacks::kTreeShaped : Stacks::kRandom);
    size_t bytes = 0;
    for (auto _ : state) {
        const std::string out = encode_pprof(p);
        bytes = out.size();
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["raw_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_PprofEncodeOnly_60s99Hz2Cpu)
    ->ArgName("random_stacks")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond);

void BM_Folded_60s99Hz2Cpu(benchmark::State& state) {
    const Profile p = host_profile_60s(Stacks::kTreeShaped);
    for (auto _ : state)
        benchmark::DoNotOptimize(render_folded(p, 0).data());
}
BENCHMARK(BM_Folded_60s99Hz2Cpu)->Unit(benchmark::kMillisecond);

void BM_FlameGraphPage_60s99Hz2Cpu(benchmark::State& state) {
    const Profile p = host_profile_60s(Stacks::kTreeShaped);
    FlameGraphOptions o;
    o.group_label = "service_name";
    size_t bytes = 0;
    for (auto _ : state) {
        const std::string out = render_flamegraph_html(p, o);
        bytes = out.size();
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_FlameGraphPage_60s99Hz2Cpu)->Unit(benchmark::kMillisecond);

} // namespace
} // namespace hostprof

// The agent's allocator settings at run time: large buffers are fresh mmap()ed memory there, and
// the renderers' cost includes touching them.
int main(int argc, char** argv) {
    hostprof::set_runtime_malloc_policy();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
