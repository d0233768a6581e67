// OTLP profiles: the request decoded field by field with classes generated from
// exporters/otlp_profiles.proto, and by `protoc --decode`.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "exporters/otlp.h"
#include "exporters/otlp_profiles.pb.h"
#include "exporters_fixture.h"

namespace hostprof {
namespace {

namespace otlp = hostprof::otlp;

// The fixture's CPU window with the labels the agent's profile builder sets, and an
// off-CPU window of the same processes.
std::vector<Profile> windows() {
    Profile cpu = testing::fixture_profile();
    for (Sample& s : cpu.samples) {
        for (auto& [k, v] : s.labels)
            if (k == "service")
                k = "service_name";
        if (s.labels[0].second == "100") {
            s.labels.emplace_back("exe", "/opt/fixture/bin/checkout-app");
            s.labels.emplace_back("container_id", "c0ffee");
            s.labels.emplace_back("tid", "101");
        }
    }
    Profile off = cpu;
    set_off_cpu_profile_types(off);
    off.samples.resize(1);
    off.samples[0].values = {3, 7'000'000};
    return {cpu, off};
}

struct Decoded {
    otlp::ExportProfilesServiceRequest req;
    const otlp::ProfilesDictionary& d() const { return req.dictionary(); }
    const std::string& str(int32_t i) const { return d().string_table(i); }
    // Attributes of a resource as key -> string or integer text.
    static std::map<std::string, std::string> attrs(const otlp::Resource& r) {
        std::map<std::string, std::string> out;
        for (const auto& kv : r.attributes())
            out[kv.key()] = kv.value().has_int_value() ? std::to_string(kv.value().int_value())
                                                       : kv.value().string_value();
        return out;
    }
    std::string attr(int32_t i) const {
        const auto& a = d().attribute_table(i);
        return str(a.key_strindex()) + "=" +
               (a.value().has_int_value() ? std::to_string(a.value().int_value())
                                          : a.value().string_value());
    }
    // A stack's frames, leaf first; an inlined frame as "inner+outer".
    std::vector<std::string> frames(int32_t stack) const {
        std::vector<std::string> out;
        for (int32_t li : d().stack_table(stack).location_indices()) {
            std::string f;
            for (const auto& line : d().location_table(li).lines())
                f += (f.empty() ? "" : "+") +
                     str(d().function_table(line.function_index()).name_strindex());
            out.push_back(f.empty() ? "?" : f);
        }
        return out;
    }
};

Decoded decode(const std::string& bytes) {
    Decoded out;
    EXPECT_TRUE(out.req.ParseFromString(bytes));
    return out;
}

TEST(ExportersOtlp, DictionaryTablesStartWithTheirZeroValue) {
    const auto w = windows();
    const Decoded r = decode(encode_otlp_profiles(w, {}));
    const auto& d = r.d();
    ASSERT_GT(d.mapping_table_size(), 1);
    EXPECT_EQ(d.mapping_table(0).ByteSizeLong(), 0u);
    ASSERT_GT(d.location_table_size(), 1);
    EXPECT_EQ(d.location_table(0).ByteSizeLong(), 0u);
    ASSERT_GT(d.function_table_size(), 1);
    EXPECT_EQ(d.function_table(0).ByteSizeLong(), 0u);
    ASSERT_EQ(d.link_table_size(), 1);
    EXPECT_EQ(d.link_table(0).ByteSizeLong(), 0u);
    ASSERT_GT(d.string_table_size(), 1);
    EXPECT_EQ(d.string_table(0), "");
    ASSERT_GT(d.attribute_table_size(), 1);
    EXPECT_EQ(d.attribute_table(0).ByteSizeLong(), 0u);
    ASSERT_GT(d.stack_table_size(), 1);
    EXPECT_EQ(d.stack_table(0).ByteSizeLong(), 0u);
    // No duplicates: every string once.
    std::vector<std::string> strings(d.string_table().begin(), d.string_table().end());
    std::sort(strings.begin(), strings.end());
    EXPECT_EQ(std::adjacent_find(strings.begin(), strings.end()), strings.end());
}

TEST(ExportersOtlp, OneResourcePerProcessOneProfilePerWindow) {
    const auto w = windows();
    const Decoded r = decode(encode_otlp_profiles(w, {"hostprof", "0.1.0", "node-a"}));
    ASSERT_EQ(r.req.resource_profiles_size(), 2);
    std::map<std::string, const otlp::ResourceProfiles*> by_service;
    for (const auto& rp : r.req.resource_profiles())
        by_service[Decoded::attrs(rp.resource()).at("service.name")] = &rp;
    ASSERT_TRUE(by_service.contains("checkout") && by_service.contains("search"));

    const otlp::ResourceProfiles& checkout = *by_service["checkout"];
    EXPECT_EQ(Decoded::attrs(checkout.resource()),
              (std::map<std::string, std::string>{
                  {"service.name", "checkout"},
                  {"process.pid", "100"},
                  {"process.executable.name", "checkout"},
                  {"process.executable.path", "/opt/fixture/bin/checkout-app"},
                  {"process.executable.build_id.gnu", "6b1f2c3d4e5f60718293a4b5c6d7e8f901234567"},
                  {"container.id", "c0ffee"},
                  {"host.name", "node-a"}}));
    EXPECT_EQ(checkout.resource().attributes(1).value().int_value(), 100); // an integer
    ASSERT_EQ(checkout.scope_profiles_size(), 1);
    const auto& scope = checkout.scope_profiles(0);
    EXPECT_EQ(scope.scope().name(), "hostprof");
    EXPECT_EQ(scope.scope().version(), "0.1.0");
    ASSERT_EQ(scope.profiles_size(), 2); // on-CPU and off-CPU

    // On-CPU: samples/count, period 1/99 s of cpu/nanoseconds.
    const otlp::Profile& cpu = scope.profiles(0);
    EXPECT_EQ(r.str(cpu.sample_type().type_strindex()), "samples");
    EXPECT_EQ(r.str(cpu.sample_type().unit_strindex()), "count");
    EXPECT_EQ(r.str(cpu.period_type().type_strindex()), "cpu");
    EXPECT_EQ(r.str(cpu.period_type().unit_strindex()), "nanoseconds");
    EXPECT_EQ(cpu.period(), 10101010);
    EXPECT_EQ(cpu.time_unix_nano(), 1'700'000'000'000'000'000u);
    EXPECT_EQ(cpu.duration_nano(), 10'000'000'000u);
    ASSERT_EQ(cpu.profile_id().size(), 16u);
    EXPECT_NE(cpu.profile_id(), std::string(16, '\0'));
    ASSERT_EQ(cpu.samples_size(), 3);
    int64_t total = 0;
    for (const auto& s : cpu.samples()) {
        ASSERT_EQ(s.values_size(), 1);
        total += s.values(0);
        ASSERT_EQ(s.attribute_indices_size(), 1);
        EXPECT_EQ(r.attr(s.attribute_indices(0)), "thread.id=101");
    }
    EXPECT_EQ(total, 95); // 50 + 30 + 15 samples
    // The first sample's stack, leaf first, the inlined frame innermost first.
    EXPECT_EQ(r.frames(cpu.samples(0).stack_index()),
              (std::vector<std::string>{"memcpy", "compute_sha", "hash_block+run_loop", "main"}));
    // The write sample crosses into the kernel: its two leaf frames are kernel frames.
    const auto& write_stack = r.d().stack_table(cpu.samples(2).stack_index());
    EXPECT_EQ(r.frames(cpu.samples(2).stack_index()).front(), "__x64_sys_write");
    const auto& leaf = r.d().location_table(write_stack.location_indices(0));
    ASSERT_EQ(leaf.attribute_indices_size(), 1);
    EXPECT_EQ(r.attr(leaf.attribute_indices(0)), "profile.frame.type=kernel");
    EXPECT_EQ(r.str(r.d().mapping_table(leaf.mapping_index()).filename_strindex()),
              "[kernel.kallsyms]");
    const auto& user = r.d().location_table(write_stack.location_indices(2));
    EXPECT_EQ(r.attr(user.attribute_indices(0)), "profile.frame.type=native");
    const auto& libc = r.d().mapping_table(user.mapping_index());
    EXPECT_EQ(r.str(libc.filename_strindex()), "/usr/lib/x86_64-linux-gnu/libc.so.6");
    EXPECT_EQ(libc.memory_start(), 0x7f0000000000u);
    EXPECT_EQ(libc.memory_limit(), 0x7f0000200000u);
    EXPECT_EQ(libc.file_offset(), 0x28000u);
    ASSERT_EQ(libc.attribute_indices_size(), 1);
    EXPECT_EQ(r.attr(libc.attribute_indices(0)),
              "process.executable.build_id.gnu=0123456789abcdef0123456789abcdef01234567");
    // Source lines and files come through the function table.
    const auto& main_loc = r.d().location_table(write_stack.location_indices(4));
    ASSERT_EQ(main_loc.lines_size(), 1);
    EXPECT_EQ(main_loc.lines(0).line(), 10);
    const auto& main_fn = r.d().function_table(main_loc.lines(0).function_index());
    EXPECT_EQ(r.str(main_fn.name_strindex()), "main");
    EXPECT_EQ(r.str(main_fn.system_name_strindex()), "main");
    EXPECT_EQ(r.str(main_fn.filename_strindex()), "src/main.c");

    // Off-CPU: the blocked time, off_cpu/nanoseconds.
    const otlp::Profile& off = scope.profiles(1);
    EXPECT_EQ(r.str(off.sample_type().type_strindex()), "off_cpu");
    EXPECT_EQ(r.str(off.sample_type().unit_strindex()), "nanoseconds");
    ASSERT_EQ(off.samples_size(), 1);
    EXPECT_EQ(off.samples(0).values(0), 7'000'000);
    EXPECT_NE(off.profile_id(), cpu.profile_id());

    // search: no exe, no container, no thread id; its unsymbolized libc frame has no line.
    const otlp::ResourceProfiles& search = *by_service["search"];
    EXPECT_FALSE(Decoded::attrs(search.resource()).contains("process.executable.path"));
    ASSERT_EQ(search.scope_profiles(0).profiles_size(), 1); // no off-CPU samples
    const auto& ss = search.scope_profiles(0).profiles(0).samples(0);
    EXPECT_EQ(ss.attribute_indices_size(), 0);
    EXPECT_EQ(r.frames(ss.stack_index()), (std::vector<std::string>{"?", "idle_loop", "main"}));
}

TEST(ExportersOtlp, BadLocationIndexesAreDroppedAndEmptyWindowsGiveAnEmptyRequest) {
    Profile p = testing::fixture_profile();
    p.samples[0].locations.push_back(9999);
    p.samples.push_back({{12345}, {1, 1}, {{"pid", "7"}}}); // nothing left: dropped
    const std::vector<Profile> w = {p};
    const Decoded r = decode(encode_otlp_profiles(w, {}));
    int samples = 0;
    for (const auto& rp : r.req.resource_profiles())
        for (const auto& pr : rp.scope_profiles(0).profiles())
            samples += pr.samples_size();
    EXPECT_EQ(samples, 5);
    const Decoded empty = decode(encode_otlp_profiles({}, {}));
    EXPECT_EQ(empty.req.resource_profiles_size(), 0);
    EXPECT_EQ(empty.d().string_table_size(), 1);
}

// protoc reads the bytes with the schema, as any consumer generated from it would.
TEST(ExportersOtlp, ProtocDecodes) {
    HOSTPROF_REQUIRE_TOOL("protoc");
    const auto dir = testing::temp_dir("otlp");
    const std::string file = (dir / "req.bin").string();
    const auto w = windows();
    testing::write_file(file, encode_otlp_profiles(w, {"hostprof", "", ""}));
    const auto r = testing::run_command(
        "protoc --proto_path=" + std::string(HOSTPROF_SOURCE_DIR) +
        "/exporters --decode=hostprof.otlp.ExportProfilesServiceRequest otlp_profiles.proto < " +
        file + " 2>&1");
    std::filesystem::remove_all(dir);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    for (const char* want : {"string_table: \"memcpy\"", "key: \"service.name\"",
                             "string_value: \"checkout\"", "int_value: 100", "period: 10101010"})
        EXPECT_NE(r.output.find(want), std::string::npos) << want << "\n"
                                                          << r.output.substr(0, 3000);
}

} // namespace
} // namespace hostprof
