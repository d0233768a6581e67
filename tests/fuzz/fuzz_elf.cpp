// libFuzzer target: the ELF reader (headers, sections, symbol tables, notes, DWARF).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "symbolizer/elf_image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    hostprof::UniqueFd fd(::memfd_create("fuzz-elf", MFD_CLOEXEC));
    if (!fd || ::write(fd.get(), data, size) != static_cast<ssize_t>(size))
        return 0;
    hostprof::sym::ElfLoadOptions o;
    o.debug_dirs = {}; // only the input itself
    auto img = hostprof::sym::ElfImage::load(std::move(fd), "fuzz.elf", o);
    if (!img.ok())
        return 0;
    std::vector<hostprof::sym::SymbolizedFrame> frames;
    for (size_t i = 0; i + 8 <= size && i < 64 * 8; i += 8) {
        uint64_t a;
        std::memcpy(&a, data + i, 8);
        frames.clear();
        (void)(*img)->symbolize(a, true, true, frames);
        (void)(*img)->file_offset_to_vaddr(a);
    }
    for (const auto& s : (*img)->segments()) {
        frames.clear();
        (void)(*img)->symbolize(s.vaddr + s.memsz / 2, true, true, frames);
    }
    return 0;
}
