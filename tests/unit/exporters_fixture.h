// Shared by the exporters_*_test.cpp files: a small symbolized CPU profile, golden-file
// comparison, and running real tools (go tool pprof, promtool, python3, chromium).
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include "common/profile.h"
#include "exporters/pprof.h"

namespace hostprof::testing {

inline const std::string kGoldenDir = std::string(HOSTPROF_TEST_DATA) + "/exporters";

// Checkout (pid 100): main -> run_loop [hash_block inlined] -> compute_sha -> memcpy (50)
//                     main -> run_loop [hash_block] -> compute_sha (30)
//                     main -> run_loop [hash_block] -> write -> do_syscall_64 -> __x64_sys_write
//                     (15)
// Search (pid 200):   main -> idle_loop -> libc.so.6 without symbol (5)
//                     main -> idle_loop (20)
// 99 Hz, so each sample is 10101010 ns of CPU.
inline Profile fixture_profile() {
    Profile p;
    set_cpu_profile_types(p, 99);
    p.time_nanos = 1'700'000'000'000'000'000;
    p.duration_nanos = 10'000'000'000;
    p.mappings = {
        {0x400000, 0x500000, 0, "/opt/fixture/bin/checkout-app",
         "6b1f2c3d4e5f60718293a4b5c6d7e8f901234567"},
        {0x7f0000000000, 0x7f0000200000, 0x28000, "/usr/lib/x86_64-linux-gnu/libc.so.6",
         "0123456789abcdef0123456789abcdef01234567"},
        {0, 0, 0, "[kernel.kallsyms]", ""},
    };
    p.locations = {
        {0x401000, 0, {{"main", "src/main.c", 10}}},                                     // 0
        {0x401200, 0, {{"hash_block", "src/hash.h", 5}, {"run_loop", "src/app.c", 40}}}, // 1
        {0x401400, 0, {{"compute_sha", "src/sha.c", 77}}},                               // 2
        {0x7f0000010000, 1, {{"memcpy", "", 0}}},                                        // 3
        {0xffffffff81000100, 2, {{"do_syscall_64", "", 0}}},                             // 4
        {0xffffffff81200200, 2, {{"__x64_sys_write", "", 0}}},                           // 5
        {0x7f0000020000, 1, {{"write", "", 0}}},                                         // 6
        {0x7f0000030000, 1, {}},                                                         // 7
        {0x401600, 0, {{"idle_loop", "src/main.c", 90}}},                                // 8
    };
    const int64_t period = p.period;
    auto sample = [&](std::vector<uint32_t> locs, int64_t n, std::string pid, std::string comm,
                      std::string service) {
        p.samples.push_back({std::move(locs),
                             {n, n * period},
                             {{"pid", pid}, {"comm", comm}, {"service", service}}});
    };
    sample({3, 2, 1, 0}, 50, "100", "checkout", "checkout");
    sample({2, 1, 0}, 30, "100", "checkout", "checkout");
    sample({5, 4, 6, 1, 0}, 15, "100", "checkout", "checkout");
    sample({7, 8, 0}, 5, "200", "search", "search");
    sample({8, 0}, 20, "200", "search", "search");
    return p;
}

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline void write_file(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << data;
}

// Compares `actual` with tests/data/exporters/<name>; HOSTPROF_UPDATE_GOLDEN=1 rewrites it.
inline void expect_golden(const std::string& name, const std::string& actual) {
    const std::string path = kGoldenDir + "/" + name;
    if (const char* update = std::getenv("HOSTPROF_UPDATE_GOLDEN");
        update && std::string(update) == "1") {
        write_file(path, actual);
        return;
    }
    ASSERT_TRUE(std::filesystem::exists(path))
        << path << " missing; run with HOSTPROF_UPDATE_GOLDEN=1";
    EXPECT_EQ(read_file(path), actual)
        << "golden " << path << " differs (regenerate: HOSTPROF_UPDATE_GOLDEN=1)";
}

struct CommandResult {
    int exit_code = -1;
    std::string output; // stdout (and stderr when the command redirects it)
};

inline CommandResult run_command(const std::string& cmd) {
    CommandResult r;
    FILE* f = popen(cmd.c_str(), "r");
    if (f == nullptr)
        return r;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), f)) > 0)
        r.output.append(buf.data(), n);
    const int status = pclose(f);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

// CI sets CI (GitHub and GitLab to "true"; `CI=1 ./dev.sh test` as the shell scripts read
// it): any value but empty, "0" or "false".
inline bool in_ci() {
    const char* ci = std::getenv("CI");
    return ci != nullptr && *ci != '\0' && std::string(ci) != "0" && std::string(ci) != "false";
}

inline bool have_tool(const std::string& path) {
    return run_command("command -v " + path + " >/dev/null 2>&1").exit_code == 0;
}

// A fresh directory under the build tree (the current directory of ctest) or /tmp.
inline std::filesystem::path temp_dir(const std::string& name) {
    std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                ("hostprof-exporters-" + name + "-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

} // namespace hostprof::testing

// A test needing a real tool fails when CI=true and the tool is missing; elsewhere it skips.
#define HOSTPROF_REQUIRE_TOOL(tool)                                                                \
    do {                                                                                           \
        if (!::hostprof::testing::have_tool(tool)) {                                               \
            if (::hostprof::testing::in_ci())                                                      \
                FAIL() << (tool) << " is required (scripts/install-deps.sh --test)";               \
            GTEST_SKIP() << (tool) << " not installed (scripts/install-deps.sh --test)";           \
        }                                                                                          \
    } while (0)
