// libFuzzer target: the web configuration file (--web-config) and the Basic authorization
// header decoder.
#include <cstdint>
#include <string>

#include "agent/serve/web_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    (void)hostprof::parse_web_config(text, "fuzz-web.yml");
    (void)hostprof::decode_basic_credentials("Basic " + text);
    return 0;
}
