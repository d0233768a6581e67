// The agent's table builder: a file's rows from its CFI (cfi.h) and, for Go code, from
// its .gopclntab (gopclntab.h).
#pragma once

#include "unwind/store.h"

namespace hostprof::unwind {

Builder default_builder();

} // namespace hostprof::unwind
