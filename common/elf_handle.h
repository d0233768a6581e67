// ElfFile: owns an open file and the libelf descriptor reading it.
#pragma once

#include <libelf.h>

#include <memory>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace hostprof {

class ElfFile {
  public:
    // Opens `path` read-only (O_CLOEXEC | O_NONBLOCK, regular files only) for ELF reading.
    static Result<ElfFile> open(const std::string& path);
    // Takes ownership of an already opened descriptor.
    static Result<ElfFile> adopt(UniqueFd fd, const std::string& name);

    Elf* elf() const { return elf_.get(); }
    int fd() const { return fd_.get(); }

  private:
    struct ElfDeleter {
        void operator()(Elf* e) const { elf_end(e); }
    };
    UniqueFd fd_;
    std::unique_ptr<Elf, ElfDeleter> elf_;
};

} // namespace hostprof
