// Cross-checks against binutils addr2line (a tool nobody here wrote): 1,000 addresses spread
// over the .text of a real multi-megabyte binary with .symtab and DWARF (this test binary,
// C++ with templates, lambdas and inlining), and a PIE in a live process.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "symbolizer/elf_image.h"
#include "symbolizer/symbolizer.h"

namespace hostprof::sym {
namespace {

std::string self_exe() {
    return std::filesystem::read_symlink("/proc/self/exe").string();
}

std::string run(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr)
        return out;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
        out.append(buf, n);
    ::pclose(p);
    return out;
}

struct Text {
    uint64_t start = 0, size = 0;
};

Text text_section(const std::string& file) {
    std::istringstream in(run("readelf -SW '" + file + "'"));
    std::string line;
    Text t;
    while (std::getline(in, line)) {
        std::istringstream f(line.substr(line.find(']') + 1));
        std::string name, type, addr, off, size;
        f >> name >> type >> addr >> off >> size;
        if (name == ".text") {
            t.start = std::stoull(addr, nullptr, 16);
            t.size = std::stoull(size, nullptr, 16);
        }
    }
    return t;
}

// addr2line -f -C output: two lines per address: function, then file:line.
std::vector<std::pair<std::string, std::string>> addr2line(const std::string& file,
                                                           const std::vector<uint64_t>& addrs) {
    std::string list =
        std::filesystem::temp_directory_path() / ("hostprof-a2l-" + std::to_string(::getpid()));
    {
        std::ofstream o(list);
        for (uint64_t a : addrs)
            o << std::hex << "0x" << a << "\n";
    }
    std::istringstream in(run("addr2line -f -C -e '" + file + "' < " + list));
    std::filesystem::remove(list);
    std::vector<std::pair<std::string, std::string>> out;
    std::string fn, loc;
    static const std::regex kDiscriminator(" \\(discriminator [0-9]+\\)");
    while (std::getline(in, fn) && std::getline(in, loc)) {
        loc = std::regex_replace(loc, kDiscriminator, "");
        if (loc.rfind("??:", 0) == 0 || loc.ends_with(":?") || loc.ends_with(":0"))
            loc = "";
        out.emplace_back(fn, loc);
    }
    return out;
}

std::string ours_loc(const FrameResult& r) {
    if (r.frames.empty() || r.frames[0].file.empty() || r.frames[0].line == 0)
        return "";
    return r.frames[0].file + ":" + std::to_string(r.frames[0].line);
}

std::string hex(uint64_t v) {
    return "0x" + (std::ostringstream() << std::hex << v).str();
}

// Our frames against addr2line's answers for the same ELF addresses: names always,
// file:line wherever addr2line has one.
//
// binutils answers a few addresses differently depending on what it was asked before in
// the same run: a function whose DWARF has no linkage name (C++ internal linkage:
// anonymous namespaces, local classes, static functions inlined) is named after the ELF
// symbol holding the address on its first query, and by its bare DW_AT_name ("cases" for
// "(anonymous namespace)::cases()", "file_key" inside "Symbolizer::load_opened(...)") on
// later ones when that symbol does not start where the function does (dwarf2.c keeps the
// DWARF name as final after the first lookup). Such an address is asked again alone, in a
// fresh addr2line, and that answer must equal ours (symbolizer/README.md).
//
// binutils 2.40 also names the wrong file for a few addresses (a template instantiation
// whose line-table rows say gtest.h:1355 is reported in the test's .cpp at line 1355, past
// the end of that file; binutils' own `objdump --dwarf=decodedline` shows gtest.h). Where
// our file:line differs from addr2line's, eu-addr2line (elfutils) and llvm-symbolizer are
// asked: both must agree with us, and such addresses stay few.
struct Agreement {
    int names_equal = 0;
    int asked_alone = 0;
    int lines_compared = 0;
    int lines_equal = 0;
    // addr2line contradicts itself (asked alone, it says what we say) or eu-addr2line and
    // llvm-symbolizer agree with us instead
    int lines_binutils_wrong = 0;
    std::string diffs;
};

// "file:line" from "file:line:column" (eu-addr2line, llvm-symbolizer).
std::string without_column(std::string loc) {
    while (!loc.empty() && (loc.back() == '\n' || loc.back() == ' '))
        loc.pop_back();
    const size_t last = loc.rfind(':');
    if (last != std::string::npos && loc.find(':') != last &&
        loc.find_first_not_of("0123456789", last + 1) == std::string::npos)
        loc.resize(last);
    return loc;
}

bool other_tools_agree(const std::string& file, uint64_t addr, const std::string& loc) {
    std::string eu = run("eu-addr2line -e '" + file + "' " + hex(addr));
    std::istringstream llvm(run("llvm-symbolizer --obj='" + file + "' " + hex(addr)));
    std::string fn, llvm_loc;
    std::getline(llvm, fn);
    std::getline(llvm, llvm_loc);
    return !loc.empty() && without_column(eu) == loc && without_column(llvm_loc) == loc;
}

Agreement compare_with_addr2line(const std::string& file, const std::vector<uint64_t>& elf_addrs,
                                 const std::vector<FrameResult>& ours) {
    Agreement a;
    auto expected = addr2line(file, elf_addrs);
    if (expected.size() != elf_addrs.size() || ours.size() != elf_addrs.size()) {
        a.diffs = "addr2line gave " + std::to_string(expected.size()) + " answers for " +
                  std::to_string(elf_addrs.size()) + " addresses";
        return a;
    }
    for (size_t i = 0; i < elf_addrs.size(); ++i) {
        const FrameResult& r = ours[i];
        const std::string fn = r.frames.empty() ? "??" : r.frames[0].function;
        if (fn == expected[i].first) {
            ++a.names_equal;
        } else {
            auto alone = addr2line(file, {elf_addrs[i]});
            if (!alone.empty() && alone[0].first == fn) {
                ++a.names_equal;
                ++a.asked_alone;
                std::printf("  %s: addr2line said '%s' in the batch, '%s' alone\n",
                            hex(elf_addrs[i]).c_str(), expected[i].first.c_str(), fn.c_str());
            } else if (a.diffs.size() < 4000) {
                a.diffs += hex(elf_addrs[i]) + ": addr2line '" + expected[i].first + "' (alone '" +
                           (alone.empty() ? "" : alone[0].first) + "') ours '" + fn + "'\n";
            }
        }
        if (!expected[i].second.empty()) {
            ++a.lines_compared;
            auto alone = [&] {
                auto one = addr2line(file, {elf_addrs[i]});
                return one.empty() ? std::string("(none)") : one[0].second;
            };
            if (ours_loc(r) == expected[i].second) {
                ++a.lines_equal;
            } else if (std::string by_itself = alone(); by_itself == ours_loc(r)) {
                // Seen: a static initializer's .constprop clone that no unit's ranges
                // cover; in the batch addr2line reported a line from an earlier query's
                // unit, alone it knows none, as we do.
                ++a.lines_binutils_wrong;
                std::printf("  %s: addr2line says %s in the batch, '%s' alone\n",
                            hex(elf_addrs[i]).c_str(), expected[i].second.c_str(),
                            by_itself.c_str());
            } else if (other_tools_agree(file, elf_addrs[i], ours_loc(r))) {
                ++a.lines_binutils_wrong;
                std::printf("  %s: addr2line says %s, eu-addr2line and llvm-symbolizer %s\n",
                            hex(elf_addrs[i]).c_str(), expected[i].second.c_str(),
                            ours_loc(r).c_str());
            } else if (a.diffs.size() < 4000)
                a.diffs += hex(elf_addrs[i]) + " line: addr2line " + expected[i].second + " ours " +
                           ours_loc(r) + "\n";
        }
    }
    return a;
}

TEST(SymbolizerAddr2line, ThousandAddressesOfAMultiMegabyteBinary) {
    const std::string exe = self_exe();
    ASSERT_GT(std::filesystem::file_size(exe), 2u << 20) << exe;
    Text t = text_section(exe);
    ASSERT_GT(t.size, 1u << 20);
    std::vector<uint64_t> addrs;
    for (uint64_t i = 0; i < 1000; ++i)
        addrs.push_back(t.start + t.size * i / 1000 + 1);

    Symbolizer s(SymbolizerOptions{});
    std::vector<FrameResult> ours;
    for (uint64_t a : addrs)
        ours.push_back(s.elf(exe, a));
    Agreement a = compare_with_addr2line(exe, addrs, ours);
    std::printf("addr2line agreement: names %d/1000 (%d asked alone), file:line %d/%d (%d where "
                "binutils alone differs)\n",
                a.names_equal, a.asked_alone, a.lines_equal, a.lines_compared,
                a.lines_binutils_wrong);
    EXPECT_GT(a.lines_compared, 500);
    EXPECT_EQ(a.names_equal, 1000) << a.diffs;
    EXPECT_EQ(a.lines_equal + a.lines_binutils_wrong, a.lines_compared) << a.diffs;
    EXPECT_LE(a.lines_binutils_wrong, 5) << a.diffs;
}

// Every byte of .text of a small fixture (tests/data/symbolizer/dwarf.elf, g++ -O2 -g):
// inlined callees, a lambda inlined into a template, an anonymous-namespace function.
TEST(SymbolizerAddr2line, EveryAddressOfASmallCxxFixture) {
    const std::string file = std::string(HOSTPROF_TEST_DATA) + "/symbolizer/dwarf.elf";
    Text t = text_section(file);
    ASSERT_GT(t.size, 0x100u);
    std::vector<uint64_t> addrs;
    std::vector<FrameResult> ours;
    Symbolizer s(SymbolizerOptions{});
    for (uint64_t a = t.start; a < t.start + t.size; ++a) {
        addrs.push_back(a);
        ours.push_back(s.elf(file, a));
    }
    Agreement a = compare_with_addr2line(file, addrs, ours);
    EXPECT_EQ(a.names_equal, static_cast<int>(addrs.size())) << a.diffs;
    EXPECT_EQ(a.lines_equal, a.lines_compared) << a.diffs;
    EXPECT_GT(a.lines_compared, 100);
    // The lambda's operator() is defined inside run() and inlined into apply<>: twice()
    // inlined into it is found under it (dwarf.cpp lines 10 <- 19 <- 15), whatever the
    // names (binutils names the innermost frame after the ELF symbol, see README).
    bool lambda_chain = false;
    for (const FrameResult& r : ours)
        if (r.frames.size() == 3 && r.frames[0].line == 10 && r.frames[1].line == 19 &&
            r.frames[2].line == 15 && r.frames[0].inlined && r.frames[1].inlined &&
            !r.frames[2].inlined && r.frames[2].function.starts_with("int apply<"))
            lambda_chain = true;
    EXPECT_TRUE(lambda_chain);
}

std::string testprogs_dir() {
    return std::filesystem::path(self_exe()).parent_path().string();
}

// Starts sym_target with a pipe on stdin; returns pid and function addresses it printed.
struct Target {
    pid_t pid = -1;
    int stdin_fd = -1;
    std::map<std::string, uint64_t> functions;
};

Target start_target(const std::string& path) {
    Target t;
    int in[2], out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0)
        return t;
    t.pid = ::fork();
    if (t.pid == 0) {
        ::dup2(in[0], 0);
        ::dup2(out[1], 1);
        ::close(in[1]);
        ::close(out[0]);
        ::execl(path.c_str(), path.c_str(), nullptr);
        ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    t.stdin_fd = in[1];
    FILE* f = ::fdopen(out[0], "r");
    char name[128];
    unsigned long long addr;
    while (t.functions.size() < 3 && std::fscanf(f, "%127s %llx", name, &addr) == 2)
        t.functions[name] = addr;
    std::fclose(f);
    return t;
}

void stop_target(Target& t) {
    if (t.stdin_fd >= 0)
        ::close(t.stdin_fd);
    int st;
    if (t.pid > 0)
        ::waitpid(t.pid, &st, 0);
    t.pid = -1;
}

TEST(SymbolizerLive, PieInALiveProcessMatchesAddr2lineAndSurvivesExit) {
    const std::string prog = testprogs_dir() + "/sym_target";
    ASSERT_TRUE(std::filesystem::exists(prog)) << prog;
    Target t = start_target(prog);
    ASSERT_GT(t.pid, 0);
    ASSERT_EQ(t.functions.size(), 3u);

    Symbolizer s(SymbolizerOptions{});
    s.process_seen(static_cast<uint32_t>(t.pid));
    std::vector<uint64_t> elf_addrs;
    std::vector<FrameResult> live;
    for (const auto& [name, addr] : t.functions) {
        FrameResult r = s.user(static_cast<uint32_t>(t.pid), addr + 2);
        ASSERT_FALSE(r.frames.empty()) << name << " " << miss_reason_name(r.miss);
        EXPECT_EQ(r.frames.back().function, name);
        EXPECT_GT(r.map_start, 0x10000u); // PIE: loaded far from its link address
        EXPECT_LT(r.elf_address, r.map_start);
        EXPECT_EQ(std::filesystem::path(r.module).filename(), "sym_target");
        EXPECT_EQ(r.build_id.size(), 40u);
        elf_addrs.push_back(r.elf_address);
        live.push_back(r);
    }
    auto expected = addr2line(prog, elf_addrs);
    ASSERT_EQ(expected.size(), live.size());
    for (size_t i = 0; i < live.size(); ++i) {
        EXPECT_EQ(live[i].frames[0].function, expected[i].first);
        EXPECT_EQ(ours_loc(live[i]), expected[i].second);
    }

    // The process exits: its frames still symbolize from what process_seen captured.
    const uint32_t pid = static_cast<uint32_t>(t.pid);
    stop_target(t);
    for (size_t i = 0; i < live.size(); ++i) {
        FrameResult r = s.user(pid, std::next(t.functions.begin(), i)->second + 2);
        ASSERT_FALSE(r.frames.empty());
        EXPECT_EQ(r.frames[0].function, live[i].frames[0].function);
        EXPECT_EQ(r.elf_address, live[i].elf_address);
    }
}

// Every process maps the same vDSO: a capture reads its bytes and, when they are the
// last vDSO's, reuses that image rather than loading it again; its functions still
// symbolize in each process.
TEST(SymbolizerLive, VdsoIsLoadedOnceAndSymbolizesInEveryProcess) {
    const uint64_t base = ::getauxval(AT_SYSINFO_EHDR);
    ASSERT_NE(base, 0u) << "no vDSO";
    const uint32_t self = static_cast<uint32_t>(::getpid());
    Symbolizer s(SymbolizerOptions{});
    ASSERT_TRUE(s.process_seen(self));
    uint64_t offset = 0;
    std::string name;
    for (uint64_t off = 0; off < 8192 && name.empty(); off += 4) {
        FrameResult r = s.user(self, base + off);
        if (!r.frames.empty() && !r.frames.back().function.empty() && r.module == "[vdso]") {
            offset = off;
            name = r.frames.back().function;
        }
    }
    ASSERT_FALSE(name.empty()) << "no vDSO function found";
    const uint64_t misses = s.stats().cache_misses;

    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::pause();
        ::_exit(0);
    }
    const bool seen = s.process_seen(static_cast<uint32_t>(child));
    FrameResult r = s.user(static_cast<uint32_t>(child), base + offset);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    ASSERT_TRUE(seen);
    ASSERT_FALSE(r.frames.empty()) << miss_reason_name(r.miss);
    EXPECT_EQ(r.module, "[vdso]");
    EXPECT_EQ(r.frames.back().function, name);
    EXPECT_EQ(s.stats().cache_misses, misses) << "the child's vDSO was loaded again";
}

