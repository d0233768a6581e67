#include <gtest/gtest.h>
#include <unistd.h>

#include "agent/process/process_table.h"

using namespace hostprof;

namespace {

const std::string kProc = std::string(HOSTPROF_TEST_DATA) + "/proc";
const uint64_t kTick = 1'000'000'000ULL / static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));

struct CgroupCase {
    const char* path;
    const char* runtime;
    const char* id_prefix;
    const char* pod_uid;
};

class Containers : public ::testing::TestWithParam<CgroupCase> {};

TEST_P(Containers, ParsesRuntimeIdAndPod) {
    const auto& c = GetParam();
    ContainerInfo info = parse_container_info(c.path);
    EXPECT_EQ(info.runtime, c.runtime) << c.path;
    EXPECT_EQ(info.container_id.substr(0, std::string(c.id_prefix).size()), c.id_prefix);
    if (*c.id_prefix != 0)
        EXPECT_EQ(info.container_id.size(), 64u);
    else
        EXPECT_TRUE(info.container_id.empty());
    EXPECT_EQ(info.pod_uid, c.pod_uid);
}

#define ID64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
INSTANTIATE_TEST_SUITE_P(
    Paths, Containers,
    ::testing::Values(
        CgroupCase{"/system.slice/docker-" ID64 ".scope", "docker", "0123456789ab", ""},
        CgroupCase{"/docker/" ID64, "docker", "0123456789ab", ""},
        CgroupCase{"/kubepods.slice/kubepods-burstable.slice/"
                   "kubepods-burstable-pod1b2c3d4e_0000_4000_8000_123456789abc.slice/"
                   "cri-containerd-" ID64 ".scope",
                   "containerd", "0123456789ab", "1b2c3d4e-0000-4000-8000-123456789abc"},
        CgroupCase{"/kubepods/besteffort/pod1b2c3d4e-0000-4000-8000-123456789abc/" ID64,
                   "kubernetes", "0123456789ab", "1b2c3d4e-0000-4000-8000-123456789abc"},
        CgroupCase{"/kubepods.slice/kubepods-pod1b2c3d4e_0000_4000_8000_123456789abc.slice/"
                   "crio-" ID64 ".scope",
                   "crio", "0123456789ab", "1b2c3d4e-0000-4000-8000-123456789abc"},
        CgroupCase{"/machine.slice/libpod-" ID64 ".scope/container", "podman", "0123456789ab", ""},
        CgroupCase{"/user.slice/user-1000.slice/session-3.scope", "", "", ""},
        CgroupCase{"/system.slice/docker-nothex.scope", "", "", ""}, CgroupCase{"/", "", "", ""}));

TEST(ProcessTable, CgroupFileV2AndV1) {
    EXPECT_EQ(parse_cgroup_file("0::/a/b\n"), "/a/b");
    EXPECT_EQ(parse_cgroup_file("12:memory:/m\n4:cpu,cpuacct:/c\n1:name=systemd:/s\n"), "/c");
    EXPECT_EQ(parse_cgroup_file("garbage\n"), "");
}

TEST(ProcessTable, StatStartTimeSurvivesOddComm) {
    EXPECT_EQ(parse_stat_start_ticks("1 (a) b) S 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 77 1"), 77u);
    EXPECT_FALSE(parse_stat_start_ticks("1 (x) S 1 2"));
    EXPECT_FALSE(parse_stat_start_ticks("no parens"));
    EXPECT_EQ(parse_stat_comm("1 (a) b) S 0 0"), "a) b");
    EXPECT_EQ(parse_stat_state("1 (a) b) S 0 0"), 'S');
    EXPECT_EQ(parse_stat_state("7 (true) Z 1 2"), 'Z');
    EXPECT_EQ(parse_stat_comm("no parens"), "");
    EXPECT_EQ(parse_stat_state("1 (x)"), '\0');
}

TEST(ProcessTable, ReadsFakeProcTree) {
    ProcessTable t(kProc);
    const ProcessInfo& p = t.get(4242, 12345 * kTick, "fallback");
    EXPECT_EQ(p.comm, "my (odd) app");
    EXPECT_EQ(p.exe, "/usr/bin/odd");
    EXPECT_EQ(p.cmdline, "/usr/bin/odd --flag value");
    EXPECT_EQ(p.container.runtime, "containerd");
    EXPECT_EQ(p.container.pod_uid, "1b2c3d4e-0000-4000-8000-123456789abc");
    EXPECT_EQ(p.service_name, "0123456789ab"); // auto: short container id
    const ProcessInfo& q = t.get(77, 0, "");
    EXPECT_EQ(q.service_name, "plain-server"); // auto: executable name
    EXPECT_EQ(q.start_time_ns, 999 * kTick);
    EXPECT_EQ(t.stats().size, 2u);
}

TEST(ProcessTable, PidReuseNeverBorrowsAnotherProcessesMetadata) {
    ProcessTable t(kProc);
    // A sample from a process that started at another time than procfs's pid 77.
    const ProcessInfo& p = t.get(77, 5000 * kTick, "shortlived");
    EXPECT_EQ(p.comm, "shortlived");
    EXPECT_TRUE(p.exe.empty());
    EXPECT_EQ(t.stats().identity_mismatches, 1u);
    // The real pid-77 process is recognised by its own start time, and re-read.
    EXPECT_EQ(t.get(77, 999 * kTick, "").exe, "/usr/local/bin/plain-server");
}

TEST(ProcessTable, GoneProcessKeepsSampleComm) {
    ProcessTable t(kProc);
    const ProcessInfo& p = t.get(99999, 1, "ghost");
    EXPECT_EQ(p.comm, "ghost");
    EXPECT_EQ(p.service_name, "ghost");
    EXPECT_EQ(t.stats().read_errors, 1u);
}

TEST(ProcessTable, BoundedWithLruEviction) {
    ProcessTable t(kProc, 2);
    t.get(4242, 0);
    t.get(77, 0);
    t.get(4242, 0); // 77 is now least recently used
    t.get(99999, 0, "x");
    EXPECT_EQ(t.stats().size, 2u);
    EXPECT_EQ(t.stats().evictions, 1u);
    uint64_t reads = t.stats().reads;
    t.get(4242, 0); // still cached
    EXPECT_EQ(t.stats().reads, reads);
}

TEST(ProcessTable, ExitSweepAndExecReread) {
    ProcessTable t(kProc);
    t.get(77, 0);
    t.on_exit(77);
    EXPECT_EQ(t.stats().size, 1u); // kept until the window is rendered
    t.sweep_exited();
    EXPECT_EQ(t.stats().size, 0u);
    t.get(4242, 0);
    t.on_exec(4242);
    EXPECT_EQ(t.stats().size, 0u);
}

TEST(ProcessTable, ServiceRules) {
    EXPECT_EQ(ProcessTable(kProc, 10, ServiceRule::Comm).get(4242, 0).service_name, "my (odd) app");
    EXPECT_EQ(ProcessTable(kProc, 10, ServiceRule::Exe).get(4242, 0).service_name, "odd");
    EXPECT_EQ(ProcessTable(kProc, 10, ServiceRule::Cgroup).get(77, 0).service_name,
              "session-1.scope");
    EXPECT_FALSE(service_rule_from_string("nope"));
}

} // namespace
