// A minimal x86-64 ELF file around given .eh_frame bytes, for the CFI builder's tests and
// fuzz target (unwind/cfi.h): the ELF header, one r-x PT_LOAD over the first MiB of
// addresses, .eh_frame at kEhFrameAddr and a section-name table. No PT_GNU_EH_FRAME:
// libdw finds .eh_frame by its section.
#pragma once

#include <dwarf.h>
#include <elf.h>

#include <cstdint>
#include <string>

namespace hostprof::unwind::testing_elf {

constexpr uint64_t kEhFrameAddr = 0x1000;

inline void put32(std::string& s, uint32_t v) {
    s.append(reinterpret_cast<const char*>(&v), 4);
}
inline void put64(std::string& s, uint64_t v) {
    s.append(reinterpret_cast<const char*>(&v), 8);
}
inline void put16(std::string& s, uint16_t v) {
    s.append(reinterpret_cast<const char*>(&v), 2);
}
inline void pad4(std::string& s, size_t from) {
    while ((s.size() - from) % 4)
        s.push_back(static_cast<char>(DW_CFA_nop));
}

inline std::string elf_with_eh_frame(const std::string& eh) {
    const std::string names("\0.eh_frame\0.shstrtab\0", 21);
    const uint64_t eh_off = 64 + 56;
    const uint64_t names_off = eh_off + eh.size();
    uint64_t shoff = names_off + names.size();
    shoff = (shoff + 7) & ~7ull;
    std::string s;
    s += std::string("\x7f"
                     "ELF\x02\x01\x01",
                     7);
    s.resize(16, '\0');
    put16(s, ET_DYN);
    put16(s, EM_X86_64);
    put32(s, EV_CURRENT);
    put64(s, 0);     // entry
    put64(s, 64);    // phoff
    put64(s, shoff); // shoff
    put32(s, 0);     // flags
    put16(s, 64);    // ehsize
    put16(s, 56);    // phentsize
    put16(s, 1);     // phnum
    put16(s, 64);    // shentsize
    put16(s, 3);     // shnum
    put16(s, 2);     // shstrndx
    put32(s, PT_LOAD);
    put32(s, PF_R | PF_X);
    put64(s, 0);        // offset
    put64(s, 0);        // vaddr
    put64(s, 0);        // paddr
    put64(s, eh_off);   // filesz
    put64(s, 1u << 20); // memsz
    put64(s, 0x1000);   // align
    s += eh;
    s += names;
    s.resize(shoff, '\0');
    auto shdr = [&](uint32_t name, uint32_t type, uint64_t flags, uint64_t addr, uint64_t off,
                    uint64_t size, uint64_t align) {
        put32(s, name);
        put32(s, type);
        put64(s, flags);
        put64(s, addr);
        put64(s, off);
        put64(s, size);
        put32(s, 0); // link
        put32(s, 0); // info
        put64(s, align);
        put64(s, 0); // entsize
    };
    shdr(0, SHT_NULL, 0, 0, 0, 0, 0);
    shdr(1, SHT_PROGBITS, SHF_ALLOC, kEhFrameAddr, eh_off, eh.size(), 8);
    shdr(11, SHT_STRTAB, 0, 0, names_off, names.size(), 1);
    return s;
}

} // namespace hostprof::unwind::testing_elf