// The same for a PIE in a live process: this test binary as it runs, 1,000 process
// addresses spread over its .text as mapped (/proc/self/maps), through Symbolizer::user.
TEST(SymbolizerLive, ThousandAddressesOfThisRunningPieMatchAddr2line) {
    const std::string exe = self_exe();
    Text t = text_section(exe);
    ASSERT_GT(t.size, 1u << 20);
    Symbolizer s(SymbolizerOptions{});
    const uint32_t pid = static_cast<uint32_t>(::getpid());
    s.process_seen(pid);
    // The load bias from one of our own functions: run-time address minus ELF address.
    const uint64_t here = reinterpret_cast<uint64_t>(&self_exe);
    FrameResult first = s.user(pid, here);
    ASSERT_FALSE(first.frames.empty()) << miss_reason_name(first.miss);
    EXPECT_EQ(first.frames.back().function, "hostprof::sym::(anonymous namespace)::self_exe()");
    const uint64_t bias = here - first.elf_address;
    ASSERT_GT(bias, 0x10000u); // PIE: loaded far from its link address

    std::vector<uint64_t> elf_addrs;
    std::vector<FrameResult> ours;
    for (uint64_t i = 0; i < 1000; ++i) {
        const uint64_t pc = t.start + bias + t.size * i / 1000 + 5;
        FrameResult r = s.user(pid, pc);
        EXPECT_EQ(r.elf_address, pc - bias);
        EXPECT_EQ(std::filesystem::path(r.module).filename(),
                  std::filesystem::path(exe).filename());
        elf_addrs.push_back(r.elf_address);
        ours.push_back(std::move(r));
    }
    Agreement a = compare_with_addr2line(exe, elf_addrs, ours);
    std::printf("live PIE addr2line agreement: names %d/1000 (%d asked alone), file:line %d/%d "
                "(%d where binutils alone differs)\n",
                a.names_equal, a.asked_alone, a.lines_equal, a.lines_compared,
                a.lines_binutils_wrong);
    EXPECT_GT(a.lines_compared, 500);
    EXPECT_EQ(a.names_equal, 1000) << a.diffs;
    EXPECT_EQ(a.lines_equal + a.lines_binutils_wrong, a.lines_compared) << a.diffs;
    EXPECT_LE(a.lines_binutils_wrong, 5) << a.diffs;
}

