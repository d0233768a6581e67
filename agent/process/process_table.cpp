#include "agent/process/process_table.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <vector>

namespace hostprof {
namespace {

bool is_hex(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c)) != 0 && !std::isupper(c);
    });
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    size_t start = 0;
    while (start <= s.size()) {
        size_t end = s.find(sep, start);
        if (end == std::string_view::npos)
            end = s.size();
        if (end > start)
            out.push_back(s.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

bool strip_prefix(std::string_view& s, std::string_view prefix) {
    if (s.substr(0, prefix.size()) != prefix)
        return false;
    s.remove_prefix(prefix.size());
    return true;
}

bool strip_suffix(std::string_view& s, std::string_view suffix) {
    if (s.size() < suffix.size() || s.substr(s.size() - suffix.size()) != suffix)
        return false;
    s.remove_suffix(suffix.size());
    return true;
}

// Kubernetes pod uid from a "pod<uid>" or "kubepods-<qos>-pod<uid>.slice" component;
// systemd writes the uid's dashes as underscores.
std::string pod_uid_of(std::string_view part) {
    strip_suffix(part, ".slice");
    size_t at = part.rfind("pod");
    if (at == std::string_view::npos)
        return {};
    std::string uid(part.substr(at + 3));
    std::replace(uid.begin(), uid.end(), '_', '-');
    if (uid.size() != 36 || std::count(uid.begin(), uid.end(), '-') != 4)
        return {};
    return uid;
}

std::string read_file(const std::string& path, size_t cap) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return {};
    std::string out(cap, '\0');
    in.read(out.data(), static_cast<std::streamsize>(cap));
    out.resize(static_cast<size_t>(in.gcount()));
    return out;
}

std::string basename_of(std::string_view path) {
    size_t slash = path.rfind('/');
    return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

const uint64_t kNsPerTick =
    1'000'000'000ULL /
    static_cast<uint64_t>(::sysconf(_SC_CLK_TCK) > 0 ? ::sysconf(_SC_CLK_TCK) : 100);

} // namespace

bool same_start_time(uint64_t a_ns, uint64_t b_ns) {
    return a_ns / kNsPerTick == b_ns / kNsPerTick;
}

ContainerInfo parse_container_info(std::string_view cgroup_path) {
    ContainerInfo info;
    static const std::pair<std::string_view, std::string_view> kScopePrefixes[] = {
        {"docker-", "docker"}, {"cri-containerd-", "containerd"}, {"crio-", "crio"},
        {"libpod-", "podman"}, {"containerd-", "containerd"},
    };
    for (std::string_view part : split(cgroup_path, '/')) {
        if (info.pod_uid.empty() && part.find("pod") != std::string_view::npos)
            info.pod_uid = pod_uid_of(part);
        std::string_view p = part;
        if (strip_suffix(p, ".scope")) {
            for (auto [prefix, runtime] : kScopePrefixes) {
                std::string_view id = p;
                if (strip_prefix(id, prefix) && id.size() == 64 && is_hex(id)) {
                    info.container_id = std::string(id);
                    info.runtime = std::string(runtime);
                }
            }
        } else if (p.size() == 64 && is_hex(p)) {
            // cgroupfs driver: /docker/<id>, /kubepods/<qos>/pod<uid>/<id>, /lxc.payload...
            info.container_id = std::string(p);
            info.runtime = cgroup_path.find("/docker/") != std::string_view::npos ? "docker"
                           : info.pod_uid.empty()                                 ? "unknown"
                                                                                  : "kubernetes";
        }
    }
    return info;
}

std::string parse_cgroup_file(std::string_view text) {
    std::string fallback, cpu_path;
    for (std::string_view line : split(text, '\n')) {
        // hierarchy-id:controllers:path
        size_t c1 = line.find(':');
        size_t c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
        if (c2 == std::string_view::npos)
            continue;
        std::string_view id = line.substr(0, c1);
        std::string_view controllers = line.substr(c1 + 1, c2 - c1 - 1);
        std::string_view path = line.substr(c2 + 1);
        if (id == "0" && controllers.empty())
            return std::string(path);
        // cgroup v1: the cpu hierarchy names the container best; otherwise the first.
        if (controllers.find("cpu") != std::string_view::npos)
            cpu_path = std::string(path);
        else if (fallback.empty())
            fallback = std::string(path);
    }
    return cpu_path.empty() ? fallback : cpu_path;
}

std::optional<uint64_t> parse_stat_start_ticks(std::string_view stat) {
    size_t close = stat.rfind(')');
    if (close == std::string_view::npos)
        return std::nullopt;
    // After ") " come fields 3..; start time is field 22, i.e. the 20th after comm.
    std::string_view rest = stat.substr(close + 1);
    auto fields = split(rest, ' ');
    if (fields.size() < 20)
        return std::nullopt;
    uint64_t v = 0;
    for (char c : fields[19]) {
        if (c < '0' || c > '9')
            return std::nullopt;
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    return v;
}

std::string_view parse_stat_comm(std::string_view stat) {
    const size_t open = stat.find('(');
    const size_t close = stat.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open)
        return {};
    return stat.substr(open + 1, close - open - 1);
}

char parse_stat_state(std::string_view stat) {
    const size_t close = stat.rfind(')');
    if (close == std::string_view::npos || close + 2 >= stat.size() || stat[close + 1] != ' ')
        return '\0';
    return stat[close + 2];
}

std::optional<ServiceRule> service_rule_from_string(std::string_view s) {
    if (s == "auto")
        return ServiceRule::Auto;
    if (s == "exe")
        return ServiceRule::Exe;
    if (s == "comm")
        return ServiceRule::Comm;
    if (s == "cgroup")
        return ServiceRule::Cgroup;
    return std::nullopt;
}

ProcessTable::ProcessTable(std::string proc_root, size_t max_entries, ServiceRule rule)
    : root_(std::move(proc_root)), max_entries_(std::max<size_t>(1, max_entries)), rule_(rule) {}

ProcessInfo ProcessTable::read(uint32_t pid, uint64_t start_time_ns, std::string_view comm) {
    ++stats_.reads;
    ProcessInfo p;
    p.pid = pid;
    p.start_time_ns = start_time_ns;
    std::string dir = root_ + "/" + std::to_string(pid);
    std::string stat = read_file(dir + "/stat", 4096);
    auto ticks = parse_stat_start_ticks(stat);
    if (!ticks) {
        ++stats_.read_errors;
    } else {
        uint64_t procfs_start = *ticks * kNsPerTick;
        if (start_time_ns != 0 && !same_start_time(procfs_start, start_time_ns)) {
            // The pid names another process now: keep only what the sample told us.
            ++stats_.identity_mismatches;
            p.comm = std::string(comm);
            p.service_name = p.comm.empty() ? "unknown" : p.comm;
            return p;
        }
        if (start_time_ns == 0)
            p.start_time_ns = procfs_start;
    }
    // The process's comm is in its stat line (no read of /proc/PID/comm); a process that
    // exited before this read (a zombie: under churn most short-lived ones) has no exe
    // and no cmdline left to read, only its cgroup.
    p.comm = std::string(parse_stat_comm(stat));
    if (p.comm.empty())
        p.comm = std::string(comm);
    if (const char state = parse_stat_state(stat); state != 'Z' && state != 'X') {
        char buf[4096];
        ssize_t n = ::readlink((dir + "/exe").c_str(), buf, sizeof(buf) - 1);
        if (n > 0)
            p.exe.assign(buf, static_cast<size_t>(n));
        p.cmdline = read_file(dir + "/cmdline", 4096);
        std::replace(p.cmdline.begin(), p.cmdline.end(), '\0', ' ');
        while (!p.cmdline.empty() && p.cmdline.back() == ' ')
            p.cmdline.pop_back();
    }
    p.cgroup = parse_cgroup_file(read_file(dir + "/cgroup", 8192));
    p.container = parse_container_info(p.cgroup);

    std::string exe_name = p.exe.empty() ? p.comm : basename_of(p.exe);
    if (exe_name.size() > 10 && exe_name.substr(exe_name.size() - 10) == " (deleted)")
        exe_name.resize(exe_name.size() - 10);
    switch (rule_) {
    case ServiceRule::Auto:
        p.service_name =
            p.container.container_id.empty() ? exe_name : p.container.container_id.substr(0, 12);
        break;
    case ServiceRule::Exe:
        p.service_name = exe_name;
        break;
    case ServiceRule::Comm:
        p.service_name = p.comm;
        break;
    case ServiceRule::Cgroup:
        p.service_name = p.cgroup.empty() ? exe_name : basename_of(p.cgroup);
        break;
    }
    if (p.service_name.empty())
        p.service_name = "unknown";
    return p;
}

void ProcessTable::touch(
    std::unordered_map<uint32_t, std::pair<ProcessInfo, std::list<uint32_t>::iterator>>::iterator
        it) {
    lru_.splice(lru_.begin(), lru_, it->second.second);
}

const ProcessInfo& ProcessTable::get(uint32_t pid, uint64_t start_time_ns, std::string_view comm) {
    ++stats_.lookups;
    auto it = map_.find(pid);
    if (it != map_.end()) {
        touch(it);
        ProcessInfo& known = it->second.first;
        if (start_time_ns == 0 || same_start_time(known.start_time_ns, start_time_ns))
            return known;
        known = read(pid, start_time_ns, comm); // the pid was reused
        return known;
    }
    while (map_.size() >= max_entries_ && !lru_.empty()) {
        map_.erase(lru_.back());
        lru_.pop_back();
        ++stats_.evictions;
    }
    lru_.push_front(pid);
    auto [ins, ok] =
        map_.emplace(pid, std::make_pair(read(pid, start_time_ns, comm), lru_.begin()));
    (void)ok;
    return ins->second.first;
}

void ProcessTable::on_exec(uint32_t pid) {
    auto it = map_.find(pid);
    if (it == map_.end())
        return;
    lru_.erase(it->second.second);
    map_.erase(it);
}

void ProcessTable::on_exit(uint32_t pid) {
    auto it = map_.find(pid);
    if (it != map_.end())
        it->second.first.exited = true;
}

void ProcessTable::sweep_exited() {
    for (auto it = map_.begin(); it != map_.end();) {
        if (it->second.first.exited) {
            lru_.erase(it->second.second);
            it = map_.erase(it);
        } else {
            ++it;
        }
    }
}

ProcessTableStats ProcessTable::stats() const {
    ProcessTableStats s = stats_;
    s.size = map_.size();
    return s;
}

} // namespace hostprof
