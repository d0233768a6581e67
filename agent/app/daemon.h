// `hostprof run`: probe, plan, start the collectors the plan allows, consume until
// SIGINT/SIGTERM (or --duration), then detach everything.
#pragma once

#include <memory>

#include "agent/config/config.h"
#include "agent/pipeline/pipeline.h"
#include "kernel-compat/planner.h"

namespace hostprof {

// Returns the process exit code.
int run_agent(const Config& config);

// Shared by run and record: the plan inputs from the configuration, and the profiling
// pipeline the plan allows (on-CPU and/or off-CPU, with the symbolizer as resolver).
compat::PlanConfig plan_config(const Config& config);
compat::ProbeOptions probe_options(const Config& config);
Result<std::unique_ptr<Pipeline>> start_profiling(const Config& config,
                                                  const compat::AttachPlan& plan);

// `hostprof probe`: prints the probe results and the plan. Returns the exit code.
int run_probe(const Config& config, bool json);

} // namespace hostprof
