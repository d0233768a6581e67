// Syscall names of the build's architecture. The table is generated at build time from
// the kernel UAPI header <asm/unistd_64.h> by scripts/gen_syscall_table.sh.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hostprof {

// "read" for 0 on x86_64; "" when the number has no name in the table.
std::string_view syscall_name(uint32_t nr);
// The number of a syscall name, or nullopt.
std::optional<uint32_t> syscall_number(std::string_view name);
// Number of named syscalls in the table.
size_t syscall_table_size();
// A label value for nr: its name, or "syscall_<nr>" when it has none.
std::string syscall_label(uint32_t nr);

} // namespace hostprof
