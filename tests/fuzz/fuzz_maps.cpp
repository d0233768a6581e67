// libFuzzer target: the /proc/PID/maps parser.
#include <cstdint>
#include <string_view>

#include "symbolizer/parsers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto p = hostprof::sym::parse_maps(std::string_view(reinterpret_cast<const char*>(data), size));
    for (const auto& e : p.entries)
        (void)(e.is_file() || e.is_memfd() || e.is_anonymous());
    return 0;
}
