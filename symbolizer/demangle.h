// Demangling: C++ (Itanium, through abi::__cxa_demangle) and Rust legacy (the C++ form with
// the trailing "::h<16 hex>" hash and the $..$ escapes). Unknown names come back unchanged.
#pragma once

#include <string>
#include <string_view>

namespace hostprof::sym {

std::string demangle(std::string_view mangled);

} // namespace hostprof::sym
