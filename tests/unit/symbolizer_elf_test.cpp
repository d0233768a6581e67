// The ELF reader on a good file and on the malformed corpus (each must give a clean error).
#include <gtest/gtest.h>

#include <filesystem>

#include "symbolizer/elf_image.h"
#include "symbolizer/symbolizer.h"

namespace hostprof::sym {
namespace {

const std::string kData = std::string(HOSTPROF_TEST_DATA) + "/symbolizer/";

TEST(SymbolizerElf, ReadsSymbolsBuildIdAndSegments) {
    auto img = ElfImage::load_path(kData + "base.elf", {});
    ASSERT_TRUE(img.ok()) << img.error().message();
    EXPECT_EQ((*img)->build_id().size(), 40u);
    EXPECT_TRUE((*img)->has_symbols());
    EXPECT_FALSE((*img)->has_dwarf());
    std::vector<SymbolizedFrame> frames;
    ASSERT_EQ((*img)->symbolize(0x1129, true, true, frames), ElfLookup::Found);
    EXPECT_EQ(frames.at(0).function, "base_function");
    // PIE: file offset == vaddr for the first text segment of a gcc PIE.
    EXPECT_EQ((*img)->file_offset_to_vaddr(0x1129), std::optional<uint64_t>(0x1129));
    EXPECT_EQ((*img)->file_offset_to_vaddr(1u << 30), std::nullopt);
}

TEST(SymbolizerElf, EveryMalformedFileGivesACleanError) {
    int files = 0;
    for (const auto& e : std::filesystem::directory_iterator(kData + "malformed")) {
        ++files;
        auto img = ElfImage::load_path(e.path().string(), {});
        EXPECT_FALSE(img.ok()) << e.path() << " was accepted";
        if (!img.ok()) {
            EXPECT_FALSE(img.error().message().empty());
        }
    }
    EXPECT_GE(files, 10);
}

TEST(SymbolizerElf, MalformedFileIsACountedMissInTheSymbolizer) {
    Symbolizer s(SymbolizerOptions{});
    FrameResult r = s.elf(kData + "malformed/shoff_past_eof.elf", 0x1129);
    EXPECT_TRUE(r.frames.empty());
    EXPECT_EQ(r.miss, MissReason::NotElf);
    EXPECT_EQ(s.stats().unsymbolized[static_cast<int>(MissReason::NotElf)], 1u);
}

TEST(SymbolizerElf, StrippedBinaryFallsBackToDynsym) {
    // A system library: stripped of .symtab, with exported functions in .dynsym.
    const char* libc = "/lib/x86_64-linux-gnu/libc.so.6";
    auto img = ElfImage::load_path(libc, {});
    ASSERT_TRUE(img.ok()) << img.error().message();
    EXPECT_TRUE((*img)->has_symbols());
    EXPECT_FALSE((*img)->build_id().empty());
}

} // namespace
} // namespace hostprof::sym
