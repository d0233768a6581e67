// Unwind tables: the rows the BPF walker follows (bpf/unwind.h), in file addresses.
//
// A builder (cfi.h for .eh_frame/.debug_frame, gopclntab.h for Go) turns one ELF file into
// a sorted vector of Row; pack() cuts it into the 64 KiB pages the kernel side indexes.
// Pure: bytes in, rows out, no privilege.
#pragma once

#include <cstdint>
#include <vector>

#include <linux/types.h>

#include "bpf/unwind.h"

namespace hostprof::unwind {

// One rule, valid from `pc` (a file address: ELF p_vaddr space) up to the next row's pc.
struct Row {
    uint64_t pc = 0;
    uint8_t kind = HP_UNW_NONE; // enum hp_unw_row_kind, maybe | HP_UNW_ROW_GO
    uint8_t rbp = HP_UNW_RBP_SAME;
    int16_t cfa_off = 0;
    int16_t rbp_off = 0;

    bool same_rule(const Row& o) const {
        return kind == o.kind && rbp == o.rbp && cfa_off == o.cfa_off && rbp_off == o.rbp_off;
    }
    bool operator==(const Row& o) const { return pc == o.pc && same_rule(o); }
};

// Sorts by pc, keeps the last row of equal pcs, and drops a row whose rule equals the
// previous one (it changes nothing for the walker).
void normalize(std::vector<Row>& rows);

// The rule at a file address: the last row at or before it (nullptr before the first).
const Row* find(const std::vector<Row>& rows, uint64_t pc);

// A table as the maps hold it: rows in page order, each page's first row at its offset 0
// (the rule in force where the page begins, repeated when it started in an earlier page).
struct PackedPage {
    uint32_t page = 0;  // file address >> HP_UNW_PAGE_SHIFT
    uint32_t first = 0; // index into PackedTable::rows
    uint32_t count = 0;
};
struct PackedTable {
    std::vector<PackedPage> pages;
    std::vector<hp_unw_row> rows;
};

// `rows` normalized. Pages between rows that hold only a NONE rule carry no rows (the
// walker treats a missing page as NONE).
PackedTable pack(const std::vector<Row>& rows);

// The walker's lookup in a packed table (the same search the BPF side does), for tests.
const hp_unw_row* find_packed(const PackedTable& t, uint64_t pc);

} // namespace hostprof::unwind
