// libFuzzer target: the DWARF line-table reader (symbolizer/line_table.h), the input as
// .debug_line (and as the string sections its names may point into), every unit in turn.
#include <cstdint>
#include <cstring>
#include <span>

#include "symbolizer/line_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using hostprof::sym::LineSections;
    using hostprof::sym::LineTable;
    LineSections s;
    s.debug_line = std::span<const uint8_t>(data, size);
    s.debug_line_str = s.debug_line;
    s.debug_str = s.debug_line;
    uint64_t offset = 0;
    for (int unit = 0; unit < 8 && offset < size; ++unit) {
        auto t = LineTable::parse(s, offset, unit % 2 == 0 ? "/comp" : std::string_view(), 8);
        if (!t)
            break;
        for (size_t i = 0; i + 8 <= size && i < 16 * 8; i += 8) {
            uint64_t a;
            std::memcpy(&a, data + i, 8);
            (void)t->find(a);
        }
        for (size_t f = 0; f < t->files() && f < 64; ++f)
            (void)t->file_name(f);
        (void)t->bytes();
        // The next unit: unit_length (32-bit DWARF) + 4.
        uint32_t len = 0;
        if (offset + 4 > size)
            break;
        std::memcpy(&len, data + offset, 4);
        if (len == 0 || len >= 0xfffffff0u)
            break;
        offset += uint64_t{len} + 4;
    }
    return 0;
}
