#include "unwind/builders.h"

#include <gelf.h>
#include <libelf.h>

#include "unwind/cfi.h"

namespace hostprof::unwind {

Builder default_builder() {
    return [](int fd, const std::string& name) -> Result<std::vector<Row>> {
        elf_version(EV_CURRENT);
        Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
        if (elf == nullptr)
            return Error{0, name + ": not an ELF file (" + elf_errmsg(-1) + ")"};
        auto cfi = build_cfi_table(elf, nullptr);
        elf_end(elf);
        if (!cfi)
            return Error{cfi.error().err, name + ": " + cfi.error().message()};
        return std::move(cfi->rows);
    };
}

} // namespace hostprof::unwind
