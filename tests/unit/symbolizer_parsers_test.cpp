// Parsers of kallsyms, /proc/PID/maps and perf maps, on fixtures and inline text.
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "symbolizer/demangle.h"
#include "symbolizer/parsers.h"

namespace hostprof::sym {
namespace {

const std::string kData = std::string(HOSTPROF_TEST_DATA) + "/symbolizer/";

TEST(SymbolizerKallsyms, ParsesModulesBpfAndSkipsGarbage) {
    std::ifstream in(kData + "kallsyms.txt");
    ASSERT_TRUE(in.good());
    Kallsyms k = Kallsyms::parse(in);
    EXPECT_EQ(k.malformed(), 2u);
    std::optional<KernelSymbol> s = k.lookup(0xffffffff81001050);
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->name, "do_one_initcall");
    EXPECT_EQ(s->module, "");
    s = k.lookup(0xffffffff81000010);
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->name, "_stext"); // first alias listed wins
    // Data symbols are not functions: an address after some_data is still helper_local.
    s = k.lookup(0xffffffff81002100);
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->name, "helper_local");
    s = k.lookup(0xffffffffc0a01010);
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->name, "bpf_prog_6deef7357e7b4530_hp_cpu");
    EXPECT_EQ(s->module, "bpf");
    s = k.lookup(0xffffffffc0b00004);
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->name, "xfs_iget");
    EXPECT_EQ(s->module, "xfs");
    EXPECT_FALSE(k.lookup(0xffffffff80000000).has_value());
    EXPECT_FALSE(k.lookup(0xffffffffc0b00000 + (4u << 20)).has_value());
}

TEST(SymbolizerKallsyms, AllZeroAddressesGiveAnEmptyIndex) {
    std::istringstream in("0000000000000000 T _text\n0000000000000000 t foo [mod]\n");
    Kallsyms k = Kallsyms::parse(in);
    EXPECT_EQ(k.size(), 0u);
    EXPECT_FALSE(k.lookup(0x1000).has_value());
}

TEST(SymbolizerKallsyms, RealProcKallsymsParsesWithoutErrors) {
    std::ifstream in("/proc/kallsyms");
    Kallsyms k = Kallsyms::parse(in);
    EXPECT_EQ(k.malformed(), 0u);
}

// A real memfd mapped into this process, as /proc/self/maps shows it: the kernel names it
// "/memfd:NAME (deleted)", which must be recognized as a memfd and not as a file path.
TEST(SymbolizerMaps, RecognizesARealMemfdMapping) {
    const std::string name = "hostprof test jit " + std::to_string(::getpid());
    int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC);
    ASSERT_GE(fd, 0);
    const long page = ::sysconf(_SC_PAGESIZE);
    ASSERT_EQ(::ftruncate(fd, page), 0);
    void* addr = ::mmap(nullptr, static_cast<size_t>(page), PROT_READ, MAP_SHARED, fd, 0);
    ASSERT_NE(addr, MAP_FAILED);
    std::ifstream in("/proc/self/maps");
    std::stringstream text;
    text << in.rdbuf();
    ::munmap(addr, static_cast<size_t>(page));
    ::close(fd);

    MapsParse p = parse_maps(text.str());
    EXPECT_EQ(p.malformed, 0u);
    const MapEntry* found = nullptr;
    for (const MapEntry& e : p.entries)
        if (e.start == reinterpret_cast<uint64_t>(addr))
            found = &e;
    ASSERT_NE(found, nullptr) << text.str();
    EXPECT_EQ(found->path, "/memfd:" + name);
    EXPECT_TRUE(found->deleted);
    EXPECT_TRUE(found->shared);
    EXPECT_NE(found->inode, 0u);
    EXPECT_TRUE(found->is_memfd());
    EXPECT_FALSE(found->is_file());
    EXPECT_FALSE(found->is_anonymous());
    // Every other mapping of this process is no memfd (the test binary, libc, [heap]...).
    for (const MapEntry& e : p.entries) {
        if (&e != found) {
            EXPECT_FALSE(e.is_memfd()) << e.path;
        }
    }

    // A file that merely has such a name, present on disk (not deleted), is a file.
    MapsParse f = parse_maps("7f0000000000-7f0000001000 r-xp 00000000 08:01 77 /memfd:x\n");
    ASSERT_EQ(f.entries.size(), 1u);
    EXPECT_FALSE(f.entries[0].is_memfd());
    EXPECT_TRUE(f.entries[0].is_file());
}

