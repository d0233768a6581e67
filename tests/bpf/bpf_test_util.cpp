#include "bpf_test_util.h"

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

namespace hostprof::bpftest {

std::string run_command(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr)
        return out;
    char buf[4096];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0)
        out.append(buf, n);
    ::pclose(p);
    return out;
}

namespace {

std::set<int> ids_from(const std::string& json_text, bool links) {
    std::set<int> ids;
    auto j = nlohmann::json::parse(json_text, nullptr, false);
    if (!j.is_array())
        return ids;
    // Programs are named directly; links name their program by id.
    std::set<int> progs;
    if (links) {
        for (int id : hostprof_prog_ids())
            progs.insert(id);
    }
    for (const auto& e : j) {
        if (!links) {
            std::string name = e.value("name", "");
            if (name.rfind("hp_", 0) == 0)
                ids.insert(e.value("id", -1));
        } else if (progs.contains(e.value("prog_id", -1))) {
            ids.insert(e.value("id", -1));
        }
    }
    return ids;
}

} // namespace

std::set<int> fdinfo_ids(int pid, const std::string& key) {
    std::set<int> ids;
    std::string out = run_command("grep -h '^" + key + ":' /proc/" + std::to_string(pid) +
                                  "/fdinfo/* 2>/dev/null");
    size_t pos = 0;
    while ((pos = out.find(key + ":", pos)) != std::string::npos) {
        pos += key.size() + 1;
        ids.insert(std::atoi(out.c_str() + pos));
    }
    return ids;
}

std::set<int> hostprof_prog_ids() {
    return ids_from(run_command("bpftool prog show --json 2>/dev/null"), false);
}

std::set<int> hostprof_link_ids() {
    return ids_from(run_command("bpftool link show --json 2>/dev/null"), true);
}

bool wait_until_gone(const std::set<int>& ids, bool links, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
        auto now_ids = links ? hostprof_link_ids() : hostprof_prog_ids();
        bool any = false;
        for (int id : ids)
            any = any || now_ids.contains(id);
        if (!any)
            return true;
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

} // namespace hostprof::bpftest
