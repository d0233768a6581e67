// Unwind-table build time (unwind/cfi.h) of real objects on this machine: the whole
// build of one file (open, libdw's CFI, every row, normalize) and pack() into 64 KiB
// pages, as the agent does for each new executable mapping. The label gives the table's
// size: rows, and bytes once packed (what the BPF maps hold).
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "unwind/builders.h"
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

// The unwind-table memory of a host running 100 distinct programs: the first 100 ELF
// executables of /usr/bin (by name) and every shared library they load (ldd), each
// file's table built once as the agent's store does (CFI, Go rows over it) and packed.
// Rows are what the BPF rows map holds (8 bytes each, against unwind_memory).
void BM_Host100Binaries(benchmark::State& state) {
    std::vector<std::string> exes;
    std::vector<std::filesystem::path> all;
    for (const auto& e : std::filesystem::directory_iterator("/usr/bin"))
        if (e.is_regular_file() && !e.is_symlink())
            all.push_back(e.path());
    std::sort(all.begin(), all.end());
    std::set<std::string> files;
    for (const auto& p : all) {
        if (exes.size() >= 100)
            break;
        char magic[4] = {};
        const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
        const bool elf = fd >= 0 && ::read(fd, magic, 4) == 4 && magic[0] == 0x7f &&
                         magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F';
        if (fd >= 0)
            ::close(fd);
        if (!elf)
            continue;
        exes.push_back(p.string());
        files.insert(p.string());
        // ldd's "name => /path (addr)" lines.
        FILE* f = ::popen(("ldd '" + p.string() + "' 2>/dev/null").c_str(), "r");
        if (f == nullptr)
            continue;
        char line[1024];
        while (std::fgets(line, sizeof(line), f) != nullptr) {
            std::string l(line);
            auto arrow = l.find("=> /");
            auto start = arrow != std::string::npos ? arrow + 3 : l.find_first_of('/');
            if (start == std::string::npos)
                continue;
            auto end = l.find(' ', start);
            files.insert(std::filesystem::weakly_canonical(l.substr(start, end - start)).string());
        }
        ::pclose(f);
    }
    const auto build = default_builder();
    size_t rows = 0, packed_rows = 0, pages = 0, failed = 0;
    for (auto _ : state) {
        rows = packed_rows = pages = failed = 0;
        for (const std::string& path : files) {
            const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                ++failed;
                continue;
            }
            auto r = build(fd, path);
            ::close(fd);
            if (!r) {
                ++failed;
                continue;
            }
            const PackedTable p = pack(*r);
            rows += r->size();
            packed_rows += p.rows.size();
            pages += p.pages.size();
        }
    }
    const double bytes = static_cast<double>(packed_rows * sizeof(hp_unw_row));
    state.counters["files"] = static_cast<double>(files.size());
    state.counters["rows_map_bytes"] = bytes;
    state.counters["pages"] = static_cast<double>(pages);
    state.SetLabel(std::to_string(exes.size()) + " programs, " + std::to_string(files.size()) +
                   " files (" + std::to_string(failed) + " unreadable), " +
                   std::to_string(packed_rows) + " rows, " +
                   std::to_string(static_cast<long>(bytes / 1024)) + " KiB of rows, " +
                   std::to_string(pages) + " pages");
}

BENCHMARK(BM_CfiTableLibc)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Host100Binaries)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_CfiTablePython3)->Unit(benchmark::kMillisecond);

} // namespace
