// Symbolizer throughput on one address list, side by side: hostprof warm (cached) and cold
// (first load), binutils addr2line and elfutils eu-addr2line. The object is this benchmark
// binary (multi-megabyte, .symtab + DWARF); the addresses are 1,000 points spread over its
// .text, given to the symbolizer as process addresses of this live process.
#include <benchmark/benchmark.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "symbolizer/elf_image.h"
#include "symbolizer/parsers.h"
#include "symbolizer/symbolizer.h"

namespace {

using hostprof::sym::ElfImage;
using hostprof::sym::Symbolizer;
using hostprof::sym::SymbolizerOptions;

struct Addresses {
    std::string exe;
    std::vector<uint64_t> elf;     // ELF virtual addresses
    std::vector<uint64_t> process; // the same, as addresses of this process
    std::string list_file;         // one 0x... per line, for the external tools
};

const Addresses& addresses() {
    static const Addresses a = [] {
        Addresses r;
        r.exe = std::filesystem::read_symlink("/proc/self/exe").string();
        auto img = ElfImage::load_path(r.exe, {});
        if (!img.ok())
            return r;
        // .text bounds from the executable PT_LOAD segment; map it back through our maps.
        const ElfImage::Segment* text = nullptr;
        for (const auto& s : (*img)->segments())
            if (s.executable)
                text = &s;
        std::ifstream in("/proc/self/maps");
        std::stringstream ss;
        ss << in.rdbuf();
        auto maps = hostprof::sym::parse_maps(ss.str());
        for (const auto& m : maps.entries) {
            if (!m.executable || m.path != r.exe)
                continue;
            for (uint64_t i = 0; i < 1000; ++i) {
                uint64_t v = text->vaddr + text->filesz * i / 1000 + 1;
                uint64_t off = v - text->vaddr + text->offset;
                if (off < m.offset || off - m.offset >= m.end - m.start)
                    continue;
                r.elf.push_back(v);
                r.process.push_back(m.start + off - m.offset);
            }
        }
        r.list_file = "/tmp/hostprof-symbench-" + std::to_string(::getpid());
        std::ofstream o(r.list_file);
        for (uint64_t v : r.elf)
            o << std::hex << "0x" << v << "\n";
        return r;
    }();
    return a;
}

void warm(benchmark::State& state, bool dwarf) {
    const Addresses& a = addresses();
    SymbolizerOptions o;
    o.dwarf = dwarf;
    Symbolizer s(o);
    const uint32_t pid = static_cast<uint32_t>(::getpid());
    s.process_seen(pid);
    size_t with_line = 0;
    for (uint64_t p : a.process) { // warm every CU index the list touches
        auto r = s.user(pid, p);
        with_line += std::any_of(r.frames.begin(), r.frames.end(),
                                 [](const auto& f) { return f.line != 0; });
    }
    // A build without DWARF would measure symbol lookups under the DWARF name.
    if (dwarf && with_line * 2 < a.process.size()) {
        state.SkipWithError("fewer than half of the addresses have file:line: no DWARF?");
        return;
    }
    state.counters["with_line"] = static_cast<double>(with_line);
    for (auto _ : state)
        for (uint64_t p : a.process)
            benchmark::DoNotOptimize(s.user(pid, p));
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * a.process.size()));
}
void BM_HostprofWarmSymbols(benchmark::State& state) {
    warm(state, false);
}
void BM_HostprofWarmDwarfInlines(benchmark::State& state) {
    warm(state, true);
}

void cold(benchmark::State& state, bool dwarf) {
    const Addresses& a = addresses();
    const uint32_t pid = static_cast<uint32_t>(::getpid());
    for (auto _ : state) {
        SymbolizerOptions o;
        o.dwarf = dwarf;
        Symbolizer s(o);
        s.process_seen(pid);
        for (uint64_t p : a.process)
            benchmark::DoNotOptimize(s.user(pid, p));
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * a.process.size()));
}
void BM_HostprofColdSymbols(benchmark::State& state) {
    cold(state, false);
}
void BM_HostprofColdDwarfInlines(benchmark::State& state) {
    cold(state, true);
}

// Indexing one object's .symtab (no DWARF): the cold cost per object.
void BM_HostprofSymtabIndex(benchmark::State& state) {
    const Addresses& a = addresses();
    hostprof::sym::ElfLoadOptions o;
    o.dwarf = false;
    size_t symbols = 0;
    for (auto _ : state) {
        auto img = ElfImage::load_path(a.exe, o);
        symbols = img.ok() ? (*img)->symbol_count() : 0;
        benchmark::DoNotOptimize(img);
    }
    state.counters["symbols"] = static_cast<double>(symbols);
    state.counters["file_MB"] = static_cast<double>(std::filesystem::file_size(a.exe)) / (1 << 20);
}

void external(benchmark::State& state, const std::string& tool) {
    const Addresses& a = addresses();
    const std::string cmd = tool + " -f -C -i -e '" + a.exe + "' < " + a.list_file + " > /dev/null";
    // eu-addr2line exits 1 when any address had no answer (a padding byte between
    // functions); that is a result, not a failure. 127: the tool is missing.
    for (auto _ : state) {
        int rc = std::system(cmd.c_str());
        if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) > 1)
            state.SkipWithError(("failed: " + cmd).c_str());
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * a.elf.size()));
}
void BM_Addr2line(benchmark::State& state) {
    external(state, "addr2line");
}
void BM_EuAddr2line(benchmark::State& state) {
    external(state, "eu-addr2line");
}

BENCHMARK(BM_HostprofWarmSymbols)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HostprofWarmDwarfInlines)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HostprofColdSymbols)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HostprofColdDwarfInlines)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HostprofSymtabIndex)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Addr2line)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_EuAddr2line)->Unit(benchmark::kMillisecond)->UseRealTime();

} // namespace
