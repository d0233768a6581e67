// Privileged: the syscall-latency collector against a test program that makes a known
// set of syscalls (tests/testprogs/syscall_latency.c), in its own cgroup v2 group, under
// each attach mode.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "kernel-compat/syscall_table.h"
#include "agent/collect/syscall_collector.h"
#include "agent/serve/latency_metrics.h"
#include "bpf_test_util.h"
#include "kernel-compat/tracefs.h"

using namespace hostprof;
using namespace std::chrono_literals;

namespace {

constexpr int kNanosleeps = 20;
constexpr int kGetppids = 1000;
constexpr int kBadCloses = 7;

// A fresh cgroup v2 directory, removed on destruction (once empty).
class TestCgroup {
  public:
    TestCgroup() {
        std::ifstream mounts("/proc/mounts");
        std::string dev, dir, type, rest;
        while (mounts >> dev >> dir >> type && std::getline(mounts, rest))
            if (type == "cgroup2") {
                path_ = dir + "/hostprof-syscalls-test-" + std::to_string(::getpid());
                break;
            }
        if (path_.empty())
            return;
        ::rmdir(path_.c_str());
        if (::mkdir(path_.c_str(), 0755) != 0) {
            path_.clear();
            return;
        }
        struct stat st {};
        if (::stat(path_.c_str(), &st) == 0)
            id_ = st.st_ino; // the cgroup v2 id bpf_get_current_cgroup_id() returns
    }
    ~TestCgroup() {
        if (!path_.empty())
            ::rmdir(path_.c_str());
    }
    TestCgroup(const TestCgroup&) = delete;
    TestCgroup& operator=(const TestCgroup&) = delete;
    const std::string& path() const { return path_; }
    uint64_t id() const { return id_; }

