// ElfImage: everything the symbolizer keeps about one ELF object, read once and shared by
// every process that maps it (keyed by build-id): load segments (process file offset ->
// ELF virtual address), the function symbols of .symtab (falling back to the separate debug
// file's .symtab, else .dynsym merged with the xz-compressed .gnu_debugdata's .symtab), build-id,
// .gnu_debuglink, and optionally DWARF (libdw) for file:line and inline frames, found in the file
// itself, under DEBUG_DIR/.build-id/xx/rest.debug, or through the debuglink locations.
//
// Untrusted input: every offset and count is checked against the file size before use;
// a malformed file gives an Error, never a crash.
#pragma once

#include <elfutils/libdw.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/elf_handle.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "symbolizer/line_table.h"
#include "symbolizer/safe_open.h"

namespace hostprof::sym {

struct SymbolizedFrame {
    std::string function; // demangled when demangling is on; empty when unknown
    std::string file;     // source file; empty without DWARF
    int line = 0;         // 0 when unknown
    bool inlined = false; // this frame was inlined into the next (outer) one
};

struct ElfLoadOptions {
    bool dwarf = true; // look for and index DWARF
    std::vector<std::string> debug_dirs = {"/usr/lib/debug"};
    uint64_t max_file_bytes = 4ull << 30;       // larger files are refused
    uint64_t max_debugdata_bytes = 64ull << 20; // cap on a decompressed .gnu_debugdata
};

enum class ElfLookup { Found, NoSymbol, Stripped };

// Where an object's companion files (a .gnu_debuglink target next to it, debug directories
// inside a container) are looked up, and who opens them. Every such open goes through
// `opener` (symbolizer/safe_open.h); debug files are capped at ElfLoadOptions::max_file_bytes.
struct ElfOrigin {
    SafeOpener* opener = nullptr; // null: a private opener (load_path, fuzzing)
    int root_fd = -1;             // the process's root (PROC/PID/root); -1: the host's "/"
    std::string path_in_root;     // the object's path as its process sees it ("" unknown)
};

class ElfImage {
  public:
    // Reads an opened file. `path` is the file's name as the process sees it (for the
    // debuglink locations and error messages).
    static Result<std::shared_ptr<ElfImage>> load(UniqueFd fd, const std::string& path,
                                                  const ElfLoadOptions& options,
                                                  const ElfOrigin& origin = {});
    static Result<std::shared_ptr<ElfImage>> load_path(const std::string& path,
                                                       const ElfLoadOptions& options);

    ElfImage(const ElfImage&) = delete;
    ElfImage& operator=(const ElfImage&) = delete;
    ~ElfImage();

    // File offset (of a process address in a mapping: addr - map.start + map.offset) to the
    // ELF virtual address, through the PT_LOAD segment containing it.
    std::optional<uint64_t> file_offset_to_vaddr(uint64_t offset) const;

    // Frames for an ELF virtual address, innermost first (inlined callees before their
    // caller). `inlines` false: one frame, from the symbol table and the line table.
    ElfLookup symbolize(uint64_t vaddr, bool demangle, bool inlines,
                        std::vector<SymbolizedFrame>& out) const;

    const std::string& build_id() const { return build_id_; } // hex, may be empty
    const std::string& debuglink() const { return debuglink_; }
    const std::string& debug_file() const { return debug_file_; } // where DWARF came from
    bool has_symbols() const { return !symbols_.empty(); }
    // DWARF found (opened on the first lookup that needs it).
    bool has_dwarf() const { return dwarf_ != nullptr || dwarf_pending_; }
    size_t symbol_count() const { return symbols_.size(); }
    // A separate debug file found later (debuginfod): its .symtab replaces .dynsym-only
    // symbols, its DWARF is used when the object has none. The build-ids must match.
    // Not thread-safe: the Symbolizer calls it under its lock. true when anything changed.
    bool attach_debug_file(ElfFile f, const std::string& name, bool want_dwarf);
    // Whether a separate debug file would add anything.
    bool wants_debug_file(bool want_dwarf) const {
        return !full_symtab_ || (want_dwarf && !has_dwarf());
    }

    // Symbols taken from .gnu_debugdata (MiniDebugInfo), and why it was unusable if it was.
    size_t minidebuginfo_symbols() const { return minidebuginfo_symbols_; }
    const std::string& minidebuginfo_error() const { return minidebuginfo_error_; }
    // Estimated heap bytes held (symbol table, names, DWARF index and libdw's state,
    // line tables included).
    size_t bytes() const { return bytes_; }
    // Gives back what lookups accumulated: the units' line tables (ours, line_table.h),
    // libdw's per-unit state (abbreviations; freed by ending and restarting the Dwarf
    // handle, the index of this class holds offsets and stays valid) and the pages of the
    // mapped debug data that
    // parsing touched (dropped from this process's page tables; the next lookup faults
    // them in again from the page cache). Not thread-safe. Returns the heap bytes freed
    // (estimated).
    size_t release_memory();
    // What release_memory() would give back: the line tables (exact) plus the debug
    // data the per-unit walks read through the file mapping (the pages they touched stay
    // resident until dropped). A lookup in a large DWARF file adds megabytes: within a
    // Symbolizer::user_batch the sum over all objects is bounded (lookup_memory_bytes).
    size_t transient_bytes() const { return lines_bytes_ + walked_bytes_; }
    // The DWARF unit an address belongs to (the first in .debug_info claiming it), as an
    // opaque id; UINT64_MAX without DWARF or unit.
    uint64_t unit_of(uint64_t vaddr) const;

