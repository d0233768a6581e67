// libFuzzer target: the build-id reader (PT_NOTE / SHT_NOTE walking) on its own, so the
// note parser gets the fuzzer's full attention (the ELF target reaches it too, after
// everything else in the image loader).
#include <libelf.h>

#include <cstdint>
#include <vector>

#include "symbolizer/elf_image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const bool init = elf_version(EV_CURRENT) != EV_NONE;
    if (!init)
        return 0;
    std::vector<char> copy(data, data + size); // libelf may write through the pointer
    Elf* elf = elf_memory(copy.data(), copy.size());
    if (elf == nullptr)
        return 0;
    (void)hostprof::sym::read_build_id(elf);
    elf_end(elf);
    return 0;
}