// A profile's frames in one batch, under a lookup-memory bound far below what this binary's
// line tables and units take (tens of MB for 1,000 addresses): the same frames as one by
// one without a bound, in request order, with the bound enforced along the way.
TEST(SymbolizerLive, BatchUnderALookupMemoryBoundGivesTheSameFrames) {
    const std::string exe = self_exe();
    Text t = text_section(exe);
    ASSERT_GT(t.size, 1u << 20);
    const uint32_t pid = static_cast<uint32_t>(::getpid());
    SymbolizerOptions unbounded;
    unbounded.lookup_memory_bytes = SIZE_MAX;
    Symbolizer one(unbounded);
    SymbolizerOptions bounded;
    bounded.lookup_memory_bytes = 1u << 20;
    Symbolizer batch(bounded);
    const uint64_t here = reinterpret_cast<uint64_t>(&self_exe);
    const uint64_t bias = here - one.user(pid, here).elf_address;
    // Request order unlike address order: the batch sorts, the results must not move.
    std::vector<Symbolizer::UserAddress> asked;
    for (uint64_t i = 0; i < 1000; ++i)
        asked.push_back({pid, t.start + bias + t.size * ((i * 617) % 1000) / 1000 + 5});
    asked.push_back({pid, 8}); // no mapping: answered in place too
    std::vector<FrameResult> expect;
    for (const auto& a : asked)
        expect.push_back(one.user(a.pid, a.address));
    size_t beats = 0;
    std::vector<FrameResult> got = batch.user_batch(asked, [&] { ++beats; });
    ASSERT_EQ(got.size(), asked.size());
    EXPECT_EQ(beats, asked.size());
    size_t with_lines = 0;
    for (size_t i = 0; i < asked.size(); ++i) {
        EXPECT_EQ(got[i].elf_address, expect[i].elf_address) << i;
        EXPECT_EQ(got[i].miss, expect[i].miss) << i;
        ASSERT_EQ(got[i].frames.size(), expect[i].frames.size()) << i;
        for (size_t j = 0; j < got[i].frames.size(); ++j) {
            EXPECT_EQ(got[i].frames[j].function, expect[i].frames[j].function) << i;
            EXPECT_EQ(got[i].frames[j].file, expect[i].frames[j].file) << i;
            EXPECT_EQ(got[i].frames[j].line, expect[i].frames[j].line) << i;
            EXPECT_EQ(got[i].frames[j].inlined, expect[i].frames[j].inlined) << i;
        }
        with_lines += !got[i].frames.empty() && got[i].frames[0].line > 0;
    }
    EXPECT_GT(with_lines, 500u);
    const SymbolizerStats st = batch.stats();
    EXPECT_GT(st.lookup_memory_releases, 0u) << "the bound was never reached";
    EXPECT_EQ(one.stats().lookup_memory_releases, 0u);
    std::printf("1,000 addresses under a 1 MiB lookup bound: %llu releases\n",
                static_cast<unsigned long long>(st.lookup_memory_releases));
}

