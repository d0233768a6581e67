#include "exporters/output.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 // Linux 5.14 uapi; Debian 12's headers have it, older ones not
#endif

namespace hostprof {

namespace {
constexpr size_t kPrefaultMin = 64 * 1024;
std::atomic<bool> g_unsupported{false};
} // namespace

void prefault(void* p, size_t n) {
    if (n < kPrefaultMin || g_unsupported.load(std::memory_order_relaxed))
        return;
    static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    // Whole pages inside the range only: the pages at its edges may hold other live
    // objects (populating them would be harmless, but madvise wants an aligned start).
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
    const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) & ~(page - 1);
    if (end <= begin)
        return;
    if (::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE) != 0 &&
        errno == EINVAL)
        g_unsupported.store(true, std::memory_order_relaxed);
}

void reserve_prefaulted(std::string& s, size_t n) {
    if (n <= s.capacity())
        return;
    s.reserve(n);
    prefault(s.data(), s.capacity());
}

} // namespace hostprof
