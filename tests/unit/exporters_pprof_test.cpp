// pprof encoder: decode round trip with the generated classes, a golden text dump, and
// the real `go tool pprof` reading our bytes.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "exporters/gzip.h"
#include "exporters/pprof.h"
#include "exporters_fixture.h"

namespace hostprof {
namespace {

using testing::fixture_profile;

pprof::Profile decode(const std::string& gz) {
    const std::optional<std::string> raw = gzip_decompress(gz);
    EXPECT_TRUE(raw.has_value()) << "not gzip";
    pprof::Profile out;
    EXPECT_TRUE(raw && out.ParseFromString(*raw)) << "not a profile.proto message";
    return out;
}

TEST(ExportersPprof, GzipRoundTripAndCorruptInput) {
    const std::string text(100000, 'x');
    const std::string gz = gzip_compress(text);
    ASSERT_GE(gz.size(), 18u);
    EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
    EXPECT_LT(gz.size(), text.size() / 10);
    EXPECT_EQ(gzip_decompress(gz), text);
    EXPECT_EQ(gzip_compress(text), gz) << "gzip output must be deterministic";
    EXPECT_FALSE(gzip_decompress(gz.substr(0, gz.size() / 2)).has_value());
    EXPECT_FALSE(gzip_decompress("not gzip at all").has_value());
    EXPECT_FALSE(gzip_decompress(gz, 1000).has_value()) << "max_size must be honoured";
}

TEST(ExportersPprof, DecodesWithGeneratedClasses) {
    const Profile in = fixture_profile();
    const pprof::Profile out = decode(render_pprof(in));
    const auto& st = out.string_table();
    ASSERT_GT(st.size(), 0);
    EXPECT_EQ(st[0], "");
    auto str = [&](int64_t i) {
        return i >= 0 && i < st.size() ? st[static_cast<int>(i)] : "<bad index>";
    };

    ASSERT_EQ(out.sample_type_size(), 2);
    EXPECT_EQ(str(out.sample_type(0).type()), "samples");
    EXPECT_EQ(str(out.sample_type(0).unit()), "count");
    EXPECT_EQ(str(out.sample_type(1).type()), "cpu");
    EXPECT_EQ(str(out.sample_type(1).unit()), "nanoseconds");
    EXPECT_EQ(str(out.period_type().type()), "cpu");
    EXPECT_EQ(str(out.period_type().unit()), "nanoseconds");
    EXPECT_EQ(out.period(), 1'000'000'000 / 99);
    EXPECT_EQ(out.time_nanos(), in.time_nanos);
    EXPECT_EQ(out.duration_nanos(), in.duration_nanos);

    // Every string is interned once.
    std::set<std::string> unique(st.begin(), st.end());
    EXPECT_EQ(unique.size(), static_cast<size_t>(st.size()));

    ASSERT_EQ(out.mapping_size(), 3);
    EXPECT_EQ(out.mapping(0).id(), 1u);
    EXPECT_EQ(str(out.mapping(0).filename()), "/opt/fixture/bin/checkout-app");
    EXPECT_EQ(str(out.mapping(0).build_id()), "6b1f2c3d4e5f60718293a4b5c6d7e8f901234567");
    EXPECT_EQ(out.mapping(0).memory_start(), 0x400000u);
    EXPECT_EQ(out.mapping(0).memory_limit(), 0x500000u);
    EXPECT_TRUE(out.mapping(0).has_functions());
    EXPECT_TRUE(out.mapping(0).has_filenames());
    EXPECT_TRUE(out.mapping(0).has_line_numbers());
    EXPECT_TRUE(out.mapping(0).has_inline_frames());
    EXPECT_EQ(out.mapping(1).file_offset(), 0x28000u);
    EXPECT_TRUE(out.mapping(1).has_functions());
    EXPECT_FALSE(out.mapping(1).has_filenames());
    EXPECT_FALSE(out.mapping(1).has_inline_frames());
    EXPECT_EQ(str(out.mapping(2).filename()), "[kernel.kallsyms]");
    EXPECT_EQ(out.mapping(2).build_id(), 0) << "empty build id is the empty string";

    // Functions: one per distinct (name, file); ids 1..n.
    std::map<uint64_t, std::string> functions;
    for (const auto& f : out.function()) {
        EXPECT_TRUE(functions.emplace(f.id(), str(f.name())).second) << "duplicate id " << f.id();
        EXPECT_EQ(f.name(), f.system_name());
    }
    EXPECT_EQ(functions.size(), 9u);

    ASSERT_EQ(out.location_size(), 9);
    const auto& inl = out.location(1);
    EXPECT_EQ(inl.id(), 2u);
    EXPECT_EQ(inl.mapping_id(), 1u);
    EXPECT_EQ(inl.address(), 0x401200u);
    ASSERT_EQ(inl.line_size(), 2);
    EXPECT_EQ(functions[inl.line(0).function_id()], "hash_block") << "innermost first";
    EXPECT_EQ(inl.line(0).line(), 5);
    EXPECT_EQ(functions[inl.line(1).function_id()], "run_loop");
    EXPECT_EQ(inl.line(1).line(), 40);
    EXPECT_EQ(out.location(7).line_size(), 0) << "unsymbolized location keeps only its address";
    EXPECT_EQ(out.location(7).mapping_id(), 2u);

    ASSERT_EQ(out.sample_size(), 5);
    const auto& s0 = out.sample(0);
    ASSERT_EQ(s0.location_id_size(), 4);
    EXPECT_EQ(s0.location_id(0), 4u) << "leaf (memcpy, index 3) first";
    EXPECT_EQ(s0.location_id(3), 1u);
    ASSERT_EQ(s0.value_size(), 2);
    EXPECT_EQ(s0.value(0), 50);
    EXPECT_EQ(s0.value(1), 50 * (1'000'000'000 / 99));
    std::map<std::string, std::string> labels;
    for (const auto& l : s0.label())
        labels[str(l.key())] = str(l.str());
    EXPECT_EQ(labels, (std::map<std::string, std::string>{
                          {"pid", "100"}, {"comm", "checkout"}, {"service", "checkout"}}));
}

TEST(ExportersPprof, MalformedModelStillEncodesValidProfile) {
    Profile p = fixture_profile();
    p.samples[0].locations.push_back(999); // out of range: dropped
    p.samples[1].values = {7};             // too few values: padded
    p.samples[2].values = {1, 2, 3};       // too many: cut
    p.locations[0].mapping = 42;           // unknown mapping: mapping_id 0
    const pprof::Profile out = decode(render_pprof(p));
    EXPECT_EQ(out.sample(0).location_id_size(), 4);
    ASSERT_EQ(out.sample(1).value_size(), 2);
    EXPECT_EQ(out.sample(1).value(1), 0);
    EXPECT_EQ(out.sample(2).value_size(), 2);
    EXPECT_EQ(out.location(0).mapping_id(), 0u);
}

TEST(ExportersPprof, OffCpuTypes) {
    Profile p;
    set_off_cpu_profile_types(p);
    const pprof::Profile out = decode(render_pprof(p));
    ASSERT_EQ(out.sample_type_size(), 2);
    EXPECT_EQ(out.string_table(static_cast<int>(out.sample_type(1).type())), "off_cpu");
    EXPECT_EQ(out.string_table(static_cast<int>(out.period_type().unit())), "nanoseconds");
    EXPECT_EQ(out.period(), 1);
}

// A profile with everything the encoder has to get right: negative values and line
// numbers (10-byte varints), zero fields (left out), empty strings, unnamed lines,
// out-of-range indexes, labels with empty keys, many strings.
Profile awkward_profile(uint32_t seed) {
    std::mt19937 rng(seed);
    Profile p;
    set_cpu_profile_types(p, 97);
    p.time_nanos = -5;
    p.duration_nanos = 0;
    for (int m = 0; m < 7; ++m)
        p.mappings.push_back({m == 0 ? 0 : 0x1000ULL << m, 0x2000ULL << m,
                              m % 2 == 0 ? 0 : 0x1000ULL,
                              m == 3 ? "" : "/lib/m" + std::to_string(m),
                              m % 3 == 0 ? "" : "ab" + std::to_string(m)});
    for (uint32_t l = 0; l < 300; ++l) {
        Location loc{rng() % 4 == 0 ? 0 : 0xffffffff00000000ULL + rng(),
                     static_cast<int32_t>(rng() % 9) - 1,
                     {}};
        const uint32_t lines = rng() % 4;
        for (uint32_t i = 0; i < lines; ++i)
            loc.lines.push_back({rng() % 5 == 0 ? "" : "fn" + std::to_string(rng() % 200),
                                 rng() % 3 == 0 ? "" : "f" + std::to_string(rng() % 20) + ".c",
                                 static_cast<int64_t>(rng() % 100) - 10});
        p.locations.push_back(std::move(loc));
    }
    for (int s = 0; s < 500; ++s) {
        Sample sample;
        const uint32_t depth = rng() % 40;
        for (uint32_t d = 0; d < depth; ++d)
            sample.locations.push_back(rng() % 310); // some out of range
        const uint32_t values = rng() % 4;
        for (uint32_t v = 0; v < values; ++v)
            sample.values.push_back(static_cast<int64_t>(rng() % 1000) - 500);
        if (rng() % 2 == 0)
            sample.labels.emplace_back("pid", std::to_string(rng() % 50));
        if (rng() % 5 == 0)
            sample.labels.emplace_back("", "");
        p.samples.push_back(std::move(sample));
    }
    return p;
}

TEST(ExportersPprof, EncodingIsCanonical) {
    // The hand-written encoder must give exactly the bytes the generated classes give
    // when they serialize what they decoded from it: same fields, order and defaults.
    for (uint32_t seed : {1u, 2u, 3u}) {
        const std::string bytes = encode_pprof(awkward_profile(seed));
        pprof::Profile m;
        ASSERT_TRUE(m.ParseFromString(bytes)) << "seed " << seed;
        EXPECT_EQ(m.SerializeAsString(), bytes) << "seed " << seed;
        EXPECT_EQ(gzip_decompress(render_pprof(awkward_profile(seed))), bytes);
        std::set<std::string> unique(m.string_table().begin(), m.string_table().end());
        EXPECT_EQ(unique.size(), static_cast<size_t>(m.string_table_size()));
        for (const auto& s : m.sample())
            for (uint64_t id : s.location_id())
                EXPECT_TRUE(id >= 1 && id <= 300u) << id;
    }
    const std::string fixture = encode_pprof(fixture_profile());
    EXPECT_EQ(to_pprof_message(fixture_profile()).SerializeAsString(), fixture);
}

TEST(ExportersPprof, GoldenTextDump) {
    std::string text;
    ASSERT_TRUE(
        google::protobuf::TextFormat::PrintToString(to_pprof_message(fixture_profile()), &text));
    testing::expect_golden("cpu_profile.pprof.txt", text);
}

// The real `go tool pprof` (golang-go) must read the bytes and show our names and values.
class GoToolPprof : public ::testing::Test {
  protected:
    void SetUp() override {
        HOSTPROF_REQUIRE_TOOL("go");
        dir_ = testing::temp_dir("pprof");
        file_ = (dir_ / "cpu.pb.gz").string();
        testing::write_file(file_, render_pprof(fixture_profile()));
    }
    void TearDown() override {
        if (!dir_.empty())
            std::filesystem::remove_all(dir_);
    }
    testing::CommandResult pprof(const std::string& args) {
        const std::string env = "HOME=" + dir_.string() + " GOCACHE=" + (dir_ / "cache").string() +
                                " GOPATH=" + (dir_ / "gopath").string() +
                                " GOFLAGS= GO111MODULE=off PPROF_TMPDIR=" + dir_.string();
        return testing::run_command("env " + env + " go tool pprof -symbolize=none " + args + " " +
                                    file_ + " 2>&1");
    }
    std::filesystem::path dir_;
    std::string file_;
};

// A -top row: "flat flat% sum% cum cum% name".
std::map<std::string, std::vector<std::string>> top_rows(const std::string& out) {
    std::map<std::string, std::vector<std::string>> rows;
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::vector<std::string> cols;
        for (std::string c; ls >> c;)
            cols.push_back(c);
        if (cols.size() >= 6 && cols[1].ends_with('%'))
            rows[cols[5]] = cols; // cols[6] is "(inline)" for inlined functions
    }
    return rows;
}

TEST_F(GoToolPprof, TopShowsSampleCounts) {
    const auto r = pprof("-top -sample_index=samples");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("Type: samples"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("Build ID: 6b1f2c3d4e5f60718293a4b5c6d7e8f901234567"),
              std::string::npos);
    EXPECT_NE(r.output.find("of 120 total"), std::string::npos) << r.output;
    const auto rows = top_rows(r.output);
    auto flat_cum = [&](const std::string& fn) {
        auto it = rows.find(fn);
        return it == rows.end() ? std::string("missing") : it->second[0] + "/" + it->second[3];
    };
    EXPECT_EQ(flat_cum("memcpy"), "50/50") << r.output;
    EXPECT_EQ(flat_cum("compute_sha"), "30/80") << r.output;
    EXPECT_EQ(flat_cum("idle_loop"), "20/25") << r.output;
    EXPECT_EQ(flat_cum("__x64_sys_write"), "15/15") << r.output;
    EXPECT_EQ(flat_cum("hash_block"), "0/95") << r.output;
    ASSERT_TRUE(rows.count("hash_block"));
    EXPECT_EQ(rows.at("hash_block").back(), "(inline)") << r.output;
    EXPECT_EQ(flat_cum("[libc.so.6]"), "5/5") << "unsymbolized frame\n" << r.output;
    EXPECT_EQ(flat_cum("run_loop"), "0/95") << r.output;
    EXPECT_EQ(flat_cum("main"), "0/120") << r.output;
}

TEST_F(GoToolPprof, TopShowsCpuTime) {
    const auto r = pprof("-top -unit=ms");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("Type: cpu"), std::string::npos) << r.output;
    // 50 samples x 10101010 ns; 120 x 10101010 ns = 1212.12 ms.
    EXPECT_NE(r.output.find("1212.12ms total"), std::string::npos) << r.output;
    const auto rows = top_rows(r.output);
    ASSERT_TRUE(rows.count("memcpy")) << r.output;
    EXPECT_EQ(rows.at("memcpy")[0], "505.05ms");
    EXPECT_EQ(rows.at("memcpy")[1], "41.67%");
}

TEST_F(GoToolPprof, RawShowsMappingsLabelsAndInlineFrames) {
    const auto r = pprof("-raw");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    for (const char* want :
         {"PeriodType: cpu nanoseconds", "Period: 10101010", "samples/count cpu/nanoseconds",
          "6b1f2c3d4e5f60718293a4b5c6d7e8f901234567", "/opt/fixture/bin/checkout-app",
          "[kernel.kallsyms]", "hash_block", "src/hash.h:5", "service:[checkout]", "pid:[200]",
          "comm:[search]"})
        EXPECT_NE(r.output.find(want), std::string::npos) << "missing '" << want << "' in\n"
                                                          << r.output;
}

TEST_F(GoToolPprof, TracesFilteredByServiceTag) {
    const auto r = pprof("-traces -tagfocus=service=search -sample_index=samples");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("idle_loop"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("memcpy"), std::string::npos) << "tagfocus must drop checkout\n"
                                                          << r.output;
    EXPECT_NE(r.output.find("        20   idle_loop\n"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("         5   [libc.so.6]\n"), std::string::npos) << r.output;
}

} // namespace
} // namespace hostprof
