#include "kernel-compat/tracefs.h"

#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/vfs.h>

namespace hostprof::compat {

bool tracefs_is_mounted(const std::string& path) {
    struct statfs st {};
    if (::statfs(path.c_str(), &st) != 0)
        return false;
    return st.f_type == TRACEFS_MAGIC;
}

Status ensure_tracefs(const std::string& path) {
    if (tracefs_is_mounted(path))
        return {};
    if (::mount("nodev", path.c_str(), "tracefs", 0, nullptr) != 0)
        return errno_error("mount -t tracefs nodev " + path);
    return {};
}

} // namespace hostprof::compat
