#include "symbolizer/safe_open.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace hostprof::sym {
namespace {

constexpr int kMaxWalkComponents = 256;

OpenRefusal refusal_for_errno(int err) {
    switch (err) {
    case ENOENT:
    case ENOTDIR:
        return OpenRefusal::Missing;
    case ELOOP:
        return OpenRefusal::Symlink; // RESOLVE_NO_MAGICLINKS, or a symlink loop
    case EXDEV:
        return OpenRefusal::Escape;
    default:
        return OpenRefusal::Error;
    }
}

int sys_openat2(int dirfd, const char* path, uint64_t flags, uint64_t resolve) {
    struct open_how how {};
    how.flags = flags;
    how.resolve = resolve;
    return static_cast<int>(::syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}

} // namespace

const char* open_refusal_name(OpenRefusal r) {
    switch (r) {
    case OpenRefusal::None:
        return "none";
    case OpenRefusal::Missing:
        return "missing";
    case OpenRefusal::Symlink:
        return "symlink";
    case OpenRefusal::Escape:
        return "escape";
    case OpenRefusal::NotRegular:
        return "not_regular";
    case OpenRefusal::TooLarge:
        return "too_large";
    case OpenRefusal::Error:
        return "error";
    }
    return "unknown";
}

SafeOpener::SafeOpener(bool force_fallback) : force_fallback_(force_fallback) {}

UniqueFd SafeOpener::open_root(const std::string& dir) {
    return UniqueFd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
}

OpenedFile SafeOpener::fail(OpenRefusal why, int err) {
    by_reason_[static_cast<int>(why)].fetch_add(1, std::memory_order_relaxed);
    OpenedFile f;
    f.refusal = why;
    f.error = err;
    return f;
}

OpenedFile SafeOpener::reopen_checked(UniqueFd opath, uint64_t max_bytes) {
    struct stat st {};
    if (::fstat(opath.get(), &st) != 0)
        return fail(OpenRefusal::Error, errno);
    if (S_ISLNK(st.st_mode))
        return fail(OpenRefusal::Symlink, 0);
    if (!S_ISREG(st.st_mode))
        return fail(OpenRefusal::NotRegular, 0);
    if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) > max_bytes)
        return fail(OpenRefusal::TooLarge, 0);
    // The O_PATH descriptor pins the inode just checked; reopening it through /proc/self/fd
    // opens that inode, whatever the path now names.
    const std::string self = "/proc/self/fd/" + std::to_string(opath.get());
    UniqueFd fd(::open(self.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd)
        return fail(OpenRefusal::Error, errno);
    struct stat again {};
    if (::fstat(fd.get(), &again) != 0)
        return fail(OpenRefusal::Error, errno);
    if (again.st_dev != st.st_dev || again.st_ino != st.st_ino || !S_ISREG(again.st_mode))
        return fail(OpenRefusal::Error, 0);
    opened_.fetch_add(1, std::memory_order_relaxed);
    OpenedFile f;
    f.fd = std::move(fd);
    f.st = again;
    return f;
}

UniqueFd SafeOpener::walk(int root_fd, std::string_view path, Follow follow, OpenRefusal& why,
                          int& err) {
    (void)follow; // the walk refuses every symlink, the last one included
    fallback_walks_.fetch_add(1, std::memory_order_relaxed);
    UniqueFd dir(::fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
    if (!dir) {
        why = OpenRefusal::Error;
        err = errno;
        return {};
    }
    int components = 0;
    size_t pos = 0;
    while (pos < path.size()) {
        size_t end = path.find('/', pos);
        if (end == std::string_view::npos)
            end = path.size();
        std::string comp(path.substr(pos, end - pos));
        pos = end + 1;
        if (comp.empty() || comp == ".")
            continue;
        if (comp == ".." || ++components > kMaxWalkComponents) {
            why = OpenRefusal::Escape;
            return {};
        }
        UniqueFd next(::openat(dir.get(), comp.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
        if (!next) {
            err = errno;
            why = refusal_for_errno(err);
            return {};
        }
        struct stat st {};
        if (::fstat(next.get(), &st) != 0) {
            err = errno;
            why = OpenRefusal::Error;
            return {};
        }
        if (S_ISLNK(st.st_mode)) {
            why = OpenRefusal::Symlink;
            return {};
        }
        const bool last = path.find_first_not_of('/', pos) == std::string_view::npos;
        if (!last && !S_ISDIR(st.st_mode)) {
            err = ENOTDIR;
            why = OpenRefusal::Missing;
            return {};
        }
        dir = std::move(next);
    }
    if (components == 0) {
        why = OpenRefusal::NotRegular; // the root itself
        return {};
    }
    return dir;
}

OpenedFile SafeOpener::open_in_root(int root_fd, std::string_view path, uint64_t max_bytes,
                                    Follow follow) {
    if (root_fd < 0)
        return fail(OpenRefusal::Error, EBADF);
    const std::string p(path);
    if (p.find('\0') != std::string::npos)
        return fail(OpenRefusal::Error, EINVAL);
    if (!force_fallback_ && have_openat2_.load(std::memory_order_relaxed) != 0) {
        uint64_t flags = O_PATH | O_CLOEXEC;
        if (follow == Follow::NoFinalSymlink)
            flags |= O_NOFOLLOW; // with O_PATH: a final symlink opens as itself, refused below
        for (int attempt = 0; attempt < 4; ++attempt) {
            int fd =
                sys_openat2(root_fd, p.c_str(), flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
            if (fd >= 0)
                return reopen_checked(UniqueFd(fd), max_bytes);
            if (errno == EAGAIN || errno == EINTR)
                continue; // a concurrent rename or mount: the kernel asks to retry
            if (errno == ENOSYS) {
                have_openat2_.store(0, std::memory_order_relaxed);
                break;
            }
            return fail(refusal_for_errno(errno), errno);
        }
        if (have_openat2_.load(std::memory_order_relaxed) != 0)
            return fail(OpenRefusal::Error, EAGAIN);
    }
    OpenRefusal why = OpenRefusal::Error;
    int err = 0;
    UniqueFd fd = walk(root_fd, p, follow, why, err);
    if (!fd)
        return fail(why, err);
    return reopen_checked(std::move(fd), max_bytes);
}

OpenedFile SafeOpener::open_trusted(const std::string& path, uint64_t max_bytes) {
    UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
    if (!fd)
        return fail(refusal_for_errno(errno), errno);
    return reopen_checked(std::move(fd), max_bytes);
}

OpenCounts SafeOpener::counts() const {
    OpenCounts c;
    c.opened = opened_.load(std::memory_order_relaxed);
    c.fallback_walks = fallback_walks_.load(std::memory_order_relaxed);
    for (int i = 0; i < kOpenRefusalCount; ++i)
        c.by_reason[i] = by_reason_[i].load(std::memory_order_relaxed);
    return c;
}

bool read_all(int fd, uint64_t max_bytes, std::string& out) {
    out.clear();
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        if (n == 0)
            return true;
        if (out.size() + static_cast<uint64_t>(n) > max_bytes)
            return false;
        out.append(buf, static_cast<size_t>(n));
    }
}

} // namespace hostprof::sym
