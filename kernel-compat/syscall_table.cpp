#include "kernel-compat/syscall_table.h"

#include <linux/types.h>

#include <array>
#include <utility>

#include "bpf/syscalls.h"

namespace hostprof {
namespace {

struct Entry {
    uint32_t nr;
    std::string_view name;
};

constexpr Entry kEntries[] = {
#include "syscall_table.inc"
};

constexpr std::array<std::string_view, HP_SYS_MAX_NR> make_by_number() {
    std::array<std::string_view, HP_SYS_MAX_NR> t{};
    for (const Entry& e : kEntries)
        t[e.nr] = e.name;
    return t;
}

constexpr auto kByNumber = make_by_number();

} // namespace

std::string_view syscall_name(uint32_t nr) {
    return nr < kByNumber.size() ? kByNumber[nr] : std::string_view{};
}

std::optional<uint32_t> syscall_number(std::string_view name) {
    for (const Entry& e : kEntries)
        if (e.name == name)
            return e.nr;
    return std::nullopt;
}

size_t syscall_table_size() {
    return std::size(kEntries);
}

std::string syscall_label(uint32_t nr) {
    std::string_view n = syscall_name(nr);
    return n.empty() ? "syscall_" + std::to_string(nr) : std::string(n);
}

} // namespace hostprof
