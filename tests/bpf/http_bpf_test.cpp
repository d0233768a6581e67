// Privileged end-to-end tests of the agent's HTTP surface, read back by real clients:
// curl, promtool, go tool pprof.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <cstdio>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/config/config.h"
#include "bpf_test_util.h"

using hostprof::bpftest::run_command;
using namespace std::chrono_literals;

namespace {

using Agent = hostprof::bpftest::AgentProcess;

std::string curl(const std::string& args) {
    return run_command("curl -s --max-time 60 " + args + " 2>&1");
}

// The value of the sample line starting with `series` (name and labels as written).
std::optional<double> metric(const std::string& text, const std::string& series) {
    size_t at = 0;
    while ((at = text.find(series + " ", at)) != std::string::npos) {
        if (at == 0 || text[at - 1] == '\n') {
            const size_t from = at + series.size() + 1;
            return std::stod(text.substr(from, text.find('\n', from) - from));
        }
        at += series.size();
    }
    return std::nullopt;
}

TEST(Http, HealthReadyAndMetricsPassPromtool) {
    HOSTPROF_REQUIRE_ROOT();
    Agent a;
    ASSERT_TRUE(a.ready()) << a.log();
    EXPECT_EQ(curl(a.url("/healthz")), "ok\n");
    auto ready = nlohmann::json::parse(curl(a.url("/readyz")), nullptr, false);
    ASSERT_TRUE(ready.is_object());
    EXPECT_EQ(ready["status"], "ready") << ready.dump(2);
    EXPECT_EQ(ready["collectors"]["cpu"]["state"], "running");
    // The default 19 Hz is below this kernel's tick rate: on-CPU samples come from the tick.
    EXPECT_EQ(ready["collectors"]["cpu"]["hooks"][0]["hook"], "timer/hrtimer_expire_entry")
        << ready.dump(2);
    EXPECT_EQ(ready["collectors"]["cpu"]["hooks"][0]["mode"], "tp_btf") << ready.dump(2);

    std::string metrics = curl(a.url("/metrics"));
    EXPECT_NE(metrics.find("hostprof_program_attached{"), std::string::npos) << metrics;
    std::string file = "/tmp/hostprof-metrics-" + std::to_string(::getpid()) + ".txt";
    run_command("curl -s " + a.url("/metrics") + " > " + file);
    std::string check = run_command("promtool check metrics < " + file + " 2>&1; echo rc=$?");
    EXPECT_NE(check.find("rc=0"), std::string::npos) << check;
    std::remove(file.c_str());

    std::string om = run_command("curl -s -D - -H 'Accept: application/openmetrics-text; "
                                 "version=1.0.0' " +
                                 a.url("/metrics"));
    EXPECT_NE(om.find("application/openmetrics-text"), std::string::npos) << om.substr(0, 500);
    EXPECT_NE(om.find("# EOF"), std::string::npos);
}

// The symbolizer's counters (issue #4/#9): after profiling a test program, the cache holds
// its objects, lookups hit the cache, user frames were symbolized; every family is there
// with all its (bounded) label values, and promtool accepts the page.
TEST(Http, SymbolizerCountersAfterProfilingATestProgram) {
    HOSTPROF_REQUIRE_ROOT();
    Agent a({"--frequency", "99"});
    ASSERT_TRUE(a.ready()) << a.log();
    const pid_t prog = ::fork();
    if (prog == 0) {
        const std::string path = std::string(HOSTPROF_TESTPROGS_DIR) + "/cpu_ratio";
        ::execl(path.c_str(), path.c_str(), "10", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ASSERT_GT(prog, 0);
    const std::string file = "/tmp/hostprof-symstats-" + std::to_string(::getpid()) + ".pb.gz";
    for (int i = 0; i < 2; ++i) // the second profile finds the objects cached
        EXPECT_EQ(curl("-o " + file + " -w '%{http_code}' '" +
                       a.url("/debug/pprof/profile?seconds=2&pid=" + std::to_string(prog)) + "'"),
                  "200");
    ::kill(prog, SIGKILL);
    ::waitpid(prog, nullptr, 0);
    std::remove(file.c_str());

    const std::string m = curl(a.url("/metrics"));
    EXPECT_GT(metric(m, "hostprof_symbol_cache_bytes").value_or(0), 0) << m;
    EXPECT_EQ(metric(m, "hostprof_symbol_cache_limit_bytes").value_or(0), 16.0 * (1 << 20));
    EXPECT_GE(metric(m, "hostprof_symbol_cache_objects").value_or(0), 1);
    EXPECT_GE(metric(m, "hostprof_symbol_cache_misses_total").value_or(0), 1);
    EXPECT_GT(metric(m, "hostprof_symbol_cache_hits_total").value_or(0), 0);
    EXPECT_TRUE(metric(m, "hostprof_symbol_cache_evictions_total").has_value());
    EXPECT_TRUE(metric(m, "hostprof_symbolizer_lookup_memory_releases_total").has_value());
    EXPECT_TRUE(metric(m, "hostprof_kallsyms_loads_total").has_value());
    EXPECT_GE(metric(m, "hostprof_symbolizer_processes").value_or(0), 1);
    EXPECT_GT(metric(m, "hostprof_frames_total{kind=\"user\"}").value_or(0), 0);
    EXPECT_TRUE(metric(m, "hostprof_frames_total{kind=\"kernel\"}").has_value());
    for (const char* reason : {"no_mapping", "stripped", "no_symbol", "unreadable", "not_elf",
                               "no_kallsyms", "evicted", "refused"})
        EXPECT_TRUE(
            metric(m, std::string("hostprof_frames_unsymbolized_total{reason=\"") + reason + "\"}")
                .has_value())
            << reason;
    EXPECT_GE(metric(m, "hostprof_symbolizer_files_opened_total").value_or(0), 1);
    for (const char* reason : {"symlink", "escape", "not_regular", "too_large", "error"})
        EXPECT_TRUE(metric(m, std::string("hostprof_symbolizer_file_refusals_total{reason=\"") +
                                  reason + "\"}")
                        .has_value())
            << reason;
    EXPECT_TRUE(metric(m, "hostprof_perf_map_malformed_lines_total").has_value());
    EXPECT_TRUE(metric(m, "hostprof_symbolizer_minidebuginfo_total{result=\"loaded\"}"));
    EXPECT_EQ(metric(m, "hostprof_debuginfod_enabled").value_or(-1), 0);
    for (const char* name :
         {"hostprof_debuginfod_lookups_total", "hostprof_debuginfod_hits_total",
          "hostprof_debuginfod_failures_total", "hostprof_debuginfod_queue_drops_total"})
        EXPECT_EQ(metric(m, name).value_or(-1), 0) << name;

    const std::string page = "/tmp/hostprof-symstats-" + std::to_string(::getpid()) + ".txt";
    run_command("curl -s " + a.url("/metrics") + " > " + page);
    std::string check = run_command("promtool check metrics < " + page + " 2>&1; echo rc=$?");
    EXPECT_NE(check.find("rc=0"), std::string::npos) << check;
    std::remove(page.c_str());
}

// A binary deleted after its process mapped it (a package upgrade, a rebuilt service):
// the daemon, with its capabilities dropped, reaches it through /proc/PID/map_files.
TEST(Http, DeletedBinaryStillSymbolizes) {
    HOSTPROF_REQUIRE_ROOT();
    Agent a({"--frequency", "99"});
    ASSERT_TRUE(a.ready()) << a.log();
    const std::string dir = "/var/tmp/hostprof-deleted-" + std::to_string(::getpid());
    const std::string copy = dir + "/cpu_ratio";
    ASSERT_EQ(run_command("mkdir -p " + dir + " && cp " + HOSTPROF_TESTPROGS_DIR + "/cpu_ratio " +
                          copy + " && echo ok"),
              "ok\n");
    const pid_t prog = ::fork();
    if (prog == 0) {
        ::execl(copy.c_str(), copy.c_str(), "10", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ASSERT_GT(prog, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(200)); // exec'd and mapped
    run_command("rm -rf " + dir);
    const std::string maps = run_command("grep cpu_ratio /proc/" + std::to_string(prog) + "/maps");
    const std::string file = "/tmp/hostprof-deleted-" + std::to_string(::getpid()) + ".pb.gz";
    EXPECT_EQ(curl("-o " + file + " -w '%{http_code}' '" +
                   a.url("/debug/pprof/profile?seconds=2&pid=" + std::to_string(prog)) + "'"),
              "200");
    ::kill(prog, SIGKILL);
    ::waitpid(prog, nullptr, 0);
    std::string top =
        run_command("HOME=/tmp GOCACHE=/tmp/hostprof-gocache go tool pprof -top " + file + " 2>&1");
    std::remove(file.c_str());
    EXPECT_NE(maps.find("(deleted)"), std::string::npos) << maps;
    EXPECT_NE(top.find("hot_three_quarters"), std::string::npos) << top.substr(0, 1500);
    EXPECT_NE(top.find("hot_one_quarter"), std::string::npos) << top.substr(0, 1500);
}

// A process the agent has sampled for a while wakes nobody (the kernel wakes the agent
// only past a fill level or for a new process): a profile of it must still hold every
// second asked for, because the request drains the ring before collecting (flush). A
// 3 s profile at 99 Hz of a process burning a CPU: about 297 samples. A long window, so
// no rollover drains the ring during the request.
TEST(Http, ProfileOfALongRunningProcessHasAllItsSamples) {
    HOSTPROF_REQUIRE_ROOT();
    Agent a({"--frequency", "99", "--profile-window", "60s"});
    ASSERT_TRUE(a.ready()) << a.log();
    const std::string prog_path = std::string(HOSTPROF_TESTPROGS_DIR) + "/cpu_ratio";
    const pid_t prog = ::fork();
    if (prog == 0) {
        ::execl(prog_path.c_str(), prog_path.c_str(), "10", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ASSERT_GT(prog, 0);
    std::this_thread::sleep_for(1500ms); // past its first-sample wakeups
    const std::string file = "/tmp/hostprof-long-" + std::to_string(::getpid()) + ".pb.gz";
    EXPECT_EQ(curl("-o " + file + " -w '%{http_code}' '" +
                   a.url("/debug/pprof/profile?seconds=3&pid=" + std::to_string(prog)) + "'"),
              "200");
    ::kill(prog, SIGKILL);
    ::waitpid(prog, nullptr, 0);
    const std::string samples =
        run_command("HOME=/tmp GOCACHE=/tmp/hostprof-gocache go tool pprof -raw " + file +
                    " 2>&1 | awk '$2 ~ /^[0-9]+:$/ { n += $1 } END { print n + 0 }'");
    std::remove(file.c_str());
    EXPECT_GE(std::stoi(samples), 150) << "samples in a 3 s profile at 99 Hz: " << samples;
    EXPECT_LE(std::stoi(samples), 320) << samples;
}

// `--cgroup-filter`: only tasks in that cgroup v2 directory or below are sampled, decided in the
// kernel (the "filtered" count rises): a process in a child cgroup created before the
// agent is profiled, one outside is not.
TEST(Http, CgroupFilterInTheKernelKeepsTheSubtree) {
    HOSTPROF_REQUIRE_ROOT();
    const std::string root = hostprof::cgroup2_root();
    const std::string rel = "/hostprof-cgfilter-" + std::to_string(::getpid());
    ASSERT_EQ(run_command("mkdir -p " + root + rel + "/inner && echo ok"), "ok\n");
    struct Cleanup {
        std::string dir;
        ~Cleanup() { run_command("rmdir " + dir + "/inner " + dir + " 2>/dev/null"); }
    } cleanup{root + rel};
    auto spawn = [&](const std::string& cgroup) {
        pid_t pid = ::fork();
        if (pid == 0) {
            if (!cgroup.empty()) {
                std::ofstream procs(cgroup + "/cgroup.procs");
                procs << ::getpid() << std::endl;
                if (!procs)
                    ::_exit(126);
            }
            const std::string path = std::string(HOSTPROF_TESTPROGS_DIR) + "/cpu_ratio";
            ::execl(path.c_str(), path.c_str(), "10", static_cast<char*>(nullptr));
            ::_exit(127);
        }
        return pid;
    };
    Agent a({"--frequency", "99", "--collectors", "cpu", "--cgroup-filter", rel});
    ASSERT_TRUE(a.ready()) << a.log();
    const pid_t inside = spawn(root + rel + "/inner");
    const pid_t outside = spawn("");
    ASSERT_GT(inside, 0);
    ASSERT_GT(outside, 0);
    auto top = [&](pid_t pid) {
        const std::string file = "/tmp/hostprof-cgf-" + std::to_string(pid) + ".pb.gz";
        curl("-o " + file + " '" +
             a.url("/debug/pprof/profile?seconds=2&pid=" + std::to_string(pid)) + "'");
        std::string out = run_command("HOME=/tmp GOCACHE=/tmp/hostprof-gocache go tool pprof "
                                      "-top " +
                                      file + " 2>&1");
        std::remove(file.c_str());
        return out;
    };
    const std::string in_top = top(inside), out_top = top(outside);
    const std::string m = curl(a.url("/metrics"));
    for (pid_t p : {inside, outside}) {
        ::kill(p, SIGKILL);
        ::waitpid(p, nullptr, 0);
    }
    EXPECT_NE(in_top.find("hot_three_quarters"), std::string::npos) << in_top.substr(0, 1500);
    EXPECT_EQ(out_top.find("hot_three_quarters"), std::string::npos) << out_top.substr(0, 1500);
    EXPECT_GT(metric(m, "hostprof_profile_events_total{kind=\"filtered\"}").value_or(0), 50) << m;
    // 99 Hz is below this kernel's tick rate (250 Hz), so the agent's default clock here is
    // the tick: every tick is counted, 99 of 250 become samples (drawn per tick), and every
    // sampled kernel stack was cut at the timer interrupt's entry.
    const double ticks = metric(m, "hostprof_profile_events_total{kind=\"tick\"}").value_or(0);
    const double samples = metric(m, "hostprof_profile_events_total{kind=\"on_cpu\"}").value_or(0);
    ASSERT_GT(ticks, 500) << m;
    EXPECT_GT(samples / ticks, 99.0 / 250 - 0.08) << m;
    EXPECT_LT(samples / ticks, 99.0 / 250 + 0.08) << m;
    EXPECT_EQ(metric(m, "hostprof_tick_stacks_untrimmed_total").value_or(-1), 0) << m;
    // User or kernel mode came from the interrupted registers, not from a walk.
    EXPECT_EQ(metric(m, "hostprof_tick_regs_failures_total{reason=\"unreadable\"}").value_or(-1), 0)
        << m;
    EXPECT_LE(metric(m, "hostprof_tick_regs_failures_total{reason=\"mismatch\"}").value_or(-1),
              samples / 100)
        << m;
}

TEST(Http, PprofEndpointIsGoCompatible) {
    HOSTPROF_REQUIRE_ROOT();
    Agent a({"--frequency", "99"});
    ASSERT_TRUE(a.ready()) << a.log();
    std::string file = "/tmp/hostprof-pprof-" + std::to_string(::getpid()) + ".pb.gz";
    std::string head = run_command("curl -s -D - -o " + file + " '" +
                                   a.url("/debug/pprof/profile?seconds=2") + "'");
    EXPECT_NE(head.find("200"), std::string::npos) << head;
    EXPECT_NE(head.find("application/octet-stream"), std::string::npos) << head;
    std::string raw = run_command("HOME=/tmp GOCACHE=/tmp/hostprof-gocache go tool pprof "
                                  "-symbolize=none -raw " +
                                  file + " 2>&1");
    EXPECT_NE(raw.find("samples/count cpu/nanoseconds"), std::string::npos) << raw.substr(0, 800);
    EXPECT_NE(raw.find("Period: 10101010"), std::string::npos) << raw.substr(0, 800);
    std::remove(file.c_str());

    EXPECT_EQ(
        curl("-o /dev/null -w '%{http_code}' '" + a.url("/debug/pprof/profile?seconds=x") + "'"),
        "400");
    EXPECT_EQ(curl("-o /dev/null -w '%{http_code}' '" +
                   a.url("/debug/pprof/profile?seconds=100000") + "'"),
              "400");
    EXPECT_EQ(
        curl("-o /dev/null -w '%{http_code}' '" + a.url("/debug/pprof/profile?pid=abc") + "'"),
        "400");
    // A bad %-escape is a 400 too, not a silently ignored parameter.
    EXPECT_EQ(
        curl("-o /dev/null -w '%{http_code}' '" + a.url("/debug/pprof/profile?seconds=%3") + "'"),
        "400");
    EXPECT_EQ(curl("-o /dev/null -w '%{http_code}' " + a.url("/nope")), "404");
    EXPECT_NE(curl(a.url("/metrics")).find("hostprof_http_bad_requests_total 4"),
              std::string::npos);
}

TEST(Http, ConcurrentProfilesBeyondTheLimitGet429AndMetricsStayFast) {
    HOSTPROF_REQUIRE_ROOT();
    Agent a({"--max-concurrent-profiles", "2"});
    ASSERT_TRUE(a.ready()) << a.log();
    std::vector<std::future<std::string>> calls;
    for (int i = 0; i < 6; ++i)
        calls.push_back(std::async(std::launch::async, [&a] {
            return curl("-o /dev/null -w '%{http_code}' '" +
                        a.url("/debug/pprof/profile?seconds=3") + "'");
        }));
    std::this_thread::sleep_for(500ms);
    auto t0 = std::chrono::steady_clock::now();
    std::string metrics = curl(a.url("/metrics"));
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_NE(metrics.find("hostprof_"), std::string::npos);
    EXPECT_LT(took, 1s) << "/metrics must answer while profiles are being collected";
    int ok = 0, limited = 0;
    for (auto& c : calls) {
        std::string code = c.get();
        ok += code == "200";
        limited += code == "429";
    }
    EXPECT_EQ(ok, 2);
    EXPECT_EQ(limited, 4);
    EXPECT_NE(curl(a.url("/metrics")).find("hostprof_http_throttled_profiles_total 4"),
              std::string::npos);
}

TEST(Http, FlamegraphPageIsServed) {
    HOSTPROF_REQUIRE_ROOT();
    Agent a({"--frequency", "99"});
    ASSERT_TRUE(a.ready()) << a.log();
    std::string page = curl(a.url("/flamegraph?seconds=1"));
    EXPECT_NE(page.find("<!DOCTYPE html>"), std::string::npos) << page.substr(0, 300);
    EXPECT_EQ(page.find("http://"), std::string::npos) << "the page must not fetch anything";
}

} // namespace
