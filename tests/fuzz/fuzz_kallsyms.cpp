// libFuzzer target: the /proc/kallsyms parser and lookups.
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>

#include "symbolizer/parsers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    auto k = hostprof::sym::Kallsyms::parse(in);
    for (size_t i = 0; i + 8 <= size && i < 32 * 8; i += 8) {
        uint64_t a;
        std::memcpy(&a, data + i, 8);
        (void)k.lookup(a);
    }
    return 0;
}
