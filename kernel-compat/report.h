// `hostprof probe` output: the probe results and the plan, as a table or as JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "kernel-compat/features.h"
#include "kernel-compat/planner.h"

namespace hostprof::compat {

nlohmann::json to_json(const Features& features, const AttachPlan& plan);
std::string to_table(const Features& features, const AttachPlan& plan);

} // namespace hostprof::compat
