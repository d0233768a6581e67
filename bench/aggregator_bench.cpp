// The consumer's per-sample work: folding a stack record into a profile window
// (ProfileAggregator::add -> StackTable), the agent's largest user-space cost per sample
// (BENCHMARKS.md, section 1). The record stream is synthetic but shaped like a CPU-bound
// host: two busy processes, most samples in user mode (no kernel frames), a third of
// them at a leaf address the window has not seen yet (a hot loop is rarely sampled twice
// at the same instruction).
//
// "Cold" runs the stream as the agent does at 99 Hz: a drain of 1,500 records every few
// seconds, between which the workload evicts everything the consumer touched (here: a
// 32 MiB write, not timed). "NodeMap" folds the same stream into the design the table
// replaced (unordered_map with a vector of frames per key), the baseline of the ratio.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <random>
#include <unordered_map>
#include <vector>

#include "agent/aggregate/aggregator.h"

namespace hostprof {
namespace {

constexpr size_t kDrain = 1500;   // records per drain at 99 Hz on 2 CPUs (~7 s)
constexpr size_t kRecords = 6000; // one 30 s window

struct Stream {
    std::vector<std::vector<uint64_t>> frames; // kernel then user
    std::vector<uint16_t> kernel_len;
    std::vector<uint32_t> pid;
    std::vector<StackRecordView> views;
};

const Stream& stream() {
    static const Stream s = [] {
        Stream out;
        std::mt19937_64 rng(7);
        const uint32_t self = static_cast<uint32_t>(::getpid());
        std::vector<size_t> recent;
        for (size_t i = 0; i < kRecords; ++i) {
            if (!recent.empty() && rng() % 3 != 0) { // a stack seen before
                const size_t j = recent[rng() % recent.size()];
                out.frames.push_back(out.frames[j]);
                out.kernel_len.push_back(out.kernel_len[j]);
                out.pid.push_back(out.pid[j]);
                continue;
            }
            std::vector<uint64_t> f;
            uint16_t k = 0;
            if (rng() % 5 == 0) { // interrupted in the kernel: a syscall or page fault path
                k = static_cast<uint16_t>(8 + rng() % 12);
                for (uint16_t d = 0; d < k; ++d)
                    f.push_back(0xffffffff81000000ULL + (rng() % 64) * 0x40);
            }
            f.push_back(0x401000 + rng() % 0x4000); // the leaf: anywhere in a hot function
            const size_t depth = 4 + rng() % 8;
            for (size_t d = 0; d < depth; ++d)
                f.push_back(0x402000 + d * 0x100 + rng() % 4);
            out.frames.push_back(std::move(f));
            out.kernel_len.push_back(k);
            out.pid.push_back(self + static_cast<uint32_t>(rng() % 2));
            recent.push_back(out.frames.size() - 1);
            if (recent.size() > 256)
                recent.erase(recent.begin());
        }
        for (size_t i = 0; i < kRecords; ++i) {
            StackRecordView v{};
            v.kind = HP_PROF_ON_CPU;
            v.pid = out.pid[i];
            v.tid = out.pid[i];
            v.start_time_ns = 1'000'000;
            v.comm = "stress-ng-cpu";
            const auto& f = out.frames[i];
            v.kernel_frames = std::span<const uint64_t>(f.data(), out.kernel_len[i]);
            v.user_frames = std::span<const uint64_t>(f.data() + out.kernel_len[i],
                                                      f.size() - out.kernel_len[i]);
            out.views.push_back(v);
        }
        return out;
    }();
    return s;
}

void evict_caches() {
    static std::vector<uint64_t> junk(32 << 20 >> 3);
    for (size_t i = 0; i < junk.size(); i += 8)
        junk[i] += i;
    benchmark::DoNotOptimize(junk.data());
}

// Before each drain of a cold run, the workload's turn (not timed).
void between_drains(benchmark::State& state, bool cold, size_t record) {
    if (!cold || record % kDrain != 0)
        return;
    state.PauseTiming();
    evict_caches();
    state.ResumeTiming();
}

// The design StackTable replaced, kept here as the baseline.
struct NodeKey {
    uint32_t pid = 0;
    uint32_t tid = 0;
    uint64_t start_time_ns = 0;
    uint16_t kernel_len = 0;
    std::vector<uint64_t> frames;
    bool operator==(const NodeKey&) const = default;
};
struct NodeKeyHash {
    size_t operator()(const NodeKey& k) const {
        uint64_t h = 1469598103934665603ULL;
        auto mix = [&h](uint64_t v) {
            h ^= v;
            h *= 1099511628211ULL;
        };
        mix(k.pid);
        mix(k.tid);
        mix(k.start_time_ns);
        mix(k.kernel_len);
        for (uint64_t f : k.frames)
            mix(f);
        return static_cast<size_t>(h);
    }
};

template <typename Fold> void run(benchmark::State& state, bool cold, Fold&& fold_window) {
    const Stream& s = stream();
    for (auto _ : state) {
        fold_window(s, cold);
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kRecords));
}

void BM_AggregatorAdd(benchmark::State& state) {
    const bool cold = state.range(0) != 0;
    ProcessTable meta;
    run(state, cold, [&](const Stream& s, bool evict) {
        ProfileAggregator agg(HP_PROF_ON_CPU);
        for (size_t i = 0; i < kRecords; ++i) {
            between_drains(state, evict, i);
            benchmark::DoNotOptimize(agg.add(s.views[i], meta));
        }
        state.PauseTiming();
        ProfileWindow w = agg.take(); // freeing the window is not per-sample work
        benchmark::DoNotOptimize(w.stacks.size());
        w = ProfileWindow{};
        state.ResumeTiming();
    });
}
BENCHMARK(BM_AggregatorAdd)->ArgName("cold")->Arg(0)->Arg(1);

void BM_NodeMapAdd(benchmark::State& state) {
    const bool cold = state.range(0) != 0;
    run(state, cold, [&](const Stream& s, bool evict) {
        std::unordered_map<NodeKey, StackValue, NodeKeyHash> stacks;
        NodeKey scratch;
        for (size_t i = 0; i < kRecords; ++i) {
            between_drains(state, evict, i);
            const StackRecordView& r = s.views[i];
            scratch.pid = r.pid;
            scratch.start_time_ns = r.start_time_ns;
            scratch.kernel_len = static_cast<uint16_t>(r.kernel_frames.size());
            scratch.frames.assign(r.kernel_frames.begin(), r.kernel_frames.end());
            scratch.frames.insert(scratch.frames.end(), r.user_frames.begin(), r.user_frames.end());
            auto it = stacks.find(scratch);
            if (it == stacks.end())
                it = stacks.emplace(scratch, StackValue{}).first;
            ++it->second.count;
        }
        state.PauseTiming();
        benchmark::DoNotOptimize(stacks.size());
        stacks = {};
        state.ResumeTiming();
    });
}
BENCHMARK(BM_NodeMapAdd)->ArgName("cold")->Arg(0)->Arg(1);

// The same fold into the table alone (no process admission): like for like with NodeMap.
void BM_StackTableAdd(benchmark::State& state) {
    const bool cold = state.range(0) != 0;
    run(state, cold, [&](const Stream& s, bool evict) {
        StackTable stacks;
        for (size_t i = 0; i < kRecords; ++i) {
            between_drains(state, evict, i);
            const StackRecordView& r = s.views[i];
            benchmark::DoNotOptimize(stacks.add(r.pid, 0, r.start_time_ns, r.kernel_frames,
                                                r.user_frames, StackValue{1, 0}));
        }
        state.PauseTiming();
        benchmark::DoNotOptimize(stacks.size());
        stacks = {};
        state.ResumeTiming();
    });
}
BENCHMARK(BM_StackTableAdd)->ArgName("cold")->Arg(0)->Arg(1);

} // namespace
} // namespace hostprof
