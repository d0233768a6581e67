#include "bpf_test_util.h"

#include <algorithm>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <fstream>
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

AgentProcess::AgentProcess(std::vector<std::string> extra) {
    port_ = 20000 + (::getpid() % 20000);
    int err_pipe[2];
    if (::pipe2(err_pipe, O_CLOEXEC) != 0)
        return;
    pid_ = ::fork();
    if (pid_ == 0) {
        ::dup2(err_pipe[1], STDERR_FILENO);
        std::vector<std::string> args = {HOSTPROF_BINARY, "run", "--listen",
                                         "127.0.0.1:" + std::to_string(port_)};
        // Short windows by default, so the continuous window's rollover comes soon.
        if (std::find(extra.begin(), extra.end(), "--profile-window") == extra.end())
            args.insert(args.end(), {"--profile-window", "2s"});
        args.insert(args.end(), extra.begin(), extra.end());
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(err_pipe[1]);
    err_ = err_pipe[0];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!ready() && !eof_ && std::chrono::steady_clock::now() < deadline)
        read_log(200);
    read_log(0); // an agent that exited early: its last words
}

void AgentProcess::read_log(int timeout_ms) {
    if (err_ < 0)
        return;
    pollfd pfd{err_, POLLIN, 0};
    while (::poll(&pfd, 1, timeout_ms) > 0) {
        char buf[4096];
        ssize_t n = ::read(err_, buf, sizeof(buf));
        if (n <= 0) {
            eof_ = n == 0; // the agent exited
            break;
        }
        log_.append(buf, static_cast<size_t>(n));
        timeout_ms = 0;
    }
}

AgentProcess::~AgentProcess() {
    if (pid_ > 0) {
        ::kill(pid_, SIGTERM);
        ::waitpid(pid_, nullptr, 0);
    }
    if (err_ >= 0)
        ::close(err_);
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid = ::fork();
    if (pid == 0) {
        ::execv(args[0], args.data());
        ::_exit(127);
    }
}

ChildProcess::~ChildProcess() {
    if (pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
}

PromServer::PromServer(int agent_port, const std::string& name, std::vector<std::string> flags,
                       const std::vector<std::string>& rule_files)
    : dir_("/tmp/hostprof-prom-" + name + "-" + std::to_string(::getpid())),
      port_(40000 + (::getpid() % 20000) + static_cast<int>(name.size())) {
    run_command("rm -rf " + dir_ + " && mkdir -p " + dir_);
    {
        std::ofstream cfg(dir_ + "/prometheus.yml");
        cfg << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n";
        if (!rule_files.empty()) {
            cfg << "rule_files:\n";
            for (const std::string& f : rule_files)
                cfg << "  - '" << f << "'\n";
        }
        cfg << "scrape_configs:\n  - job_name: hostprof\n    static_configs:\n"
            << "      - targets: ['127.0.0.1:" << agent_port << "']\n";
    }
    flags.insert(flags.begin(), {"prometheus", "--config.file=" + dir_ + "/prometheus.yml",
                                 "--storage.tsdb.path=" + dir_ + "/data",
                                 "--web.listen-address=127.0.0.1:" + std::to_string(port_)});
    pid_ = ::fork();
    if (pid_ == 0) {
        std::freopen((dir_ + "/prometheus.log").c_str(), "w", stderr);
        std::vector<char*> argv;
        for (auto& f : flags)
            argv.push_back(f.data());
        argv.push_back(nullptr);
        ::execvp(argv[0], argv.data());
        ::_exit(127);
    }
}

PromServer::~PromServer() {
    if (pid_ > 0) {
        ::kill(pid_, SIGTERM);
        ::waitpid(pid_, nullptr, 0);
    }
    run_command("rm -rf " + dir_);
}

nlohmann::json
PromServer::api(const std::string& path,
                const std::vector<std::pair<std::string, std::string>>& params) const {
    std::string cmd = "curl -s --max-time 10 -G";
    for (const auto& [k, v] : params) {
        std::string quoted; // single-quoted for the shell
        for (char c : v)
            quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
        cmd += " --data-urlencode '" + k + "=" + quoted + "'";
    }
    cmd += " http://127.0.0.1:" + std::to_string(port_) + "/api/v1/" + path + " 2>&1";
    return nlohmann::json::parse(run_command(cmd), nullptr, false);
}

std::optional<double> PromServer::scalar(const std::string& promql, const std::string& at) const {
    const nlohmann::json r = query(promql, at);
    if (!r.is_object() || r.value("status", "") != "success" || r["data"]["result"].empty())
        return std::nullopt;
    return std::stod(r["data"]["result"][0]["value"][1].get<std::string>());
}

bool PromServer::wait_up() const {
    for (int i = 0; i < 60; ++i) {
        if (scalar("up{job=\"hostprof\"}") == 1.0)
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    return false;
}

std::string PromServer::log() const {
    return run_command("tail -20 " + dir_ + "/prometheus.log");
}

} // namespace hostprof::bpftest
