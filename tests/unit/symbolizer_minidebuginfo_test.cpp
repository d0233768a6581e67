// MiniDebugInfo (.gnu_debugdata): built here the way Fedora's find-debuginfo does it from
// the sym_target test program (strip everything, keep the function symbols .dynsym lacks
// in an xz-compressed ELF section), then symbolized and compared with elfutils'
// eu-addr2line, which reads .gnu_debugdata too.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "symbolizer/elf_image.h"
#include "symbolizer/symbolizer.h"
#include "run_command.h"

namespace hostprof::sym {
namespace {

namespace fs = std::filesystem;

using test::run_command;

class SymbolizerMiniDebugInfo : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("hostprof-mdi-" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        const std::string prog = fs::read_symlink("/proc/self/exe").parent_path() / "sym_target";
        ASSERT_TRUE(fs::exists(prog)) << prog;
        // Function addresses from the unstripped program.
        std::istringstream nm(run_command("nm --defined-only " + prog));
        std::string addr, type, name;
        while (nm >> addr >> type >> name)
            if (name.rfind("sym_target_", 0) == 0)
                functions_[name] = std::stoull(addr, nullptr, 16);
        ASSERT_EQ(functions_.size(), 3u);
        // Fedora's recipe (gdb manual, "MiniDebugInfo").
        const std::string script =
            "set -e; cd " + dir_.string() + "; cp " + prog +
            " full; cp full mdi; "
            "nm -D mdi --format=posix --defined-only | awk '{print $1}' | sort > dynsyms; "
            "nm mdi --format=posix --defined-only | awk '$2 ~ /^[Tt]$/ {print $1}' | sort > "
            "funcsyms; comm -13 dynsyms funcsyms > keep; "
            "objcopy --only-keep-debug mdi debug; "
            "objcopy -S --remove-section .gdb_index --remove-section .comment "
            "--keep-symbols=keep debug mini; "
            "strip --strip-all -R .comment mdi; cp mdi stripped; "
            "xz -f mini; objcopy --add-section .gnu_debugdata=mini.xz mdi; "
            "head -c 4096 /dev/urandom > junk; cp stripped corrupt; "
            "objcopy --add-section .gnu_debugdata=junk corrupt; echo ok";
        std::ofstream(dir_ / "make.sh") << script << "\n";
        ASSERT_EQ(run_command("bash " + (dir_ / "make.sh").string() + " 2>&1"), "ok\n");
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string path(const char* name) const { return (dir_ / name).string(); }

    fs::path dir_;
    std::map<std::string, uint64_t> functions_;
};

TEST_F(SymbolizerMiniDebugInfo, FunctionsResolveOnlyThroughGnuDebugdata) {
    ElfLoadOptions o;
    o.debug_dirs = {}; // no separate debug file may help
    auto stripped = ElfImage::load_path(path("stripped"), o);
    ASSERT_TRUE(stripped) << stripped.error().message();
    auto mdi = ElfImage::load_path(path("mdi"), o);
    ASSERT_TRUE(mdi) << mdi.error().message();
    EXPECT_TRUE((*mdi)->minidebuginfo_error().empty()) << (*mdi)->minidebuginfo_error();
    EXPECT_GE((*mdi)->minidebuginfo_symbols(), 3u);
    EXPECT_FALSE((*mdi)->has_dwarf());
    for (const auto& [name, addr] : functions_) {
        std::vector<SymbolizedFrame> frames;
        EXPECT_NE((*stripped)->symbolize(addr + 2, true, true, frames), ElfLookup::Found) << name;
        frames.clear();
        ASSERT_EQ((*mdi)->symbolize(addr + 2, true, true, frames), ElfLookup::Found) << name;
        EXPECT_EQ(frames.at(0).function, name);
        // elfutils agrees.
        char hex[32];
        std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(addr + 2));
        std::string eu = run_command("eu-addr2line -f -e " + path("mdi") + " " + hex);
        EXPECT_EQ(eu.substr(0, eu.find('\n')), name) << "eu-addr2line: " << eu;
    }
    // Through the Symbolizer too (the --elf path).
    Symbolizer s(SymbolizerOptions{});
    FrameResult r = s.elf(path("mdi"), functions_.at("sym_target_beta"));
    ASSERT_FALSE(r.frames.empty()) << miss_reason_name(r.miss);
    EXPECT_EQ(r.frames[0].function, "sym_target_beta");
    EXPECT_EQ(s.stats().minidebuginfo_loaded, 1u);
    // (Same build-id, so a fresh symbolizer: the cache would answer with "mdi".)
    Symbolizer s2(SymbolizerOptions{});
    EXPECT_TRUE(s2.elf(path("corrupt"), functions_.at("sym_target_beta")).frames.empty());
    EXPECT_EQ(s2.stats().minidebuginfo_errors, 1u);
}

TEST_F(SymbolizerMiniDebugInfo, CorruptOrOversizedSectionIsACleanFallback) {
    ElfLoadOptions o;
    o.debug_dirs = {};
    auto corrupt = ElfImage::load_path(path("corrupt"), o);
    ASSERT_TRUE(corrupt) << corrupt.error().message();
    EXPECT_NE((*corrupt)->minidebuginfo_error().find("xz error"), std::string::npos)
        << (*corrupt)->minidebuginfo_error();
    EXPECT_EQ((*corrupt)->minidebuginfo_symbols(), 0u);
    o.max_debugdata_bytes = 1024; // the real one decompresses to several KiB
    auto capped = ElfImage::load_path(path("mdi"), o);
    ASSERT_TRUE(capped) << capped.error().message();
    EXPECT_NE((*capped)->minidebuginfo_error().find("cap"), std::string::npos)
        << (*capped)->minidebuginfo_error();
    std::vector<SymbolizedFrame> frames;
    EXPECT_NE((*capped)->symbolize(functions_.begin()->second, true, true, frames),
              ElfLookup::Found);
}

} // namespace
} // namespace hostprof::sym
