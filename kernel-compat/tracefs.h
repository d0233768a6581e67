// tracefs: classic tracepoints need it mounted, and it is not mounted at boot everywhere.
#pragma once

#include <string>

#include "common/result.h"

namespace hostprof::compat {

// True when `path` is a tracefs mount (checked with statfs, not by reading a file).
bool tracefs_is_mounted(const std::string& path);

// Mounts tracefs at `path` unless it is already there.
Status ensure_tracefs(const std::string& path);

} // namespace hostprof::compat
