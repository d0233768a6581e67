// LineTable: one compile unit's DWARF line-number table (.debug_line), read by our own code
// instead of libdw's dwarf_getsrclines, which holds 52-80 bytes per row plus a linked list
// while parsing. Rows are kept in 16 bytes each and ordered exactly as libdw orders them, so
// that find() gives dwarf_getsrc_die's answer and file_name() gives dwarf_linesrc's /
// dwarf_filesrc's string.
//
// Supported: DWARF 2-5, 32- and 64-bit DWARF, all standard/extended/special opcodes, VLIW
// op_index, v5 entry formats (strx names are unknown: no .debug_str_offsets here).
//
// Untrusted input: every read is bounds-checked; corrupt or truncated input gives an Error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace hostprof::sym {

// Views of the sections a line table refers to; any may be empty.
struct LineSections {
    std::span<const uint8_t> debug_line;
    std::span<const uint8_t> debug_line_str;
    std::span<const uint8_t> debug_str;
    bool big_endian = false; // the object's byte order (ELFDATA2MSB)
};

class LineTable {
  public:
    struct Line {
        std::string_view file; // as dwarf_linesrc gives it; "" when the name is unknown
        uint32_t file_index = 0;
        uint32_t line = 0;
    };

    static constexpr size_t kMaxRows = 64u << 20;

    // Parses the unit at `stmt_list_offset` (DW_AT_stmt_list) of s.debug_line. `comp_dir`
    // is the CU's DW_AT_comp_dir; a null view (data() == nullptr) when the CU has none
    // (libdw then leaves names in directory 0 relative; "" gives "/name"). `address_size_hint` (the
    // CU's address size) is used for DW_LNE_set_address when the header has none (before DWARF 5);
    // 0 = from the operand length.
    static Result<LineTable> parse(const LineSections& s, uint64_t stmt_list_offset,
                                   std::string_view comp_dir, uint8_t address_size_hint);

    // dwarf_getsrc_die semantics: the last row (in libdw's order) whose address <= addr;
    // nothing when there is none or it ends a sequence.
    std::optional<Line> find(uint64_t addr) const;

    // The file's name as dwarf_filesrc gives it for this index; "" when out of range or
    // unknown.
    std::string_view file_name(size_t index) const;
    size_t files() const { return file_offsets_.size(); }

    size_t rows() const { return rows_.size(); }
    size_t bytes() const; // heap bytes held (from capacities)

    // Row access for tests: address, line, file index, end_sequence.
    struct RowView {
        uint64_t addr;
        uint32_t line;
        uint32_t file;
        bool end_sequence;
    };
    RowView row(size_t i) const;

  private:
    struct Row {
        uint64_t addr;
        uint32_t line;
        uint32_t file_end; // file index << 1 | end_sequence
    };
    static_assert(sizeof(Row) == 16);

    std::vector<Row> rows_;
    std::string names_;                  // file names, NUL-separated
    std::vector<uint32_t> file_offsets_; // file index -> offset into names_ (UINT32_MAX: unknown)
};

} // namespace hostprof::sym
