#include "unwind/table.h"

#include <algorithm>

namespace hostprof::unwind {

void normalize(std::vector<Row>& rows) {
    // In place: a libLLVM-sized table has a million rows, and a second copy of them (or
    // stable_sort's buffer) was the largest allocation of its build. The builders emit
    // rows in address order, so the sort is usually skipped.
    auto by_pc = [](const Row& a, const Row& b) { return a.pc < b.pc; };
    if (!std::is_sorted(rows.begin(), rows.end(), by_pc))
        std::stable_sort(rows.begin(), rows.end(), by_pc);
    size_t n = 0; // rows[0, n) is the result so far
    for (size_t i = 0; i < rows.size(); ++i) {
        const Row r = rows[i];
        if (n > 0 && rows[n - 1].pc == r.pc)
            --n; // the last row of equal pcs wins
        if (n > 0 && rows[n - 1].same_rule(r))
            continue;
        rows[n++] = r;
    }
    rows.resize(n);
}

const Row* find(const std::vector<Row>& rows, uint64_t pc) {
    auto it = std::upper_bound(rows.begin(), rows.end(), pc,
                               [](uint64_t v, const Row& r) { return v < r.pc; });
    if (it == rows.begin())
        return nullptr;
    return &*(it - 1);
}

namespace {

hp_unw_row to_kernel(const Row& r, uint64_t pc) {
    hp_unw_row k{};
    k.pc_lo = static_cast<uint16_t>(pc & (HP_UNW_PAGE_SIZE - 1));
    k.kind = r.kind;
    k.rbp = r.rbp;
    k.cfa_off = r.cfa_off;
    k.rbp_off = r.rbp_off;
    return k;
}

} // namespace

PackedTable pack(const std::vector<Row>& rows) {
    PackedTable t;
    t.rows.reserve(rows.size() + rows.size() / 8);
    size_t i = 0;
    while (i < rows.size()) {
        // The page of the next row, and the rule in force at that page's start.
        const uint64_t page = rows[i].pc >> HP_UNW_PAGE_SHIFT;
        const uint64_t page_start = page << HP_UNW_PAGE_SHIFT;
        const Row* carried = i > 0 ? &rows[i - 1] : nullptr;
        // Pages with nothing but a carried-over rule: emit one row each (long functions
        // span pages), unless that rule is NONE.
        if (carried && carried->kind != HP_UNW_NONE) {
            uint64_t p = (carried->pc >> HP_UNW_PAGE_SHIFT) + 1;
            for (; p < page; ++p) {
                t.pages.push_back(
                    {static_cast<uint32_t>(p), static_cast<uint32_t>(t.rows.size()), 1});
                t.rows.push_back(to_kernel(*carried, p << HP_UNW_PAGE_SHIFT));
            }
        }
        PackedPage pp{static_cast<uint32_t>(page), static_cast<uint32_t>(t.rows.size()), 0};
        if (rows[i].pc != page_start) {
            Row start = carried ? *carried : Row{};
            if (!carried)
                start.kind = HP_UNW_NONE;
            t.rows.push_back(to_kernel(start, page_start));
        }
        for (; i < rows.size() && (rows[i].pc >> HP_UNW_PAGE_SHIFT) == page; ++i)
            t.rows.push_back(to_kernel(rows[i], rows[i].pc));
        pp.count = static_cast<uint32_t>(t.rows.size()) - pp.first;
        t.pages.push_back(pp);
    }
    return t;
}

const hp_unw_row* find_packed(const PackedTable& t, uint64_t pc) {
    const uint32_t page = static_cast<uint32_t>(pc >> HP_UNW_PAGE_SHIFT);
    auto it = std::lower_bound(t.pages.begin(), t.pages.end(), page,
                               [](const PackedPage& p, uint32_t v) { return p.page < v; });
    if (it == t.pages.end() || it->page != page)
        return nullptr;
    const uint16_t lo = static_cast<uint16_t>(pc & (HP_UNW_PAGE_SIZE - 1));
    // The same search as the BPF walker: the last row whose pc_lo <= lo.
    uint32_t l = 0, r = it->count; // answer in [l, r)
    for (int step = 0; step < HP_UNW_SEARCH_STEPS && r - l > 1; ++step) {
        const uint32_t mid = l + (r - l) / 2;
        if (t.rows[it->first + mid].pc_lo <= lo)
            l = mid;
        else
            r = mid;
    }
    return &t.rows[it->first + l];
}

} // namespace hostprof::unwind
