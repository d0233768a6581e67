// Pure parsers of the text sources the symbolizer reads: /proc/kallsyms, /proc/PID/maps and
// perf maps (/tmp/perf-PID.map). They take bytes (a stream or a string), never paths, so
// tests and fuzzers feed them directly. Malformed lines are skipped and counted.
#pragma once

#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/text.h"

namespace hostprof::sym {

// ---- /proc/kallsyms ------------------------------------------------------------------------

// A symbol as lookup() returns it: views into the Kallsyms it came from, valid while that
// object lives.
struct KernelSymbol {
    uint64_t address = 0;
    std::string_view name; // as printed, e.g. "do_sys_openat2", "bpf_prog_6deef7357e7b4530_hp_cpu"
    std::string_view module; // "" for the core kernel, else the name inside "[...]" ("bpf" for BPF)
};

class Kallsyms {
  public:
    // Keeps text symbols (t, T, w, W); data symbols are ignored. Lines that do not parse are
    // counted in malformed(). All-zero addresses (unprivileged readers) give an empty index.
    static Kallsyms parse(std::istream& in);

    // The symbol covering `address`: the last one at or below it, when `address` is below
    // the end of the kernel text it belongs to (next symbol). nullopt when unknown.
    std::optional<KernelSymbol> lookup(uint64_t address) const;

    size_t size() const { return symbols_.size(); }
    size_t malformed() const { return malformed_; }
    size_t bytes() const;

  private:
    // 16 bytes per symbol, names in blocks: a kernel has ~120,000 text symbols, and this
    // index lives as long as the agent (a struct with two std::string was ~10 MiB).
    struct Entry {
        uint64_t address;
        uint32_t name_offset; // block * kNameBlock + position in the block
        uint16_t name_length;
        uint16_t module; // index into modules_; 0: the core kernel
    };
    // Names are stored whole in fixed blocks, so the store never grows by copying: one
    // growing string held up to twice the names (4 MiB for 2.7 MiB here), and a second copy
    // at each growth, while the first profile loads this index at the agent's peak.
    static constexpr size_t kNameBlock = 256 * 1024;
    std::vector<Entry> symbols_; // sorted by address
    // Where `name` was stored (its name_offset); nullopt past 4 GiB of names.
    std::optional<uint32_t> store_name(std::string_view name);
    std::string_view name_of(const Entry& e) const;
    std::vector<std::unique_ptr<char[]>> name_blocks_;
    size_t last_block_used_ = kNameBlock; // bytes used in name_blocks_.back()
    std::vector<std::string> modules_{""};
    size_t malformed_ = 0;
};

// ---- /proc/PID/maps ------------------------------------------------------------------------

struct MapEntry {
    uint64_t start = 0;
    uint64_t end = 0; // one past the last byte
    uint64_t offset = 0;
    uint32_t dev_major = 0;
    uint32_t dev_minor = 0;
    uint64_t inode = 0;
    bool readable = false, writable = false, executable = false, shared = false;
    std::string path;     // "" for anonymous; "[vdso]", "[heap]", "/memfd:x", "/usr/lib/..."
    bool deleted = false; // the path ended in " (deleted)" (removed from the path)

    // A memfd: the kernel prints "/memfd:NAME (deleted)" (the name memfd_create got,
    // under a "/memfd:" prefix; always deleted since it was never linked). A real file
    // named /memfd:x that exists is not one; "memfd:x" without the slash is accepted too.
    bool is_memfd() const {
        return (deleted && path.rfind("/memfd:", 0) == 0) || path.rfind("memfd:", 0) == 0;
    }
    // Backed by a file with a path (memfds excluded: their path names no file).
    bool is_file() const { return inode != 0 && !path.empty() && path[0] == '/' && !is_memfd(); }
    bool is_anonymous() const { return path.empty() || path.rfind("[anon", 0) == 0; }
};

struct MapsParse {
    std::vector<MapEntry> entries; // in file order (sorted by start for a real maps file)
    size_t malformed = 0;
};

MapsParse parse_maps(std::string_view text);

// ---- perf maps: "START SIZE NAME" per line, hex (optional 0x) --------------------------------

struct PerfMapSymbol {
    uint64_t start = 0;
    uint64_t size = 0;
    std::string name;
};

class PerfMap {
  public:
    static PerfMap parse(std::istream& in);
    // The symbol whose [start, start+size) holds `address` (the latest entry wins when JIT
    // code was replaced at the same address); nullptr when none.
    const PerfMapSymbol* lookup(uint64_t address) const;

    size_t size() const { return symbols_.size(); }
    size_t malformed() const { return malformed_; }
    size_t bytes() const;

  private:
    std::vector<PerfMapSymbol> symbols_; // sorted by start, overlaps resolved to the newest
    size_t malformed_ = 0;
};

// ---- helpers -------------------------------------------------------------------------------

using hostprof::parse_hex; // common/text.h

} // namespace hostprof::sym
