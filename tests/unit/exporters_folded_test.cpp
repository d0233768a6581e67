// Folded stacks: golden files, merging, inline expansion, label roots, escaping.
#include <gtest/gtest.h>

#include "exporters/folded.h"
#include "exporters_fixture.h"

namespace hostprof {
namespace {

using testing::fixture_profile;

TEST(ExportersFolded, SampleCountsGolden) {
    const std::string out = render_folded(fixture_profile(), 0);
    // Root first, inline frame (hash_block) after its caller (run_loop).
    EXPECT_NE(out.find("main;run_loop;hash_block;compute_sha;memcpy 50\n"), std::string::npos)
        << out;
    EXPECT_NE(out.find("main;idle_loop;[libc.so.6] 5\n"), std::string::npos) << out;
    testing::expect_golden("cpu_profile.folded", out);
}

TEST(ExportersFolded, CpuNanosWithServiceAndCommRoots) {
    const std::string out = render_folded(fixture_profile(), 1, {"service", "comm"});
    EXPECT_NE(out.find("search;search;main;idle_loop 202020200\n"), std::string::npos) << out;
    testing::expect_golden("cpu_profile_service_comm.folded", out);
}

TEST(ExportersFolded, MergesIdenticalStacksAndDropsZeroes) {
    Profile p = fixture_profile();
    p.samples.push_back(p.samples[0]); // the same stack again: 50 + 50
    p.samples.push_back(p.samples[1]);
    p.samples.back().values = {0, 0}; // zero: not a line of its own, adds nothing
    const std::string out = render_folded(p, 0);
    EXPECT_NE(out.find("main;run_loop;hash_block;compute_sha;memcpy 100\n"), std::string::npos)
        << out;
    EXPECT_NE(out.find("main;run_loop;hash_block;compute_sha 30\n"), std::string::npos) << out;
    size_t lines = 0;
    for (char c : out)
        lines += c == '\n';
    EXPECT_EQ(lines, 5u);
}

TEST(ExportersFolded, EscapesSeparatorsAndSkipsBadIndexes) {
    Profile p;
    p.sample_types = {{"samples", "count"}};
    p.locations = {{0x10, -1, {{"operator;weird\nname", "", 0}}}, {0x20, -1, {}}};
    p.samples = {{{0, 1, 77}, {3}, {}}};
    EXPECT_EQ(render_folded(p, 0), "[unknown];operator_weird_name 3\n");
    EXPECT_EQ(render_folded(p, 5), "") << "value index out of range: nothing";
}

} // namespace
} // namespace hostprof
