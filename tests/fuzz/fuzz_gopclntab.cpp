// libFuzzer target: Go unwind rows (unwind/gopclntab.h), from the input as a bare .gopclntab
// (with the same bytes as code at the table's text address) and as an ELF file.
#include <libelf.h>

#include <cstdint>
#include <vector>

#include "unwind/gopclntab.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace hostprof::unwind;
    GoImage img;
    img.pclntab = data;
    img.pclntab_size = size;
    img.code.push_back({0x1000, data, size});
    GoOptions opt;
    opt.max_functions = 1 << 16;
    auto r = decode_pclntab(img, opt);
    if (r.ok()) {
        // Normalized: sorted, no two rows at one address, every row a Go row.
        for (size_t i = 0; i < r->rows.size(); ++i)
            if (!(r->rows[i].kind & HP_UNW_ROW_GO) || (i && r->rows[i - 1].pc >= r->rows[i].pc))
                __builtin_trap();
        (void)pack(r->rows);
    }
    if (elf_version(EV_CURRENT) == EV_NONE)
        return 0;
    std::vector<char> copy(data, data + size); // libelf may write to its image
    if (Elf* e = elf_memory(copy.data(), copy.size())) {
        (void)build_go_rows(e, "fuzz.elf", opt);
        elf_end(e);
    }
    return 0;
}
