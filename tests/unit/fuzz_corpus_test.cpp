// The crafted inputs in tests/data/fuzz (which also seed the fuzz targets): every file
// named bad_* must give a clean error (or, for the line-oriented /proc parsers, a counted
// malformed line), every ok_* file must be accepted whole. Nothing may crash.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/config/config.h"
#include "agent/serve/http_query.h"
#include "agent/serve/web_config.h"
#include "symbolizer/parsers.h"

using namespace hostprof;

namespace {

const std::string kCorpus = std::string(HOSTPROF_TEST_DATA) + "/fuzz/";

struct Seed {
    std::string name;
    std::string bytes;
    bool bad() const { return name.rfind("bad_", 0) == 0; }
};

std::vector<Seed> seeds(const std::string& dir) {
    std::vector<Seed> out;
    for (const auto& e : std::filesystem::directory_iterator(kCorpus + dir)) {
        std::ifstream in(e.path(), std::ios::binary);
        std::stringstream b;
        b << in.rdbuf();
        std::string name = e.path().filename().string();
        EXPECT_TRUE(name.rfind("bad_", 0) == 0 || name.rfind("ok_", 0) == 0) << name;
        out.push_back({name, b.str()});
    }
    EXPECT_GE(out.size(), 2u) << dir;
    return out;
}

TEST(FuzzCorpus, ConfigFiles) {
    for (const Seed& s : seeds("config")) {
        auto c = parse_config_yaml(s.bytes, s.name, {});
        EXPECT_EQ(!c.ok(), s.bad()) << s.name << ": " << (c ? "accepted" : c.error().message());
        if (!c.ok()) { // one clear message naming the file
            EXPECT_EQ(c.error().message().rfind(s.name + ": ", 0), 0u) << c.error().message();
        }
    }
}

TEST(FuzzCorpus, FlagValuesEachLine) {
    for (const Seed& s : seeds("flags")) {
        std::istringstream in(s.bytes);
        std::string line;
        while (std::getline(in, line)) {
            size_t eq = line.find('=');
            ASSERT_NE(eq, std::string::npos) << line;
            Config c;
            Status st = apply_setting(c, line.substr(0, eq), line.substr(eq + 1));
            EXPECT_EQ(!st.ok(), s.bad()) << s.name << ": " << line;
            if (!st.ok()) {
                EXPECT_NE(st.error().message().find(line.substr(0, eq)), std::string::npos)
                    << "the message names the key: " << st.error().message();
            }
        }
    }
}

TEST(FuzzCorpus, WebConfigFiles) {
    for (const Seed& s : seeds("web_config")) {
        auto wc = parse_web_config(s.bytes, s.name);
        EXPECT_EQ(!wc.ok(), s.bad()) << s.name << ": " << (wc ? "accepted" : wc.error().message());
    }
}

TEST(FuzzCorpus, ProfileQueries) {
    EndpointLimits limits;
    for (const Seed& s : seeds("query")) {
        auto r = parse_profile_request(s.bytes, limits);
        EXPECT_EQ(!r.ok(), s.bad()) << s.name << ": " << (r ? "accepted" : r.error().message());
        if (!r.ok()) {
            EXPECT_LT(r.error().message().size(), 200u) << "400 bodies stay short";
        }
    }
}

TEST(FuzzCorpus, QueryEscapesDecode) {
    auto r = parse_profile_request(
        "seconds=%31%30&service=my%20svc&comm=%5Epython%5B0-9%5D%2B%24&cgroup=%2Fsys", {});
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->seconds, 10);
    EXPECT_EQ(r->filter.service, "my svc");
    EXPECT_EQ(r->filter.cgroup_prefix, "/sys");
    ASSERT_TRUE(r->filter.comm);
    EXPECT_TRUE(r->filter.comm->matches("python3"));
    EXPECT_FALSE(r->filter.comm->matches("python"));
    // A bad escape in a known key is an error, not a silently absent parameter.
    auto bad = parse_profile_request("seconds=%3", {});
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("seconds"), std::string::npos);
}

TEST(FuzzCorpus, MapsLines) {
    for (const Seed& s : seeds("maps")) {
        auto p = sym::parse_maps(s.bytes);
        size_t lines = static_cast<size_t>(std::count(s.bytes.begin(), s.bytes.end(), '\n'));
        if (s.bad()) {
            EXPECT_EQ(p.malformed, lines) << s.name << ": every line is counted malformed";
            EXPECT_TRUE(p.entries.empty()) << s.name;
        } else {
            EXPECT_EQ(p.malformed, 0u) << s.name;
            EXPECT_EQ(p.entries.size(), lines) << s.name;
        }
    }
    std::ifstream in(kCorpus + "maps/ok_special_paths.txt");
    std::stringstream b;
    b << in.rdbuf();
    auto p = sym::parse_maps(b.str());
    ASSERT_EQ(p.entries.size(), 11u);
    EXPECT_EQ(p.entries[1].path, "/usr/bin/app");
    EXPECT_TRUE(p.entries[1].deleted);
    EXPECT_FALSE(p.entries[1].is_memfd());
    EXPECT_EQ(p.entries[2].path, "/memfd:jit-code");
    EXPECT_TRUE(p.entries[2].is_memfd()); // as the kernel prints it
    EXPECT_FALSE(p.entries[2].is_file());
    EXPECT_TRUE(p.entries[3].is_memfd());
    EXPECT_EQ(p.entries[10].path, "/memfd:V8 code space");
    EXPECT_TRUE(p.entries[10].is_memfd());
    EXPECT_EQ(p.entries[4].path, "/opt/My App/lib/lib with spaces.so");
    EXPECT_FALSE(p.entries[4].deleted);
    EXPECT_EQ(p.entries[5].path, "/opt/odd/name (deleted)"); // only one suffix is removed
    EXPECT_TRUE(p.entries[6].is_anonymous());
    EXPECT_TRUE(p.entries[7].is_anonymous());
}

TEST(FuzzCorpus, PerfMapLines) {
    for (const Seed& s : seeds("perf_map")) {
        std::istringstream in(s.bytes);
        auto m = sym::PerfMap::parse(in);
        size_t lines = static_cast<size_t>(std::count(s.bytes.begin(), s.bytes.end(), '\n'));
        if (s.bad()) {
            EXPECT_EQ(m.malformed(), lines) << s.name;
            EXPECT_EQ(m.size(), 0u) << s.name;
        } else {
            EXPECT_EQ(m.malformed(), 0u) << s.name;
            EXPECT_EQ(m.size(), lines) << s.name;
        }
    }
}

TEST(FuzzCorpus, PerfMapOneMebibyteLine) {
    // A 1 MiB name (the fuzzer's inputs stay under 64 KiB, so this one is made here):
    // counted as malformed, its memory not kept, and the next line still parses.
    std::string text = "7f0000001000 40 " + std::string(1 << 20, 'n') + "\n" +
                       "7f0000002000 40 after_the_long_line\n";
    std::istringstream in(text);
    auto m = sym::PerfMap::parse(in);
    EXPECT_EQ(m.malformed(), 1u);
    ASSERT_EQ(m.size(), 1u);
    ASSERT_NE(m.lookup(0x7f0000002010), nullptr);
    EXPECT_EQ(m.lookup(0x7f0000002010)->name, "after_the_long_line");
    EXPECT_LT(m.bytes(), 64u * 1024);
}

} // namespace
