#include "unwind/builders.h"

#include <gelf.h>
#include <libelf.h>

#include <algorithm>
#include <cerrno>

#include "unwind/cfi.h"
#include "unwind/gopclntab.h"

namespace hostprof::unwind {

std::vector<Row> overlay(const std::vector<Row>& base, const std::vector<Row>& top) {
    if (top.empty())
        return base;
    if (base.empty())
        return top;
    std::vector<uint64_t> pcs;
    pcs.reserve(base.size() + top.size());
    for (const Row& r : base)
        pcs.push_back(r.pc);
    for (const Row& r : top)
        pcs.push_back(r.pc);
    std::sort(pcs.begin(), pcs.end());
    pcs.erase(std::unique(pcs.begin(), pcs.end()), pcs.end());
    std::vector<Row> out;
    out.reserve(pcs.size());
    size_t bi = 0, ti = 0; // next row of each at or after pc
    const Row* b = nullptr;
    const Row* t = nullptr;
    for (uint64_t pc : pcs) {
        while (bi < base.size() && base[bi].pc <= pc)
            b = &base[bi++];
        while (ti < top.size() && top[ti].pc <= pc)
            t = &top[ti++];
        Row r = (t != nullptr && (t->kind & HP_UNW_KIND_MASK) != HP_UNW_NONE) ? *t
                : b != nullptr                                                ? *b
                                                                              : Row{};
        r.pc = pc;
        out.push_back(r);
    }
    normalize(out);
    return out;
}

Builder default_builder() {
    return [](int fd, const std::string& name) -> Result<std::vector<Row>> {
        elf_version(EV_CURRENT);
        Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
        if (elf == nullptr)
            return Error{0, name + ": not an ELF file (" + elf_errmsg(-1) + ")"};
        auto cfi = build_cfi_table(elf, nullptr);
        // Go code has no CFI: its rows come from .gopclntab, over the CFI of the rest
        // (cgo's C code, the C runtime of a cgo binary).
        auto go = build_go_rows(elf, name);
        elf_end(elf);
        if (!cfi && !go)
            return Error{cfi.error().err, name + ": " + cfi.error().message()};
        if (!go) // not Go (ENOENT), or a pclntab we cannot read: Go code gets FP steps
            return std::move(cfi->rows);
        if (!cfi)
            return std::move(go->rows);
        return overlay(cfi->rows, go->rows);
    };
}

} // namespace hostprof::unwind
