// libFuzzer target: the CFI table builder (unwind/cfi.h) on untrusted ELF files. An input
// starting with 0x7f is a whole ELF file; any other input is the bytes after its first,
// as the .eh_frame of a minimal ELF file (tests/unwind_elf_writer.h), which lets the
// fuzzer work on CFI itself. Every build must end (a table or an error) without a crash,
// and a table must be sorted and packable.
#include <libelf.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "tests/unwind_elf_writer.h"
#include "unwind/cfi.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace hostprof::unwind;
    if (size == 0)
        return 0;
    std::string bytes(reinterpret_cast<const char*>(data), size);
    if (data[0] != 0x7f)
        bytes = testing_elf::elf_with_eh_frame(bytes.substr(1));
    elf_version(EV_CURRENT);
    Elf* elf = elf_memory(bytes.data(), bytes.size());
    if (elf == nullptr)
        return 0;
    auto t = build_cfi_table(elf, nullptr);
    elf_end(elf);
    if (!t.ok())
        return 0;
    for (size_t i = 1; i < t->rows.size(); ++i)
        if (t->rows[i - 1].pc >= t->rows[i].pc)
            std::abort();
    const PackedTable p = pack(t->rows);
    for (const Row& r : t->rows)
        if (find_packed(p, r.pc) == nullptr && r.kind != HP_UNW_NONE)
            std::abort();
    return 0;
}
