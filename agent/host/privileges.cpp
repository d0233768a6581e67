#include "agent/host/privileges.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

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

// Capabilities and no_new_privs belong to a thread: capset() changes its caller only.
// Threads started before the drop (the unwind-table worker starts with the pipeline, the
// debuginfod fetcher with the symbolizer) take the caller's new sets in a signal handler
// of their own (capset and prctl are plain syscalls, safe there), the way libcap's psx
// does. kTargetSignal is a real-time signal nothing else in the agent uses.
__user_cap_data_struct g_target[2];
std::atomic<int> g_answers{0};
const int kTargetSignal = SIGRTMIN + 3;

void take_target_capabilities(int) {
    const int saved = errno;
    __user_cap_header_struct hdr{};
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    __user_cap_data_struct d[2] = {g_target[0], g_target[1]};
    ::syscall(SYS_capset, &hdr, d);
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    g_answers.fetch_add(1);
    errno = saved;
}

// Threads of this process (but the caller) whose effective or permitted set holds more
// than `keep`, as {tid, "name (tid)"}.
std::vector<std::pair<pid_t, std::string>> threads_above(uint64_t keep) {
    std::vector<std::pair<pid_t, std::string>> out;
    const pid_t self = static_cast<pid_t>(::syscall(SYS_gettid));
    DIR* d = ::opendir("/proc/self/task");
    if (d == nullptr)
        return out;
    while (dirent* e = ::readdir(d)) {
        const pid_t tid = static_cast<pid_t>(std::atoi(e->d_name));
        if (tid <= 0 || tid == self)
            continue;
        const std::string dir = std::string("/proc/self/task/") + e->d_name;
        std::ifstream in(dir + "/status");
        std::stringstream b;
        b << in.rdbuf();
        if (b.str().empty())
            continue; // exited meanwhile
        const CapabilitySets c = parse_capabilities(b.str());
        if (((c.effective | c.permitted) & ~keep) == 0)
            continue;
        std::ifstream comm(dir + "/comm");
        std::string name;
        std::getline(comm, name);
        out.emplace_back(tid, name + " (" + std::to_string(tid) + ")");
    }
    ::closedir(d);
    return out;
}

// Gives every other thread the sets in g_target; an error names the threads that still
// hold more than `keep` after 2 s (a thread blocking the signal).
Status apply_to_other_threads(uint64_t keep) {
    struct sigaction sa {
    }, old{};
    sa.sa_handler = take_target_capabilities;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(kTargetSignal, &sa, &old) != 0)
        return errno_error("sigaction");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    std::vector<std::pair<pid_t, std::string>> left = threads_above(keep);
    // Rounds: a thread created meanwhile by one not yet lowered inherits its sets.
    while (!left.empty() && std::chrono::steady_clock::now() < deadline) {
        g_answers.store(0);
        int sent = 0;
        for (const auto& [tid, name] : left)
            if (::syscall(SYS_tgkill, ::getpid(), tid, kTargetSignal) == 0)
                ++sent;
        while (g_answers.load() < sent && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        left = threads_above(keep);
    }
    ::sigaction(kTargetSignal, &old, nullptr);
    if (left.empty())
        return {};
    std::string names;
    for (const auto& [tid, name] : left)
        names += (names.empty() ? "" : ", ") + name;
    return Error{0, "threads kept their capabilities: " + names};
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
    g_target[0] = data[0];
    g_target[1] = data[1];
    if (Status st = apply_to_other_threads(keep); !st)
        return st.error();
    return extra;
}

} // namespace hostprof
