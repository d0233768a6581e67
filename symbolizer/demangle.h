// Demangling: C++ (Itanium, through abi::__cxa_demangle), Rust legacy (the C++ form with
// the trailing "::h<16 hex>" hash and the $..$ escapes, decoded here) and Rust v0 ("_R...",
// through libiberty's rust_demangle, without crate hashes: "<m::Thing<u64>>::doubled").
// Unknown or malformed names come back unchanged.
#pragma once

#include <string>
#include <string_view>

namespace hostprof::sym {

std::string demangle(std::string_view mangled);

} // namespace hostprof::sym
