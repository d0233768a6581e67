#include "agent/host/privileges.h"

#include <bpf/bpf.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include <fstream>
#include <sstream>

namespace hostprof {
namespace {

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

constexpr uint64_t bit(int cap) {
    return uint64_t{1} << cap;
}

struct Named {
    int cap;
    const char* name;
};
constexpr Named kNames[] = {
    {CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH"},
    {CAP_SYS_PTRACE, "CAP_SYS_PTRACE"},
    {CAP_SYSLOG, "CAP_SYSLOG"},
    {CAP_CHECKPOINT_RESTORE, "CAP_CHECKPOINT_RESTORE"},
    {CAP_SYS_ADMIN, "CAP_SYS_ADMIN"},
    {CAP_SYS_RESOURCE, "CAP_SYS_RESOURCE"},
    {CAP_PERFMON, "CAP_PERFMON"},
    {CAP_BPF, "CAP_BPF"},
};

uint64_t parse_hex(const std::string& s) {
    uint64_t v = 0;
    std::istringstream(s) >> std::hex >> v;
    return v;
}

} // namespace

uint64_t runtime_capability_mask() {
    return bit(CAP_SYS_PTRACE) | bit(CAP_DAC_READ_SEARCH) | bit(CAP_SYSLOG) |
           bit(CAP_CHECKPOINT_RESTORE);
}

CapabilitySets parse_capabilities(const std::string& text) {
    CapabilitySets c;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("CapEff:", 0) == 0)
            c.effective = parse_hex(line.substr(7));
        else if (line.rfind("CapPrm:", 0) == 0)
            c.permitted = parse_hex(line.substr(7));
    }
    return c;
}

CapabilitySets current_capabilities() {
    std::ifstream in("/proc/self/status");
    std::stringstream b;
    b << in.rdbuf();
    return parse_capabilities(b.str());
}

std::string capability_names(uint64_t mask) {
    std::string out;
    for (const Named& n : kNames)
        if (mask & bit(n.cap))
            out += (out.empty() ? "" : ",") + std::string(n.name);
    return out.empty() ? "none" : out;
}

Status check_load_capabilities(const CapabilitySets& caps) {
    const uint64_t eff = caps.effective;
    if (eff & bit(CAP_SYS_ADMIN))
        return {};
    if (!(eff & bit(CAP_BPF)))
        return Error{0, "missing capability CAP_BPF (needed to load BPF programs); run as root "
                        "or grant CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH "
                        "(see docs/deployment.md)"};
    if (!(eff & bit(CAP_PERFMON)))
        return Error{0, "missing capability CAP_PERFMON (needed for perf events and tracing "
                        "programs); grant it along with CAP_BPF"};
    return {};
}

namespace {

// Sets the effective set to `effective`, leaving the permitted set as it is.
bool set_effective(__user_cap_header_struct& hdr, const __user_cap_data_struct (&data)[2],
                   uint64_t effective) {
    __user_cap_data_struct d[2] = {data[0], data[1]};
    for (int i = 0; i < 2; ++i)
        d[i].effective = static_cast<uint32_t>(effective >> (32 * i));
    return ::syscall(SYS_capset, &hdr, d) == 0;
}

} // namespace

Result<uint64_t> drop_to_runtime_capabilities() {
    __user_cap_header_struct hdr{};
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    hdr.pid = 0;
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &hdr, data) != 0)
        return errno_error("capget");
    const uint64_t effective = data[0].effective | (uint64_t{data[1].effective} << 32);
    const uint64_t permitted = data[0].permitted | (uint64_t{data[1].permitted} << 32);
    uint64_t keep = runtime_capability_mask();
    // Can a descriptor already held still be used without CAP_BPF? Tried with the
    // effective set lowered (the permitted set still allows raising it again).
    uint64_t extra = 0;
    int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "hp_capcheck", 4, 8, 1, nullptr);
    if (fd >= 0) {
        if (!set_effective(hdr, data, effective & keep)) {
            ::close(fd);
            return errno_error("capset");
        }
        const uint32_t zero = 0;
        uint64_t value = 0;
        const bool refused = bpf_map_lookup_elem(fd, &zero, &value) != 0 && errno == EPERM;
        ::close(fd);
        if (refused)
            extra = permitted & bit(CAP_BPF) ? bit(CAP_BPF) : bit(CAP_SYS_ADMIN);
        keep |= extra;
    }
    for (int i = 0; i < 2; ++i) {
        uint32_t k = static_cast<uint32_t>(keep >> (32 * i));
        data[i].effective &= k;
        data[i].permitted &= k;
        data[i].inheritable = 0;
    }
    if (::syscall(SYS_capset, &hdr, data) != 0)
        return errno_error("capset");
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return errno_error("prctl(PR_SET_NO_NEW_PRIVS)");
    return extra;
}

} // namespace hostprof
