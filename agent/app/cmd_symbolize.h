// hostprof symbolize: prints the frames of addresses, for debugging and cross-checks.
//   hostprof symbolize --pid P ADDR...   process addresses (hex) of a live process
//   hostprof symbolize --elf FILE ADDR... ELF virtual addresses of a file
//   hostprof symbolize --kernel ADDR...   kernel addresses (kallsyms)
//   --debuginfod-urls URL,...             also fetch debug files (waits for the lookups)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hostprof {

struct SymbolizeArgs {
    uint32_t pid = 0;
    std::string elf;
    bool kernel = false;
    std::vector<std::string> addresses; // hex, with or without 0x
    bool no_demangle = false;
    bool no_inlines = false;
    bool no_dwarf = false;
    std::string proc_root = "/proc";
    std::vector<std::string> debuginfod_urls; // empty: off
    std::string debuginfod_cache_dir = "/var/cache/hostprof/debuginfod";
};

// Returns the process exit code: 0 when every address symbolized, 1 when some did not,
// 2 on a usage error.
int run_symbolize(const SymbolizeArgs& args);

} // namespace hostprof
