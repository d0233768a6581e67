#include "common/elf_handle.h"

#include <fcntl.h>
#include <sys/stat.h>

namespace hostprof {

Result<ElfFile> ElfFile::open(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd)
        return errno_error("open " + path);
    return adopt(std::move(fd), path);
}

Result<ElfFile> ElfFile::adopt(UniqueFd fd, const std::string& name) {
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return errno_error("stat " + name);
    if (!S_ISREG(st.st_mode))
        return Error{0, name + ": not a regular file"};
    if (elf_version(EV_CURRENT) == EV_NONE)
        return Error{0, "libelf: " + std::string(elf_errmsg(-1))};
    Elf* e = elf_begin(fd.get(), ELF_C_READ_MMAP, nullptr);
    if (e == nullptr)
        return Error{0, name + ": " + elf_errmsg(-1)};
    ElfFile out;
    out.fd_ = std::move(fd);
    out.elf_.reset(e);
    if (elf_kind(e) != ELF_K_ELF)
        return Error{0, name + ": not an ELF file"};
    return out;
}

} // namespace hostprof
