// The FrameResolver the agent uses: the symbolizer (symbolizer/) behind the interface the
// profile builder calls.
#pragma once

#include <memory>

#include "agent/pipeline/profile_builder.h"
#include "symbolizer/symbolizer.h"

namespace hostprof {

struct Config;

// The symbolizer's options from the agent configuration (debuginfod settings).
sym::SymbolizerOptions symbolizer_options(const Config& config);

std::unique_ptr<FrameResolver> make_symbolizer_resolver(sym::SymbolizerOptions options = {});

} // namespace hostprof
