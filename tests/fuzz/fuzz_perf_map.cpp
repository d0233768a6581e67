// libFuzzer target: the perf map (/tmp/perf-PID.map) parser and lookups.
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>

#include "symbolizer/parsers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    auto m = hostprof::sym::PerfMap::parse(in);
    for (size_t i = 0; i + 8 <= size && i < 32 * 8; i += 8) {
        uint64_t a;
        std::memcpy(&a, data + i, 8);
        (void)m.lookup(a);
    }
    return 0;
}
