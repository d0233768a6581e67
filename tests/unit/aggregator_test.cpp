#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "agent/aggregate/aggregator.h"
#include "agent/pipeline/profile_builder.h"

using namespace hostprof;

namespace {

const std::string kProc = std::string(HOSTPROF_TEST_DATA) + "/proc";
const uint64_t kTick = 1'000'000'000ULL / static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));

struct Rec {
    std::vector<uint64_t> frames;
    StackRecordView view(uint32_t pid, uint64_t start, uint16_t k,
                         hp_prof_kind kind = HP_PROF_ON_CPU, uint64_t weight = 0) const {
        StackRecordView v{};
        v.kind = kind;
        v.pid = pid;
        v.tid = pid + 1;
        v.start_time_ns = start;
        v.weight_ns = weight;
        v.comm = "rec";
        v.kernel_frames = std::span<const uint64_t>(frames.data(), k);
        v.user_frames = std::span<const uint64_t>(frames.data() + k, frames.size() - k);
        return v;
    }
};

TEST(Aggregator, CountsIdenticalStacksTogether) {
    ProcessTable t(kProc);
    ProfileAggregator a(HP_PROF_ON_CPU);
    Rec r{{0xffffffff81000010, 0x401000, 0x401100}};
    for (int i = 0; i < 3; ++i)
        a.add(r.view(77, 999 * kTick, 1), t);
    Rec other{{0x401200, 0x401100}};
    a.add(other.view(77, 999 * kTick, 0), t);
    a.add(r.view(77, 999 * kTick, 1, HP_PROF_OFF_CPU, 5), t); // other kind: ignored
    ProfileWindow w = a.take();
    ASSERT_EQ(w.stacks.size(), 2u);
    uint64_t total = 0;
    for (const auto& [k, v] : w.stacks)
        total += v.count;
    EXPECT_EQ(total, 4u);
    EXPECT_EQ(w.processes.size(), 1u);
    EXPECT_TRUE(a.take().stacks.empty()); // a new window
}

TEST(Aggregator, PidReuseSplitsProcesses) {
    ProcessTable t(kProc);
    ProfileAggregator a(HP_PROF_ON_CPU);
    Rec r{{0x401000}};
    a.add(r.view(77, 999 * kTick, 0), t);
    a.add(r.view(77, 5000 * kTick, 0), t); // same pid, another process
    ProfileWindow w = a.take();
    EXPECT_EQ(w.stacks.size(), 2u);
    ASSERT_EQ(w.processes.size(), 2u);
    EXPECT_EQ(w.processes.at({77, 999 * kTick}).exe, "/usr/local/bin/plain-server");
    EXPECT_EQ(w.processes.at({77, 5000 * kTick}).exe, ""); // never the other one's exe
}

TEST(Aggregator, FiltersByContainerServiceAndComm) {
    ProcessTable t(kProc);
    ProfileFilter f;
    f.container_id = "0123456789ab";
    ProfileAggregator a(HP_PROF_ON_CPU, f);
    Rec r{{0x401000}};
    a.add(r.view(4242, 12345 * kTick, 0), t);
    a.add(r.view(77, 999 * kTick, 0), t);
    ProfileWindow w = a.take();
    EXPECT_EQ(w.stacks.size(), 1u);
    EXPECT_EQ(w.filtered, 1u);

    ProfileFilter g;
    g.comm = CommPattern::compile("^pla").value();
    ProfileAggregator b(HP_PROF_ON_CPU, g);
    b.add(r.view(4242, 12345 * kTick, 0), t);
    b.add(r.view(77, 999 * kTick, 0), t);
    EXPECT_EQ((*b.take().stacks.begin()).first.pid, 77u);

    ProfileFilter s;
    s.service = "plain-server";
    EXPECT_TRUE(s.matches(t.get(77, 0)));
    EXPECT_FALSE(s.matches(t.get(4242, 0)));
}

// A fork child sampled before its exec (still the parent's image, e.g. "bash") and
// after it (same pid, same start time): once the exec record arrives, the new image is
// filtered and labelled from its own metadata. Seen on a kernel where fork + exec is slow
// enough for the child to be sampled in between: every short-lived process of a shell
// loop was labelled bash, and a comm filter dropped all its samples.
TEST(Aggregator, ExecRelabelsTheProcess) {
    const std::string root = ::testing::TempDir() + "/hostprof-exec-proc";
    std::filesystem::remove_all(root);
    std::filesystem::create_directories(root + "/500");
    auto write = [&](const std::string& comm, const std::string& exe) {
        std::ofstream(root + "/500/stat")
            << "500 (" << comm << ") R 1 500 500 0 -1 4194560 0 0 0 0 1 0 0 0 20 0 1 0 999 "
            << "1000000 50\n";
        std::ofstream(root + "/500/comm") << comm << "\n";
        std::ofstream(root + "/500/cgroup") << "0::/\n";
        std::filesystem::remove(root + "/500/exe");
        std::filesystem::create_symlink(exe, root + "/500/exe");
    };
    write("bash", "/usr/bin/bash");
    ProcessTable t(root);
    ProfileFilter f;
    f.comm = CommPattern::compile("^short_burn$").value();
    ProfileAggregator filtered(HP_PROF_ON_CPU, f), all(HP_PROF_ON_CPU);
    Rec r{{0x401000}};
    for (ProfileAggregator* a : {&filtered, &all})
        a->add(r.view(500, 999 * kTick, 0), t); // the fork child, before its exec

    write("short_burn", "/opt/t/short_burn"); // the exec
    t.on_exec(500);
    for (ProfileAggregator* a : {&filtered, &all}) {
        a->on_exec(500);
        a->add(r.view(500, 999 * kTick, 0), t);
        a->add(r.view(500, 999 * kTick, 0), t);
    }
    ProfileWindow w = filtered.take();
    EXPECT_EQ(w.filtered, 1u) << "only the sample before the exec";
    ASSERT_EQ(w.stacks.size(), 1u);
    EXPECT_EQ((*w.stacks.begin()).second.count, 2u);
    ProfileWindow v = all.take();
    ASSERT_EQ(v.processes.size(), 1u);
    EXPECT_EQ(v.processes.at({500, 999 * kTick}).comm, "short_burn");
    EXPECT_EQ(v.processes.at({500, 999 * kTick}).exe, "/opt/t/short_burn");
    std::filesystem::remove_all(root);
}

TEST(Aggregator, BoundedStackTable) {
    ProcessTable t(kProc);
    ProfileAggregator a(HP_PROF_ON_CPU, {}, false, 2);
    for (uint64_t i = 0; i < 5; ++i) {
        Rec r{{0x401000 + i}};
        a.add(r.view(77, 0, 0), t);
    }
    EXPECT_EQ(a.take().stacks.size(), 2u);
    EXPECT_EQ(a.dropped_stacks(), 3u);
}

// A table-driven resolver: kernel addresses >= 0xffff... are "kfunc", user ones by range.
class TableResolver : public FrameResolver {
  public:
    std::vector<uint64_t> user_queries;
    ResolvedFrame kernel(uint64_t a) override {
        ResolvedFrame f;
        f.lines.push_back({"kfunc_" + std::to_string(a & 0xff), "", 0});
        f.mapping.file = "[kernel.kallsyms]";
        return f;
    }
    ResolvedFrame user(uint32_t, uint64_t a) override {
        user_queries.push_back(a);
        ResolvedFrame f;
        if (a >= 0x401000 && a < 0x401100)
            f.lines = {{"inlined_leaf", "a.c", 3}, {"outer", "a.c", 10}};
        else if (a >= 0x401100 && a < 0x401200)
            f.lines = {{"main", "a.c", 20}};
        f.mapping.file = "/usr/local/bin/plain-server";
        f.mapping.start = 0x400000;
        f.mapping.limit = 0x500000;
        f.mapping.build_id = "abcd";
        return f;
    }
};

TEST(ProfileBuilder, BuildsCpuProfileWithLabelsAndDedup) {
    ProcessTable t(kProc);
    ProfileAggregator a(HP_PROF_ON_CPU);
    Rec r{{0xffffffff81000010, 0x401010, 0x401150}};
    for (int i = 0; i < 3; ++i)
        a.add(r.view(77, 999 * kTick, 1), t);
    Rec r2{{0x401020, 0x401150}};
    a.add(r2.view(77, 999 * kTick, 0), t);
    TableResolver res;
    BuildOptions o;
    o.frequency_hz = 100;
    Profile p = build_profile(a.take(), res, o);
    ASSERT_EQ(p.sample_types.size(), 2u);
    EXPECT_EQ(p.sample_types[1].type, "cpu");
    EXPECT_EQ(p.period, 10'000'000);
    ASSERT_EQ(p.samples.size(), 2u);
    int64_t samples = 0, ns = 0;
    for (const Sample& s : p.samples) {
        samples += s.values[0];
        ns += s.values[1];
        std::map<std::string, std::string> labels(s.labels.begin(), s.labels.end());
        EXPECT_EQ(labels["pid"], "77");
        EXPECT_EQ(labels["service_name"], "plain-server");
        // Leaf first, root ("main") last.
        EXPECT_EQ(p.locations[s.locations.back()].lines[0].function, "main");
    }
    EXPECT_EQ(samples, 4);
    EXPECT_EQ(ns, 4 * 10'000'000);
    EXPECT_EQ(p.mappings.size(), 2u); // kernel + the executable, deduplicated
    // 0x401150 (a caller frame) appears in both stacks but is one location; callers are
    // resolved at pc - 1, the leaf at pc.
    EXPECT_EQ(p.locations.size(), 4u);
    EXPECT_NE(std::find(res.user_queries.begin(), res.user_queries.end(), 0x40114f),
              res.user_queries.end());
    EXPECT_NE(std::find(res.user_queries.begin(), res.user_queries.end(), 0x401020),
              res.user_queries.end());
}

TEST(ProfileBuilder, OffCpuUsesBlockedTime) {
    ProcessTable t(kProc);
    ProfileAggregator a(HP_PROF_OFF_CPU);
    Rec r{{0x401010, 0x401150}};
    a.add(r.view(77, 0, 0, HP_PROF_OFF_CPU, 100'000'000), t);
    a.add(r.view(77, 0, 0, HP_PROF_OFF_CPU, 50'000'000), t);
    TableResolver res;
    BuildOptions o;
    o.process_root_frame = true;
    Profile p = build_profile(a.take(), res, o);
    ASSERT_EQ(p.samples.size(), 1u);
    EXPECT_EQ(p.sample_types[1].type, "off_cpu");
    EXPECT_EQ(p.samples[0].values[1], 150'000'000);
    EXPECT_EQ(p.locations[p.samples[0].locations.back()].lines[0].function, "plain");
}

} // namespace
