// The FrameResolver the agent uses: the symbolizer (symbolizer/) behind the interface the
// profile builder calls.
#pragma once

#include <memory>

#include "agent/profile_builder.h"

namespace hostprof {

std::unique_ptr<FrameResolver> make_symbolizer_resolver(size_t cache_bytes = 256u << 20);

} // namespace hostprof
