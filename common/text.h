// Field splitting and number parsing shared by the parsers of kernel text files
// (/proc/kallsyms, /proc/PID/maps, ...): no streams, no allocation.
#pragma once

#include <cstdint>
#include <string_view>

namespace hostprof {

// The next blank-separated field of `s` (spaces or tabs), removed from `s` with the blanks
// before it; "" when none is left.
std::string_view next_field(std::string_view& s);

// Parses hex digits (optional 0x prefix); false unless the whole view is consumed.
bool parse_hex(std::string_view s, uint64_t& out);

} // namespace hostprof