TEST(SymbolizerMaps, HandlesDeletedSpacesMemfdVdsoAnon) {
    const std::string text =
        "55d0c0a00000-55d0c0a01000 r--p 00000000 fd:01 1234                       /usr/bin/my "
        "prog\n"
        "55d0c0a01000-55d0c0a02000 r-xp 00001000 fd:01 1234                       /usr/bin/my "
        "prog\n"
        "7f0000000000-7f0000100000 r-xp 00002000 00:05 99 /tmp/old lib.so (deleted)\n"
        "7f0000200000-7f0000201000 r-xs 00000000 00:01 4242 /memfd:jit-code (deleted)\n"
        "7f0000300000-7f0000400000 rwxp 00000000 00:00 0 \n"
        "7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]\n"
        "this is not a maps line\n"
        "7ffd00002000-7ffd00001000 r-xp 00000000 00:00 0 [end before start]\n";
    MapsParse p = parse_maps(text);
    ASSERT_EQ(p.entries.size(), 6u);
    EXPECT_EQ(p.malformed, 2u);
    EXPECT_EQ(p.entries[1].path, "/usr/bin/my prog");
    EXPECT_TRUE(p.entries[1].executable);
    EXPECT_EQ(p.entries[1].offset, 0x1000u);
    EXPECT_EQ(p.entries[1].inode, 1234u);
    EXPECT_EQ(p.entries[1].dev_major, 0xfdu);
    EXPECT_TRUE(p.entries[1].is_file());
    EXPECT_EQ(p.entries[2].path, "/tmp/old lib.so");
    EXPECT_TRUE(p.entries[2].deleted);
    EXPECT_EQ(p.entries[3].path, "/memfd:jit-code");
    EXPECT_TRUE(p.entries[3].shared);
    EXPECT_TRUE(p.entries[4].is_anonymous());
    EXPECT_EQ(p.entries[5].path, "[vdso]");
    EXPECT_FALSE(p.entries[5].is_file());
}

TEST(SymbolizerMaps, ParsesOurOwnMaps) {
    std::ifstream in("/proc/self/maps");
    std::stringstream ss;
    ss << in.rdbuf();
    MapsParse p = parse_maps(ss.str());
    EXPECT_EQ(p.malformed, 0u);
    EXPECT_GT(p.entries.size(), 5u);
}

TEST(SymbolizerPerfMap, GoodLinesSymbolizeAndBadOnesAreCounted) {
    std::ifstream in(kData + "perf-garbage.map");
    ASSERT_TRUE(in.good());
    PerfMap m = PerfMap::parse(in);
    EXPECT_EQ(m.malformed(), 5u);
    ASSERT_NE(m.lookup(0x7f0000001010), nullptr);
    EXPECT_EQ(m.lookup(0x7f0000001010)->name, "LazyCompile:~add /app/index.js:3");
    EXPECT_EQ(m.lookup(0x7f0000001040), nullptr); // its line was garbage
    ASSERT_NE(m.lookup(0x7f000000109f), nullptr);
    EXPECT_EQ(m.lookup(0x7f000000109f)->name, "Builtin:ArgumentsAdaptorTrampoline");
    EXPECT_EQ(m.lookup(0x7f00000010a0), nullptr);
    ASSERT_NE(m.lookup(0x7f00000010c0), nullptr);
    EXPECT_EQ(m.lookup(0x7f00000010c0)->name, "py::compute:/app/main.py");
    ASSERT_NE(m.lookup(0x7f0000003050), nullptr);
    EXPECT_EQ(m.lookup(0x7f0000003050)->name, "new_code_same_place"); // the newest wins
}

