// `hostprof run`: probe, plan, start the collectors the plan allows, consume until
// SIGINT/SIGTERM (or --duration), then detach everything.
#pragma once

#include "agent/config.h"

namespace hostprof {

// Returns the process exit code.
int run_agent(const Config& config);

// `hostprof probe`: prints the probe results and the plan. Returns the exit code.
int run_probe(const Config& config, bool json);

} // namespace hostprof
