// Safe file access on behalf of other processes (issue #8): every file the symbolizer reads
// for a process (its binaries under /proc/PID/root, its perf map, debug files, build-id
// paths) is opened here, never with a plain open() of a path a process could have shaped.
//
//   SafeOpener op;
//   UniqueFd root = op.open_root("/proc/42/root");
//   OpenedFile f = op.open_in_root(root.get(), "/tmp/perf-42.map", 64 << 20,
//   Follow::NoFinalSymlink); if (f) read(f.fd.get(), ...);      // else f.refusal says why, and op
//   counted it
//
// How: openat2(root, path, O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) — absolute
// symlinks and ".." stay inside the process's root, /proc magic links are refused — then
// fstat on the O_PATH descriptor (opening with O_PATH never blocks, not even on a FIFO):
// regular files only, size capped; then the same inode is reopened for reading through
// /proc/self/fd/N with O_RDONLY | O_NONBLOCK. Without openat2 (Linux < 5.6, or seccomp
// returning ENOSYS) a manual walk opens one component at a time with O_PATH | O_NOFOLLOW
// and refuses every symlink and "..": stricter than openat2 (a symlinked debug file is
// then not found), never looser.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/unique_fd.h"

namespace hostprof::sym {

enum class OpenRefusal {
    None,
    Missing,    // no such file (ENOENT, ENOTDIR): not a refusal, just absent
    Symlink,    // a symlink where none is allowed, a magic link, or a symlink loop
    Escape,     // ".." or a path that would leave the root (fallback walk)
    NotRegular, // FIFO, socket, device, directory
    TooLarge,   // larger than the caller's cap
    Error,      // any other failure (EACCES, EIO, ...)
};
inline constexpr int kOpenRefusalCount = 7;
const char* open_refusal_name(OpenRefusal r);

struct OpenedFile {
    UniqueFd fd; // O_RDONLY | O_NONBLOCK | O_CLOEXEC, a regular file
    struct stat st {};
    OpenRefusal refusal = OpenRefusal::None;
    int error = 0; // errno of the failure, 0 when refused by a check
    explicit operator bool() const { return fd.valid(); }
};

enum class Follow {
    Symlinks,       // symlinks resolve (inside the root)
    NoFinalSymlink, // the last component must not be a symlink (perf maps)
};

struct OpenCounts {
    uint64_t opened = 0;
    uint64_t by_reason[kOpenRefusalCount] = {}; // index 0 unused
    uint64_t fallback_walks = 0;                // opens done without openat2
};

class SafeOpener {
  public:
    // force_fallback: use the manual walk even when openat2 exists (tests).
    explicit SafeOpener(bool force_fallback = false);

    // A directory to resolve paths in, e.g. PROC/PID/root (a magic link the kernel keeps,
    // followed on purpose) or "/" for host files. Invalid fd when it cannot be opened.
    static UniqueFd open_root(const std::string& dir);

    // `path` resolved with `root_fd` as "/". Regular files of at most max_bytes only.
    OpenedFile open_in_root(int root_fd, std::string_view path, uint64_t max_bytes,
                            Follow follow = Follow::Symlinks);
    // A file on the host by an operator-given path or one of the kernel's own links
    // (PROC/PID/map_files/...): normal resolution, the same checks on the file itself.
    OpenedFile open_trusted(const std::string& path, uint64_t max_bytes);
    // The checks and the reopen, for an O_PATH descriptor obtained elsewhere.
    OpenedFile reopen_checked(UniqueFd opath, uint64_t max_bytes);

    OpenCounts counts() const;
    bool uses_openat2() const { return !force_fallback_ && have_openat2_.load() != 0; }

  private:
    OpenedFile fail(OpenRefusal why, int err);
    UniqueFd walk(int root_fd, std::string_view path, Follow follow, OpenRefusal& why, int& err);

    bool force_fallback_;
    std::atomic<int> have_openat2_{1}; // cleared on the first ENOSYS
    std::atomic<uint64_t> opened_{0};
    std::atomic<uint64_t> fallback_walks_{0};
    std::atomic<uint64_t> by_reason_[kOpenRefusalCount] = {};
};

// Reads a whole file opened by SafeOpener, at most max_bytes (the file may have grown since
// the size check). false on a read error or when the content exceeds max_bytes.
bool read_all(int fd, uint64_t max_bytes, std::string& out);

} // namespace hostprof::sym