TEST(SymbolizerDemangle, CxxAndRustLegacy) {
    EXPECT_EQ(demangle("_ZN8hostprof3sym10SymbolizerC2ENS0_17SymbolizerOptionsE"),
              "hostprof::sym::Symbolizer::Symbolizer(hostprof::sym::SymbolizerOptions)");
    EXPECT_EQ(demangle("main"), "main");
    EXPECT_EQ(demangle("_Znot_valid"), "_Znot_valid");
    EXPECT_EQ(demangle("_ZN4core3fmt5write17h0123456789abcdefE"), "core::fmt::write");
    EXPECT_EQ(demangle("_ZN60_$LT$alloc..string..String$u20$as$u20$core..fmt..Display$GT$3fmt"
                       "17h0123456789abcdefE"),
              "<alloc::string::String as core::fmt::Display>::fmt");
}

} // namespace
} // namespace hostprof::sym

namespace hostprof::sym {
namespace {

// Rust v0 names from a real rustc-built binary against binutils' c++filt, whose output we
// print without the crate hashes ("std[1a2b]::rt" -> "std::rt").
TEST(SymbolizerDemangle, RustV0AgreesWithCxxfilt) {
    EXPECT_EQ(demangle("_RNvCskK7mfDs1mzF_1m12closure_user"), "m::closure_user");
    EXPECT_EQ(demangle("_RNvMNtCskK7mfDs1mzF_1m5outerINtB2_5ThingyE7doubled"),
              "<m::outer::Thing<u64>>::doubled");
    EXPECT_EQ(demangle("_RNvCs_"), "_RNvCs_") << "malformed: unchanged";
    std::ifstream in(std::string(HOSTPROF_TEST_DATA) + "/symbolizer/rust-v0-symbols.txt");
    std::vector<std::string> names;
    for (std::string line; std::getline(in, line);)
        names.push_back(line);
    ASSERT_GE(names.size(), 150u);
    const std::string list = ::testing::TempDir() + "v0-" + std::to_string(::getpid());
    {
        std::ofstream out(list);
        for (const auto& n : names)
            out << n << "\n";
    }
    std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(("c++filt < " + list).c_str(), "r"), ::pclose);
    ASSERT_TRUE(p);
    std::vector<std::string> theirs;
    char buf[8192];
    while (std::fgets(buf, sizeof buf, p.get()) != nullptr) {
        std::string l(buf);
        l.erase(l.find_last_not_of('\n') + 1);
        // Drop "[hex]" right after an identifier: crate disambiguators, not slice types.
        std::string clean;
        for (size_t i = 0; i < l.size(); ++i) {
            if (l[i] == '[' && i > 0 &&
                (std::isalnum(static_cast<unsigned char>(l[i - 1])) || l[i - 1] == '_')) {
                size_t j = i + 1;
                while (j < l.size() && std::isxdigit(static_cast<unsigned char>(l[j])))
                    ++j;
                if (j > i + 1 && j < l.size() && l[j] == ']') {
                    i = j;
                    continue;
                }
            }
            clean.push_back(l[i]);
        }
        theirs.push_back(clean);
    }
    std::remove(list.c_str());
    ASSERT_EQ(theirs.size(), names.size());
    int equal = 0;
    for (size_t i = 0; i < names.size(); ++i) {
        std::string ours = demangle(names[i]);
        EXPECT_NE(ours.substr(0, 2), "_R") << names[i];
        if (ours == theirs[i])
            ++equal;
        else
            ADD_FAILURE() << names[i] << "\n ours:     " << ours << "\n c++filt:  " << theirs[i];
    }
    EXPECT_EQ(equal, static_cast<int>(names.size()));
}

} // namespace
} // namespace hostprof::sym
