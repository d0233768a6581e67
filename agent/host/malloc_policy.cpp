#include "agent/host/malloc_policy.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace hostprof {

namespace {

bool tuned_by_operator() {
    const char* t = std::getenv("GLIBC_TUNABLES");
    return t != nullptr && std::strstr(t, "mmap_threshold") != nullptr;
}

} // namespace

void set_startup_malloc_policy() {
    if (tuned_by_operator())
        return;
    ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
    ::mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

void set_runtime_malloc_policy() {
    if (tuned_by_operator())
        return;
    ::mallopt(M_MMAP_THRESHOLD, 128 << 10);
    ::mallopt(M_TRIM_THRESHOLD, 128 << 10);
    ::malloc_trim(0);
}

} // namespace hostprof