  private:
    std::string path_;
    uint64_t id_ = 0;
};

struct Outlier {
    uint32_t pid;
    std::string syscall;
    uint64_t duration_ns;
    int64_t ret;
    std::string comm;
    std::vector<uint64_t> kernel_frames;
    std::vector<uint64_t> user_frames;
};

// Runs the test program inside the cgroup; returns its pid, its stdout fd.
pid_t spawn_in_cgroup(const std::string& cgroup, int& out_fd) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0)
        return -1;
    std::string prog = std::string(HOSTPROF_TESTPROGS_DIR) + "/syscall_latency";
    std::string procs = cgroup + "/cgroup.procs";
    std::string n = std::to_string(kNanosleeps), m = std::to_string(kGetppids),
                k = std::to_string(kBadCloses);
    pid_t pid = ::fork();
    if (pid == 0) {
        int fd = ::open(procs.c_str(), O_WRONLY);
        if (fd < 0 || ::write(fd, "0", 1) != 1)
            ::_exit(126);
        ::close(fd);
        ::dup2(p[1], STDOUT_FILENO);
        ::execl(prog.c_str(), prog.c_str(), n.c_str(), m.c_str(), k.c_str(),
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(p[1]);
    out_fd = p[0];
    return pid;
}

// [start, end) of slow_read in the running test program, from its printed address and
// the symbol size in the binary's symbol table (nm, which nobody here wrote).
bool slow_read_range(const std::string& printed, uint64_t& start, uint64_t& end) {
    unsigned long long runtime = 0;
    if (std::sscanf(printed.c_str(), "slow_read %llx", &runtime) != 1)
        return false;
    std::string nm = bpftest::run_command("nm -S --defined-only " +
                                          std::string(HOSTPROF_TESTPROGS_DIR) + "/syscall_latency");
    std::istringstream lines(nm);
    std::string line;
    while (std::getline(lines, line)) {
        unsigned long long addr = 0, size = 0;
        char type = 0;
        char name[256] = {};
        if (std::sscanf(line.c_str(), "%llx %llx %c %255s", &addr, &size, &type, name) == 4 &&
            std::string(name) == "slow_read") {
            start = runtime;
            end = runtime + size;
            return size > 0;
        }
    }
    return false;
}

uint64_t count_of(const SyscallSnapshot& s, std::string_view name) {
    const SyscallStats* st = s.find(name);
    return st ? st->latency.count() : 0;
}

uint64_t errors_of(const SyscallSnapshot& s, std::string_view name, int err) {
    const SyscallStats* st = s.find(name);
    if (!st)
        return 0;
    auto it = st->errors.find(err);
    return it == st->errors.end() ? 0 : it->second;
}

class SyscallModes : public ::testing::TestWithParam<compat::AttachMode> {};

TEST_P(SyscallModes, HistogramsErrorsAndOutlierStacks) {
    HOSTPROF_REQUIRE_ROOT();
    if (GetParam() == compat::AttachMode::Tracepoint) {
        Status st = compat::ensure_tracefs("/sys/kernel/tracing");
        ASSERT_TRUE(st) << st.error().message();
    }
    TestCgroup cg;
    ASSERT_FALSE(cg.path().empty()) << "no cgroup v2 hierarchy to make a test group in";
    ASSERT_NE(cg.id(), 0u);

    SyscallOptions o;
    o.mode = GetParam();
    o.outlier_threshold_ns = 30'000'000;
    o.outlier_threshold_overrides = {{"read", 40'000'000}, {"nanosleep", 5'000'000}};
    o.cgroup_ids = {cg.id()};
    // raw_tp also covers the fallback for kernels without task storage in tracing programs.
    o.force_hash_in_flight = GetParam() == compat::AttachMode::RawTp;
    std::mutex mu;
    std::vector<Outlier> outliers;
    auto started = SyscallCollector::start(o, [&](const SyscallOutlierView& v) {
        std::lock_guard lock(mu);
        outliers.push_back({v.pid,
                            std::string(v.syscall),
                            v.duration_ns,
                            v.ret,
                            std::string(v.comm),
                            {v.kernel_frames.begin(), v.kernel_frames.end()},
                            {v.user_frames.begin(), v.user_frames.end()}});
    });
    ASSERT_TRUE(started) << started.error().message();
    SyscallCollector& c = *started.value();
    // tp_btf with task storage adds the sched_switch hook of the per-CPU in-flight slot.
    const bool cpu_slot = !o.force_hash_in_flight && o.mode == compat::AttachMode::TpBtf;
    ASSERT_EQ(c.attached().size(), cpu_slot ? 3u : 2u);
    EXPECT_EQ(c.in_flight_storage(), o.force_hash_in_flight ? "lru hash"
                                     : cpu_slot             ? "per-CPU slot + task storage"
                                                            : "task storage");
    SyscallSnapshot before = c.snapshot();

    int out_fd = -1;
    pid_t pid = spawn_in_cgroup(cg.path(), out_fd);
    ASSERT_GT(pid, 0);
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0)
        c.poll(20);
    std::string printed(256, '\0');
    ssize_t got = ::read(out_fd, printed.data(), printed.size());
    ::close(out_fd);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    printed.resize(got > 0 ? static_cast<size_t>(got) : 0);

    auto has_read_outlier = [&] {
        std::lock_guard lock(mu);
        for (const Outlier& r : outliers)
            if (r.pid == static_cast<uint32_t>(pid) && r.syscall == "read")
                return true;
        return false;
    };
    for (auto end = std::chrono::steady_clock::now() + 5s;
         !has_read_outlier() && std::chrono::steady_clock::now() < end;)
        c.poll(50);
    SyscallSnapshot after = c.snapshot();

    // Host-wide: at least the test program's calls, under exactly those names.
    EXPECT_GE(count_of(after, "nanosleep") - count_of(before, "nanosleep"),
              static_cast<uint64_t>(kNanosleeps));
    EXPECT_GE(count_of(after, "getppid") - count_of(before, "getppid"),
              static_cast<uint64_t>(kGetppids));
    EXPECT_GE(errors_of(after, "close", EBADF) - errors_of(before, "close", EBADF),
              static_cast<uint64_t>(kBadCloses));

    // The test program's cgroup: exactly its calls, nothing from the rest of the host.
    const SyscallStats* ns = after.find(cg.id(), "nanosleep");
    const SyscallStats* pp = after.find(cg.id(), "getppid");
    ASSERT_NE(ns, nullptr);
    ASSERT_NE(pp, nullptr);
    EXPECT_EQ(ns->latency.count(), static_cast<uint64_t>(kNanosleeps));
    EXPECT_EQ(pp->latency.count(), static_cast<uint64_t>(kGetppids));
    // 10 ms is in slot 23, [8.39 ms, 16.8 ms); a late wakeup on a busy host may reach
    // slot 24 (< 33.6 ms). nanosleep never returns early, so nothing below slot 23.
    // A host busy with other work may wake a sleeper later still, so demand 90% there.
    uint64_t below = 0;
    for (size_t i = 0; i < 23; ++i)
        below += ns->latency.slots[i];
    EXPECT_EQ(below, 0u) << "nanosleep(10 ms) never returns early";
    uint64_t around_10ms = ns->latency.slots[23] + ns->latency.slots[24];
    EXPECT_GE(around_10ms, static_cast<uint64_t>(kNanosleeps) * 9 / 10);
    EXPECT_GE(ns->latency.slots[23], static_cast<uint64_t>(kNanosleeps) / 2);
    EXPECT_GE(ns->latency.sum, static_cast<uint64_t>(kNanosleeps) * 10'000'000u);
    std::printf("cgroup %llu: nanosleep %llu (slot23 %llu, slot24 %llu, mean %.3f ms), "
                "getppid %llu; host-wide close EBADF +%llu\n",
                static_cast<unsigned long long>(cg.id()),
                static_cast<unsigned long long>(ns->latency.count()),
                static_cast<unsigned long long>(ns->latency.slots[23]),
                static_cast<unsigned long long>(ns->latency.slots[24]),
                static_cast<double>(ns->latency.sum) / 1e6 / static_cast<double>(kNanosleeps),
                static_cast<unsigned long long>(pp->latency.count()),
                static_cast<unsigned long long>(errors_of(after, "close", EBADF) -
                                                errors_of(before, "close", EBADF)));

    // The same, through the Prometheus conversion (seconds, cumulative buckets).
    bool found_series = false;
    for (const auto& fam : syscall_metric_families(after)) {
        if (fam.name != "hostprof_cgroup_syscall_latency_seconds")
            continue;
        for (const auto& m : fam.metric) {
            if (m.label.size() != 3 || m.label[1].value != std::to_string(cg.id()) ||
                m.label[2].value != "nanosleep")
                continue;
            found_series = true;
            EXPECT_EQ(m.histogram.sample_count, static_cast<uint64_t>(kNanosleeps));
            for (const auto& b : m.histogram.bucket) {
                if (b.upper_bound <= 0.008388608 + 1e-12) {
                    EXPECT_EQ(b.cumulative_count, 0u) << "le=" << b.upper_bound;
                }
                if (std::isinf(b.upper_bound)) {
                    EXPECT_EQ(b.cumulative_count, static_cast<uint64_t>(kNanosleeps))
                        << "le=" << b.upper_bound;
                }
            }
        }
    }
    EXPECT_TRUE(found_series);

    // Outliers: each nanosleep (override 5 ms), and the 50 ms pipe read (override 40 ms)
    // with slow_read in its user stack.
    uint64_t start = 0, end = 0;
    ASSERT_TRUE(slow_read_range(printed, start, end)) << "printed: " << printed;
    std::lock_guard lock(mu);
    int nanosleep_outliers = 0, read_outliers = 0;
    for (const Outlier& r : outliers) {
        // Before its exec the child is still "bpf_tests" (joining the cgroup can be slow).
        if (r.pid != static_cast<uint32_t>(pid) || r.comm != "syscall_latency")
            continue;
        if (r.syscall == "nanosleep") {
            ++nanosleep_outliers;
            EXPECT_GE(r.duration_ns, 5'000'000u);
        } else if (r.syscall == "read") {
            ++read_outliers;
            EXPECT_GE(r.duration_ns, 40'000'000u);
            EXPECT_EQ(r.ret, 1);
            EXPECT_FALSE(r.kernel_frames.empty());
            ASSERT_FALSE(r.user_frames.empty());
            bool in_slow_read = false;
            for (uint64_t ip : r.user_frames)
                in_slow_read |= ip >= start && ip < end;
            std::printf("read outlier: %.2f ms, %zu kernel + %zu user frames, leaf 0x%llx in "
                        "slow_read [0x%llx, 0x%llx)\n",
                        static_cast<double>(r.duration_ns) / 1e6, r.kernel_frames.size(),
                        r.user_frames.size(), static_cast<unsigned long long>(r.user_frames[0]),
                        static_cast<unsigned long long>(start),
                        static_cast<unsigned long long>(end));
            EXPECT_TRUE(in_slow_read) << "no user frame in slow_read [" << std::hex << start << ", "
                                      << end << "), leaf " << r.user_frames[0];
        } else {
            ADD_FAILURE() << "unexpected outlier " << r.syscall << " of " << r.duration_ns << " ns";
        }
    }
    EXPECT_EQ(nanosleep_outliers, kNanosleeps);
    EXPECT_EQ(read_outliers, 1);
    EXPECT_EQ(after.decode_errors, 0u);
    EXPECT_EQ(after.kernel_stats[HP_SYS_STAT_RINGBUF_DROPS], 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, SyscallModes,
                         ::testing::Values(compat::AttachMode::TpBtf, compat::AttachMode::RawTp,
                                           compat::AttachMode::Tracepoint),
                         [](const auto& info) {
                             return std::string(compat::to_string(info.param));
                         });

// native_schema: each nanosleep(1 ms) of this process lands in a native bucket that
// holds its duration: the kernel's duration is at least the 1 ms asked for and at most
// what this thread measured around the call, so every counted bucket must reach 1 ms and
// start below the longest measured call. One bucket off (the 7% of ns vs s powers of two
// or an off-by-one in the search) puts the calls below 1 ms at schema 3. Every schema, in
// each attach mode's variant of the programs.
TEST(SyscallCollector, NativeBucketsHoldEachDuration) {
    HOSTPROF_REQUIRE_ROOT();
    ASSERT_TRUE(compat::ensure_tracefs("/sys/kernel/tracing"));
    constexpr int kCalls = 30;
    const std::pair<int, compat::AttachMode> cases[] = {
        {0, compat::AttachMode::Tracepoint}, {1, compat::AttachMode::RawTp},
        {2, compat::AttachMode::TpBtf},      {3, compat::AttachMode::TpBtf},
        {3, compat::AttachMode::RawTp},      {3, compat::AttachMode::Tracepoint}};
    for (const auto& [schema, mode] : cases) {
        SCOPED_TRACE("schema " + std::to_string(schema) + " " +
                     std::string(compat::to_string(mode)));
        SyscallOptions o;
        o.mode = mode;
        o.tgid = static_cast<uint32_t>(::getpid());
        o.outlier_threshold_ns = 0;
        o.native_schema = schema;
        auto started = SyscallCollector::start(o, nullptr);
        ASSERT_TRUE(started) << started.error().message();
        uint64_t longest = 0;
        for (int i = 0; i < kCalls; ++i) {
            const struct timespec req = {0, 1'000'000};
            const auto t0 = std::chrono::steady_clock::now();
            ASSERT_EQ(::syscall(SYS_nanosleep, &req, nullptr), 0);
            const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::steady_clock::now() - t0)
                                .count();
            longest = std::max(longest, static_cast<uint64_t>(ns));
        }
        const SyscallSnapshot snap = started.value()->snapshot();
        const SyscallStats* st = snap.find("nanosleep");
        ASSERT_NE(st, nullptr);
        EXPECT_EQ(st->latency.count(), static_cast<uint64_t>(kCalls));
        const NativeHistogram& n = st->latency.native;
        ASSERT_EQ(n.schema, schema);
        ASSERT_EQ(n.buckets.size(), native_bucket_count(schema));
        EXPECT_EQ(n.count(), static_cast<uint64_t>(kCalls));
        const std::vector<uint64_t> bounds = native_bounds_ns(schema);
        for (size_t k = 0; k < n.buckets.size(); ++k) {
            if (n.buckets[k] == 0)
                continue;
            ASSERT_GT(k, 0u);
            ASSERT_LT(k, bounds.size());
            EXPECT_GE(bounds[k], 1'000'000u) << "bucket " << k << " holds " << n.buckets[k];
            EXPECT_LT(bounds[k - 1], longest) << "bucket " << k << " holds " << n.buckets[k];
        }
        // The serving layer hands them to the protobuf renderer under the series' labels.
        NativeHistogramSet natives;
        syscall_metric_families(snap, &natives);
        const NativeBuckets* b =
            natives.find("hostprof_syscall_latency_seconds", {{"syscall", "nanosleep"}});
        ASSERT_NE(b, nullptr);
        EXPECT_EQ(b->schema, schema);
        EXPECT_EQ(b->first_index, native_first_index(schema));
        EXPECT_EQ(b->counts.size() + 1, n.buckets.size());
    }
}

TEST(SyscallCollector, UnknownSyscallNameInThresholdsIsAnError) {
    HOSTPROF_REQUIRE_ROOT();
    SyscallOptions o;
    o.outlier_threshold_overrides = {{"no_such_syscall", 1}};
    auto c = SyscallCollector::start(o, nullptr);
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find("no_such_syscall"), std::string::npos);
}

} // namespace
