// The agent's table builder: a file's rows from its CFI (cfi.h) and, for Go code, from
// its .gopclntab (gopclntab.h).
#pragma once

#include "unwind/store.h"

namespace hostprof::unwind {

Builder default_builder();

// The rule of `top` where it has one (not NONE), else that of `base`: Go rows over the
// CFI of a cgo binary.
std::vector<Row> overlay(const std::vector<Row>& base, const std::vector<Row>& top);

} // namespace hostprof::unwind
