#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent/config/config.h"
#include "agent/pipeline/symbolizer_resolver.h"

using namespace hostprof;

namespace {

Result<Config> parse(const std::string& yaml) {
    return parse_config_yaml(yaml, "test.yaml", {});
}

TEST(Config, DefaultsAreValid) {
    Config c;
    EXPECT_EQ(c.frequency_hz, 19);
    EXPECT_EQ(c.listen.rfind("127.0.0.1:", 0), 0u); // loopback by default
    EXPECT_EQ(c.log_format, "text");
}

TEST(Config, ParsesEveryKindOfValue) {
    auto c = parse("frequency: 99\n"
                   "collectors: [cpu, offcpu]\n"
                   "attach_mode: raw_tp\n"
                   "off_cpu_threshold: 250us\n"
                   "pids: 1,2, 3\n"
                   "log_format: json\n"
                   "strict: true\n");
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->frequency_hz, 99);
    EXPECT_EQ(c->collectors.size(), 2u);
    EXPECT_EQ(c->attach_mode, compat::AttachMode::RawTp);
    EXPECT_EQ(c->off_cpu_threshold_ns, 250'000u);
    EXPECT_EQ(c->pids, (std::vector<uint32_t>{1, 2, 3}));
    EXPECT_EQ(c->log_format, "json");
    EXPECT_TRUE(c->strict);
}

TEST(Config, EmptyFileKeepsDefaults) {
    auto c = parse("");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->frequency_hz, 19);
}

struct BadCase {
    const char* yaml;
    const char* must_mention;
};

class ConfigErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigErrors, NameTheKey) {
    auto c = parse(GetParam().yaml);
    ASSERT_FALSE(c) << GetParam().yaml;
    EXPECT_NE(c.error().message().find(GetParam().must_mention), std::string::npos)
        << c.error().message();
    EXPECT_NE(c.error().message().find("test.yaml"), std::string::npos) << c.error().message();
}

INSTANTIATE_TEST_SUITE_P(
    Bad, ConfigErrors,
    ::testing::Values(
        BadCase{"frequency: 5000\n", "frequency"}, BadCase{"frequency: 0\n", "1 to 1000"},
        BadCase{"frequency: -3\n", "frequency"}, BadCase{"frequency: fast\n", "frequency"},
        BadCase{"frequncy: 99\n", "unknown key 'frequncy'"},
        BadCase{"frequency: 99\nfrequency: 98\n", "duplicate key 'frequency'"},
        BadCase{"collectors: [cpu, gpu]\n", "unknown collector 'gpu'"},
        BadCase{"attach_mode: kprobe\n", "attach_mode"},
        BadCase{"off_cpu_threshold: 10 parsecs\n", "off_cpu_threshold"},
        BadCase{"log_format: xml\n", "log_format"}, BadCase{"listen: nowhere\n", "listen"},
        BadCase{"pids: [1, x]\n", "pids"}, BadCase{"strict: maybe\n", "strict"},
        BadCase{"frequency: [1, 2: 3\n", "not valid YAML"},
        BadCase{"- just\n- a list\n", "mapping"},
        BadCase{"frequency:\n", "frequency: has no value"},
        BadCase{"frequency: {a: 1}\n", "frequency"}));

TEST(Config, FlagOverridesFileThroughTheSameTable) {
    auto c = parse("frequency: 49\n");
    ASSERT_TRUE(c);
    Config cfg = c.value();
    ASSERT_TRUE(apply_setting(cfg, "frequency", "97"));
    EXPECT_EQ(cfg.frequency_hz, 97);
    EXPECT_FALSE(apply_setting(cfg, "frequency", "1001"));
    EXPECT_EQ(cfg.frequency_hz, 97); // a rejected value changes nothing
}

TEST(Config, MissingFileIsAClearError) {
    auto c = load_config_file("/nonexistent/hostprof.yaml", {});
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find("/nonexistent/hostprof.yaml"), std::string::npos);
}

