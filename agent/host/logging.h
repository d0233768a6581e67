// Structured logs on stderr: human text by default, one JSON object per line with
// --log-format json ({"ts":..., "level":..., "msg":...}).
#pragma once

#include <string>

namespace hostprof {

void init_logging(const std::string& format, const std::string& level);

} // namespace hostprof