TEST(SymbolizerLive, ProcessThatExitsRightAfterBeingSeenStillSymbolizes) {
    const std::string prog = testprogs_dir() + "/sym_target";
    Target t = start_target(prog);
    ASSERT_GT(t.pid, 0);
    ASSERT_EQ(t.functions.size(), 3u);
    const uint32_t pid = static_cast<uint32_t>(t.pid);
    Symbolizer s(SymbolizerOptions{});
    s.process_seen(pid);
    stop_target(t); // gone (and reaped): /proc/PID no longer exists
    ASSERT_FALSE(std::filesystem::exists("/proc/" + std::to_string(pid) + "/maps"));
    for (const auto& [name, addr] : t.functions) {
        FrameResult r = s.user(pid, addr);
        ASSERT_FALSE(r.frames.empty()) << name << " " << miss_reason_name(r.miss);
        EXPECT_EQ(r.frames.back().function, name);
    }
    s.process_exited(pid);
    EXPECT_EQ(s.stats().processes, 0u);
    // A pid never seen and not alive: no mapping.
    FrameResult r = s.user(pid, t.functions.begin()->second);
    EXPECT_TRUE(r.frames.empty());
    EXPECT_EQ(r.miss, MissReason::NoMapping);
}

TEST(SymbolizerFakeProc, InjectedProcTreeWithPerfMapAndFiles) {
    // A fake /proc: PID/maps naming a real file, PID/root -> "/", and a perf map in the
    // process's /tmp (PID/root/tmp/perf-PID.map).
    auto root = std::filesystem::temp_directory_path() /
                ("hostprof-fakeproc-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root);
    const std::string data = std::string(HOSTPROF_TEST_DATA) + "/symbolizer/";
    std::filesystem::create_directories(root / "4242" / "root" / "tmp");
    std::filesystem::create_directories(root / "4242" / "root" / "bin");
    std::filesystem::copy_file(data + "base.elf", root / "4242" / "root" / "bin" / "base");
    std::filesystem::copy_file(data + "perf-garbage.map",
                               root / "4242" / "root" / "tmp" / "perf-4242.map");
    struct stat st {};
    ASSERT_EQ(::stat((root / "4242/root/bin/base").c_str(), &st), 0);
    {
        std::ofstream m(root / "4242" / "maps");
        m << "555555554000-555555555000 r--p 00000000 08:01 " << st.st_ino << " /bin/base\n"
          << "555555555000-555555556000 r-xp 00001000 08:01 " << st.st_ino << " /bin/base\n"
          << "7f0000001000-7f0000004000 rwxp 00000000 00:00 0 \n";
    }
    SymbolizerOptions o;
    o.proc_root = root.string();
    Symbolizer s(o);
    s.process_seen(4242);
    FrameResult r = s.user(4242, 0x555555555129); // file offset 0x1129 -> base_function
    ASSERT_FALSE(r.frames.empty()) << miss_reason_name(r.miss);
    EXPECT_EQ(r.frames[0].function, "base_function");
    EXPECT_EQ(r.elf_address, 0x1129u);
    r = s.user(4242, 0x7f0000001010);
    ASSERT_FALSE(r.frames.empty());
    EXPECT_EQ(r.module, "[jit]");
    EXPECT_EQ(r.frames[0].function, "LazyCompile:~add /app/index.js:3");
    r = s.user(4242, 0x7f0000001040); // garbage line in the perf map: unknown
    EXPECT_EQ(r.miss, MissReason::NoMapping);
    r = s.user(4242, 0x1000); // nothing mapped
    EXPECT_EQ(r.miss, MissReason::NoMapping);
    SymbolizerStats st2 = s.stats();
    EXPECT_EQ(st2.perf_map_malformed_lines, 5u);
    EXPECT_EQ(st2.unsymbolized[static_cast<int>(MissReason::NoMapping)], 2u);
    EXPECT_GT(st2.cache_bytes, 0u);
    EXPECT_EQ(st2.cache_objects, 1u);
    std::filesystem::remove_all(root);
}

TEST(SymbolizerFakeProc, PerfMapLargerThanTheCapIsRefusedAndCounted) {
    auto root = std::filesystem::temp_directory_path() /
                ("hostprof-fakeproc-cap-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root);
    const std::string data = std::string(HOSTPROF_TEST_DATA) + "/symbolizer/";
    std::filesystem::create_directories(root / "4243" / "root" / "tmp");
    std::filesystem::copy_file(data + "perf-garbage.map",
                               root / "4243" / "root" / "tmp" / "perf-4243.map");
    {
        std::ofstream m(root / "4243" / "maps");
        m << "7f0000001000-7f0000004000 rwxp 00000000 00:00 0 \n";
    }
    const uint64_t size = std::filesystem::file_size(root / "4243/root/tmp/perf-4243.map");
    for (uint64_t cap : {size, size - 1}) {
        SymbolizerOptions o;
        o.proc_root = root.string();
        o.max_perf_map_bytes = cap;
        Symbolizer s(o);
        FrameResult r = s.user(4243, 0x7f0000001010);
        const uint64_t too_large = s.stats().open_failures[static_cast<int>(OpenRefusal::TooLarge)];
        if (cap == size) { // exactly at the cap: read
            ASSERT_FALSE(r.frames.empty()) << cap;
            EXPECT_EQ(r.frames[0].function, "LazyCompile:~add /app/index.js:3");
            EXPECT_EQ(too_large, 0u);
        } else { // one byte over: refused, counted, the JIT frame has no mapping
            EXPECT_TRUE(r.frames.empty());
            EXPECT_EQ(r.miss, MissReason::NoMapping);
            EXPECT_EQ(too_large, 1u);
        }
    }
    std::filesystem::remove_all(root);
}

TEST(SymbolizerCache, LruBoundEvictsAndReloads) {
    SymbolizerOptions o;
    o.cache_bytes = 1; // every new object evicts the previous one
    Symbolizer s(o);
    const std::string data = std::string(HOSTPROF_TEST_DATA) + "/symbolizer/";
    EXPECT_FALSE(s.elf(data + "base.elf", 0x1129).frames.empty());
    EXPECT_FALSE(s.elf("/lib/x86_64-linux-gnu/libc.so.6", 0x30000).build_id.empty());
    EXPECT_EQ(s.stats().cache_objects, 1u);
    EXPECT_GE(s.stats().cache_evictions, 1u);
    EXPECT_EQ(s.elf(data + "base.elf", 0x1129).frames.at(0).function, "base_function");
}

} // namespace
} // namespace hostprof::sym