    struct Segment {
        uint64_t vaddr, memsz, offset, filesz;
        bool executable;
    };
    const std::vector<Segment>& segments() const { return segments_; }

  private:
    ElfImage() = default;
    struct Symbol {
        uint64_t address;
        uint64_t size;
        uint32_t name;  // offset into names_
        uint32_t order; // position in the symbol table(s): aliases keep table order
    };
    struct CuRange {
        uint64_t low, high;
        uint64_t die_offset;
    };
    const Symbol* find_symbol(uint64_t vaddr) const;
    // The unit dwarf_frames reads for vaddr; further claimants into `others` when given.
    const CuRange* find_unit(uint64_t vaddr, std::vector<const CuRange*>* others) const;
    Status read_symbol_table(Elf* e, Elf_Scn* scn);
    void sort_symbols();
    void account_bytes();
    static bool has_debug_info(Elf* e);
    bool try_dwarf(ElfFile f, const std::string& name); // keeps f for open_pending_dwarf
    bool open_pending_dwarf();
    void open_dwarf(ElfFile& self, bool own_debug_info, const std::string& path,
                    const ElfLoadOptions& options, SafeOpener& opener, const ElfOrigin& origin);
    void index_dwarf();
    void drop_mapped_pages() const;
    bool dwarf_frames(uint64_t vaddr, const Symbol* sym, bool demangle, bool inlines,
                      std::vector<SymbolizedFrame>& out) const;

    std::vector<Segment> segments_;
    std::vector<Symbol> symbols_; // sorted by address
    std::string names_;           // NUL-separated symbol names
    std::string build_id_;
    std::string debuglink_;
    std::string debug_file_;
    bool full_symtab_ = false; // symbols_ from a .symtab (here or in a debug file)
    size_t minidebuginfo_symbols_ = 0;
    std::string minidebuginfo_error_;
    std::optional<ElfFile> dwarf_file_; // the file libdw reads (this one or the debug file)
    Dwarf* dwarf_ = nullptr;
    bool dwarf_pending_ = false; // dwarf_file_ has DWARF, not opened yet
    std::vector<CuRange> cu_ranges_;
    // Per compile unit, built on first use: every subprogram, inlined subroutine and entry
    // point with code, wherever it is nested (binutils records them all, including
    // functions of local classes and lambdas inside abstract instances), with the nearest
    // enclosing function (the caller of an inlined subroutine); and their pc ranges sorted
    // by low, with the running maximum of high for the backward scan.
    struct FuncDie {
        uint64_t die_offset;
        int32_t parent; // index of the enclosing function DIE, -1 none
        bool inlined;
    };
    struct FuncRange {
        uint64_t low, high;
        uint32_t func; // index into CuFunctions::funcs
    };
    struct CuFunctions {
        std::vector<FuncDie> funcs;
        std::vector<FuncRange> ranges;
        std::vector<uint64_t> max_high;
    };
    const CuFunctions& cu_functions(Dwarf_Die* cudie, uint64_t cu_offset) const;
    static size_t cu_functions_bytes(const CuFunctions& f);
    mutable std::unordered_map<uint64_t, CuFunctions> cu_functions_;
    // Demangled symbol names, by offset in names_, filled on first use.
    mutable std::unordered_map<uint32_t, std::string> demangled_;
    const std::string& symbol_name(const Symbol& s, bool demangle) const;
    mutable std::string scratch_;
    mutable size_t bytes_ = 0;
    // Line tables read since the last release, by unit DIE offset (nullopt: the unit has
    // none, or it did not parse), and the bytes they hold (~16 per row: line_table.h).
    mutable std::unordered_map<uint64_t, std::optional<LineTable>> line_tables_;
    mutable size_t lines_bytes_ = 0;
    const LineTable* line_table(Dwarf_Die* cu, uint64_t die_offset) const;
    mutable size_t walked_bytes_ = 0; // sizes of the units walked since the last release
    size_t inflated_bytes_ = 0;       // compressed debug sections libelf inflated for libdw
};

// The build-id note of an open ELF (hex), or "" when none; Error when a note is malformed.
Result<std::string> read_build_id(Elf* elf);

} // namespace hostprof::sym