TEST(Config, Durations) {
    EXPECT_EQ(parse_duration_ns("10s").value(), 10'000'000'000u);
    EXPECT_EQ(parse_duration_ns("250ms").value(), 250'000'000u);
    EXPECT_EQ(parse_duration_ns("3").value(), 3'000'000'000u);
    EXPECT_EQ(parse_duration_ns("2m").value(), 120'000'000'000u);
    EXPECT_FALSE(parse_duration_ns("ms"));
    EXPECT_FALSE(parse_duration_ns("5 s"));
    EXPECT_FALSE(parse_duration_ns("99999999999999999999h"));
    EXPECT_FALSE(parse_duration_ns("9999999999999h"));
}

// The configuration reference in docs/ is generated from the settings table: it must
// describe every flag the binary accepts.
TEST(Config, ReferenceDocMatchesCode) {
    std::ifstream in(std::string(HOSTPROF_SOURCE_DIR) + "/docs/configuration.md");
    ASSERT_TRUE(in) << "docs/configuration.md missing: run `hostprof config-reference`";
    std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(doc, config_reference_markdown())
        << "docs/configuration.md is stale: regenerate it with "
           "`build/hostprof config-reference > docs/configuration.md`";
    for (const Setting& s : settings())
        EXPECT_NE(doc.find(flag_name(s.key)), std::string::npos) << s.key;
}

} // namespace

namespace {

TEST(ConfigValidation, RingBufferSizeIsAPowerOfTwoWithinBounds) {
    Config c;
    ASSERT_TRUE(apply_setting(c, "ring_buffer_size", "8MiB"));
    EXPECT_EQ(c.ring_buffer_bytes, 8u << 20);
    ASSERT_TRUE(apply_setting(c, "ring_buffer_size", "65536"));
    EXPECT_EQ(c.ring_buffer_bytes, 64u << 10);
    Status npot = apply_setting(c, "ring_buffer_size", "3MiB");
    ASSERT_FALSE(npot);
    EXPECT_EQ(npot.error().message(), "ring_buffer_size: invalid value '3MiB': must be a power "
                                      "of two (the kernel's ring buffers are), e.g. 2MiB");
    EXPECT_FALSE(apply_setting(c, "ring_buffer_size", "32KiB"));  // below the floor
    EXPECT_FALSE(apply_setting(c, "ring_buffer_size", "512MiB")); // above the cap
    EXPECT_FALSE(apply_setting(c, "ring_buffer_size", "18446744073709551615GiB"));
    EXPECT_FALSE(apply_setting(c, "ring_buffer_size", "2MB")); // units are binary
    EXPECT_EQ(c.ring_buffer_bytes, 64u << 10) << "a rejected value changes nothing";
}

TEST(ConfigValidation, NativeSchemaIsOffOrZeroToThree) {
    Config c;
    EXPECT_EQ(c.native_schema, -1);
    for (int n = 0; n <= 3; ++n) {
        ASSERT_TRUE(apply_setting(c, "native_schema", std::to_string(n)));
        EXPECT_EQ(c.native_schema, n);
    }
    ASSERT_TRUE(apply_setting(c, "native_schema", "off"));
    EXPECT_EQ(c.native_schema, -1);
    Status four = apply_setting(c, "native_schema", "4");
    ASSERT_FALSE(four);
    EXPECT_EQ(four.error().message(),
              "native_schema: invalid value '4': must be off or an integer from 0 to 3");
    EXPECT_FALSE(apply_setting(c, "native_schema", "fine"));
    EXPECT_FALSE(apply_setting(c, "native_schema", "-2"));
    EXPECT_EQ(c.native_schema, -1) << "a rejected value changes nothing";
}

TEST(ConfigValidation, SymbolCacheSizeIsCapped) {
    Config c;
    ASSERT_TRUE(apply_setting(c, "symbol_cache_size", "1GiB"));
    EXPECT_EQ(c.symbol_cache_bytes, 1ull << 30);
    Status big = apply_setting(c, "symbol_cache_size", "5GiB");
    ASSERT_FALSE(big);
    EXPECT_NE(big.error().message().find("between 16MiB and 4GiB"), std::string::npos);
    EXPECT_FALSE(apply_setting(c, "symbol_cache_size", "1MiB"));
    EXPECT_EQ(c.perf_map_max_bytes, 64u << 20);
    ASSERT_TRUE(apply_setting(c, "perf_map_max_size", "8MiB"));
    EXPECT_EQ(c.perf_map_max_bytes, 8u << 20);
    EXPECT_EQ(symbolizer_options(c).max_perf_map_bytes, 8u << 20);
    EXPECT_EQ(symbolizer_options(c).cache_bytes, c.symbol_cache_bytes);
    Status huge = apply_setting(c, "perf_map_max_size", "2GiB");
    ASSERT_FALSE(huge);
    EXPECT_NE(huge.error().message().find("perf_map_max_size"), std::string::npos);
    EXPECT_FALSE(apply_setting(c, "perf_map_max_size", "1KiB"));
    auto y = parse("symbol_cache_size: 64MiB\nring_buffer_size: 4MiB\n");
    ASSERT_TRUE(y) << y.error().message();
    EXPECT_EQ(y->symbol_cache_bytes, 64u << 20);
    EXPECT_EQ(y->ring_buffer_bytes, 4u << 20);
}

TEST(ConfigValidation, FrequencyAgainstPerfEventMaxSampleRate) {
    std::string dir = ::testing::TempDir() + "/hostprof-sysctl-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    Config c;
    c.frequency_hz = 499;
    // No such file (no perf events): nothing to check here.
    EXPECT_TRUE(check_host_limits(c, dir));
    std::ofstream(dir + "/perf_event_max_sample_rate") << "250\n";
    Status st = check_host_limits(c, dir);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message().rfind("frequency: 499 Hz is above "
                                         "kernel.perf_event_max_sample_rate (250 Hz",
                                         0),
              0u)
        << st.error().message();
    c.frequency_hz = 250;
    EXPECT_TRUE(check_host_limits(c, dir));
    std::filesystem::remove_all(dir);
    // This host's real value admits the default.
    EXPECT_TRUE(check_host_limits(Config{}));
}

} // namespace

TEST(Config, Cgroup2RootOnUnifiedAndHybridHosts) {
    EXPECT_EQ(hostprof::cgroup2_root("sysfs /sys sysfs rw 0 0\n"
                                     "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n"),
              "/sys/fs/cgroup");
    EXPECT_EQ(hostprof::cgroup2_root("tmpfs /sys/fs/cgroup tmpfs rw 0 0\n"
                                     "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"
                                     "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"),
              "/sys/fs/cgroup/unified");
    EXPECT_EQ(hostprof::cgroup2_root("proc /proc proc rw 0 0\n"), "/sys/fs/cgroup");
    hostprof::Config c;
    EXPECT_TRUE(hostprof::apply_setting(c, "cgroup_filter", "/system.slice/nginx.service"));
    EXPECT_EQ(c.cgroup, "/system.slice/nginx.service");
    EXPECT_FALSE(hostprof::apply_setting(c, "cgroup_filter", "system.slice"));
    EXPECT_FALSE(hostprof::apply_setting(c, "cgroup_filter", "/a/../../etc"));
}
