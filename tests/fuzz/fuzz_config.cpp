// libFuzzer target: the agent's YAML configuration file (parse_config_yaml).
#include <cstdint>
#include <string>

#include "agent/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    auto c = hostprof::parse_config_yaml(text, "fuzz.yaml", hostprof::Config{});
    if (c.ok()) {
        // Whatever was accepted shows back as values that are accepted again.
        for (const hostprof::Setting& s : hostprof::settings()) {
            hostprof::Config again;
            std::string shown = s.show(*c);
            if (!shown.empty() && !s.set(again, shown).ok())
                __builtin_trap();
        }
    }
    return 0;
}
