// libFuzzer target: setting values as they arrive from the command line (`--key VALUE`
// goes through apply_setting / Setting::set). Input: "key=value" lines.
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    hostprof::Config config;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string_view::npos)
            end = text.size();
        std::string_view line = text.substr(start, end - start);
        start = end + 1;
        size_t eq = line.find('=');
        if (eq != std::string_view::npos)
            (void)hostprof::apply_setting(config, line.substr(0, eq),
                                          std::string(line.substr(eq + 1)));
    }
    for (const hostprof::Setting& s : hostprof::settings()) {
        hostprof::Config again;
        std::string shown = s.show(config);
        if (!shown.empty() && !s.set(again, shown).ok())
            __builtin_trap();
    }
    return 0;
}
