// Unwind-table build time (unwind/cfi.h) of real objects on this machine: the whole
// build of one file (open, libdw's CFI, every row, normalize) and pack() into 64 KiB
// pages, as the agent does for each new executable mapping. The label gives the table's
// size: rows, and bytes once packed (what the BPF maps hold).
#include <benchmark/benchmark.h>

#include <filesystem>
#include <string>

#include "unwind/cfi.h"

namespace {

using namespace hostprof::unwind;

void build(benchmark::State& state, const std::string& path) {
    if (!std::filesystem::exists(path)) {
        state.SkipWithError((path + " not on this machine").c_str());
        return;
    }
    size_t rows = 0, packed_bytes = 0, fdes = 0;
    for (auto _ : state) {
        auto t = build_cfi_table(path);
        if (!t.ok()) {
            state.SkipWithError(t.error().message().c_str());
            return;
        }
        const PackedTable p = pack(t->rows);
        benchmark::DoNotOptimize(p.rows.data());
        rows = t->rows.size();
        fdes = t->stats.fdes;
        packed_bytes = p.rows.size() * sizeof(hp_unw_row) + p.pages.size() * sizeof(hp_unw_page);
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * rows));
    state.counters["rows"] = static_cast<double>(rows);
    state.counters["fdes"] = static_cast<double>(fdes);
    state.counters["packed_bytes"] = static_cast<double>(packed_bytes);
    state.SetLabel(std::to_string(fdes) + " FDEs, " + std::to_string(rows) + " rows, " +
                   std::to_string((packed_bytes + 512) / 1024) + " KiB packed");
}

void BM_CfiTableLibc(benchmark::State& state) {
    build(state, "/lib/x86_64-linux-gnu/libc.so.6");
}
void BM_CfiTablePython3(benchmark::State& state) {
    build(state, "/usr/bin/python3.11");
}

BENCHMARK(BM_CfiTableLibc)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CfiTablePython3)->Unit(benchmark::kMillisecond);

} // namespace
