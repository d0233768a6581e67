// Unwind rows for Go code from `.gopclntab` (amd64): Go emits no .eh_frame for its own
// code, but the runtime's traceback tables hold the stack-pointer delta of every PC.
//
// Per function, the pcsp table gives the bytes the function has pushed below its entry
// SP at each PC; the rule is CFA = rsp + delta + 8 (the return address at CFA - 8). Once
// the prologue has saved the caller's BP (PUSHQ BP, or SUBQ $n, SP then MOVQ BP,
// n-8(SP)) it is at CFA - 16; the prologue is recognised from the code bytes. Functions
// that end the stack (the runtime's TOPFRAME ones: goexit, mstart, rt0_go, ...) or move SP
// in ways the table cannot say (SPWRITE: systemstack, asmcgocall, gogo, mcall, ...) get an
// END row, as the Go runtime's own profiler stops there; but asmcgocall's call into C,
// recognised in its code, gets a GO_CGO row (the goroutine's SP from the g0 stack's saved g
// and depth). Rows carry HP_UNW_ROW_GO.
//
// Formats: Go 1.2-1.15 (magic 0xfffffffb), 1.16-1.17 (0xfffffffa), 1.18-1.19
// (0xfffffff0), 1.20+ (0xfffffff1); little-endian, 8-byte pointers, PC quantum 1.
#pragma once

#include <libelf.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "unwind/table.h"

namespace hostprof::unwind {

struct GoTable {
    std::vector<Row> rows; // normalized, file addresses (ELF p_vaddr space)
    uint32_t magic = 0;    // the pclntab's
    std::string version;   // from .go.buildinfo ("go1.19.8"), empty when not found
    uint64_t text_start = 0;
    uint64_t pclntab_addr = 0; // file address of the table (0 when not known)

    struct Counts {
        size_t functions = 0;      // in the function table
        size_t frames = 0;         // whose caller's BP save was recognised (rbp at CFA-16)
        size_t end_functions = 0;  // END rows: TOPFRAME or SPWRITE (or named so, before 1.17)
        size_t unknown_frames = 0; // a frame but no recognised BP save (rbp SAME)
        size_t invalid_ranges = 0; // delta < 0 or too large for a row (INVALID rows)
        size_t no_pcsp = 0;        // functions without a pcsp table (NONE rows)
        size_t gaps = 0;           // code between functions not covered (NONE rows)
        size_t cgo_switches = 0;   // asmcgocall's switch to g0 crossed (GO_CGO rows)
    } counts;
};

struct GoOptions {
    // Look for the table's header in the file's loadable bytes when no section names it
    // (section headers stripped).
    bool scan = true;
    size_t max_functions = size_t{1} << 22;
    // The span of the functions' code (checked against the code bytes when there are some).
    uint64_t max_text = uint64_t{1} << 30;
};

// Bytes of executable code by file address (for the prologue and padding checks).
struct CodeBytes {
    uint64_t addr = 0;
    const uint8_t* bytes = nullptr;
    size_t size = 0;
};

// The decoder alone, for a table already in memory. `text_start` is runtime.text for the
// 1.18+ formats (0: the header's). `code` may be empty: then no BP save is recognised
// (rbp SAME everywhere) and every gap between functions is NONE.
struct GoImage {
    const uint8_t* pclntab = nullptr;
    size_t pclntab_size = 0;
    uint64_t pclntab_addr = 0;
    uint64_t text_start = 0;
    std::vector<CodeBytes> code;
};
Result<GoTable> decode_pclntab(const GoImage& img, const GoOptions& opt = {});

// From an ELF file. An error with err == ENOENT: not a Go binary (no pclntab); ENOTSUP: a
// Go binary for another architecture; otherwise (EINVAL) a corrupt table.
Result<GoTable> build_go_rows(const std::string& path, const GoOptions& opt = {});
Result<GoTable> build_go_rows(int fd, const std::string& name, const GoOptions& opt = {});
Result<GoTable> build_go_rows(Elf* elf, const std::string& name, const GoOptions& opt = {});

} // namespace hostprof::unwind
