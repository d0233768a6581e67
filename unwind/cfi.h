// The CFI table builder: compiles one x86-64 ELF file's call-frame information
// (.eh_frame, or .debug_frame when that is all there is, maybe in a separate debug file)
// into unwind rows (table.h). libdw interprets the CFI; this file enumerates the row
// boundaries and classifies each row into what the BPF walker can follow (bpf/unwind.h).
// Pure: reads the files it is given, no privilege, no global state.
#pragma once

#include <elfutils/libdw.h>
#include <libelf.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "unwind/table.h"

namespace hostprof::unwind {

enum class CfiSource {
    None,       // no CFI at all (CfiTable::reason says why)
    EhFrame,    // the file's .eh_frame
    DebugFrame, // .debug_frame (of the file itself, or of the separate debug file)
};
const char* cfi_source_name(CfiSource s);

struct CfiStats {
    CfiSource source = CfiSource::None;
    bool from_debug_file = false; // .debug_frame read from the separate debug file
    uint32_t fdes = 0;            // FDEs with a non-empty address range
    uint32_t rows = 0;            // rows after normalize()
    uint32_t invalid_rows = 0;    // HP_UNW_INVALID rows after normalize()
    uint32_t bad_fdes = 0;        // FDEs skipped (unknown pointer encoding) or whose CFI
                                  // libdw rejected (their range is INVALID)
    uint32_t truncated_fdes = 0;  // FDEs cut short by the work bound (rest INVALID)
    uint64_t build_ns = 0;        // wall time of the whole build
};

struct CfiTable {
    std::vector<Row> rows; // normalized; file addresses (ELF p_vaddr space)
    CfiStats stats;
    std::string reason; // why the table is empty when stats.source == None
};

// Builds the table of the ELF file at `path`; `debug_path` (optional) is its separate
// debug file, read only when `path` has no .eh_frame. A file without any CFI gives an
// empty table (source None, with a reason); an unreadable, non-x86-64 or corrupt file
// gives an Error.
Result<CfiTable> build_cfi_table(const std::string& path, const std::string& debug_path = "");

// The same on ELF descriptors the caller opened (e.g. through /proc/PID/root or
// map_files); `debug_elf` may be null. Neither is modified beyond what libdw does when
// it reads them (it inflates a compressed .debug_frame in memory).
Result<CfiTable> build_cfi_table(Elf* elf, Elf* debug_elf);

// The rule of one libdw frame state, as a row (pc left 0). Exposed for tests, which
// compare tables with libdw's answer at every address.
Row classify_frame(Dwarf_Frame* frame);

} // namespace hostprof::unwind
