// The CFI table builder (unwind/cfi.h). The oracle is libdw itself: for every address of
// real objects, the row our table gives (and the packed table the BPF walker searches)
// must be the rule libdw computes directly at that address. Then tables of our own
// -O2 -fomit-frame-pointer program, the .debug_frame paths, crafted CFI (each row kind,
// the bounds) and corrupt input (errors, never a crash or a hang).
#include <gtest/gtest.h>

#include <dwarf.h>
#include <elf.h>
#include <gelf.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>

#include "common/elf_handle.h"
#include "tests/unwind_elf_writer.h"
#include "unwind/cfi.h"

namespace hostprof::unwind {
namespace {

using namespace testing_elf;

const std::string kData = std::string(HOSTPROF_TEST_DATA) + "/unwind/";

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// An Elf over bytes in memory (the bytes must outlive it).
struct MemElf {
    explicit MemElf(std::string b) : bytes(std::move(b)) {
        elf_version(EV_CURRENT);
        elf = elf_memory(bytes.data(), bytes.size());
    }
    ~MemElf() {
        if (elf)
            elf_end(elf);
    }
    MemElf(const MemElf&) = delete;
    MemElf& operator=(const MemElf&) = delete;
    std::string bytes;
    Elf* elf = nullptr;
};

Result<CfiTable> build_from_bytes(const std::string& bytes) {
    MemElf m(bytes);
    return build_cfi_table(m.elf, nullptr);
}

// libdw's direct answer at pc, classified as the builder classifies.
Row libdw_rule(Dwarf_CFI* cfi, uint64_t pc) {
    Dwarf_Frame* f = nullptr;
    Row r;
    if (dwarf_cfi_addrframe(cfi, pc, &f) != 0) {
        std::free(f);
        const char* m = dwarf_errmsg(-1);
        r.kind = std::strcmp(m, "no matching address range") == 0 ? HP_UNW_NONE : HP_UNW_INVALID;
        return r;
    }
    r = classify_frame(f);
    std::free(f);
    return r;
}

std::string describe(const Row& r) {
    return "kind " + std::to_string(r.kind) + " cfa_off " + std::to_string(r.cfa_off) + " rbp " +
           std::to_string(r.rbp) + " rbp_off " + std::to_string(r.rbp_off);
}

struct Comparison {
    uint64_t pcs = 0;
    uint64_t mismatches = 0;
    uint64_t packed_mismatches = 0;
};

// Every address from the table's first row to its last: inside every FDE and in the gaps.
Comparison compare_with_libdw(const CfiTable& t, Dwarf_CFI* cfi) {
    Comparison c;
    if (t.rows.empty())
        return c;
    const PackedTable packed = pack(t.rows);
    int reported = 0;
    for (uint64_t pc = t.rows.front().pc; pc < t.rows.back().pc; ++pc) {
        ++c.pcs;
        const Row want = libdw_rule(cfi, pc);
        const Row* got = find(t.rows, pc);
        if (got == nullptr || !got->same_rule(want)) {
            ++c.mismatches;
            if (reported++ < 10)
                ADD_FAILURE() << std::hex << "pc 0x" << pc << ": libdw " << describe(want)
                              << ", table " << (got ? describe(*got) : "none");
        }
        const hp_unw_row* k = find_packed(packed, pc);
        Row kr;
        kr.kind = HP_UNW_NONE; // a page without rows is NONE for the walker
        if (k != nullptr) {
            kr.kind = k->kind;
            kr.rbp = k->rbp;
            kr.cfa_off = k->cfa_off;
            kr.rbp_off = k->rbp_off;
        }
        if (!kr.same_rule(want)) {
            ++c.packed_mismatches;
            if (reported++ < 10)
                ADD_FAILURE() << std::hex << "pc 0x" << pc << ": libdw " << describe(want)
                              << ", packed " << describe(kr);
        }
    }
    return c;
}

size_t count_kind(const CfiTable& t, uint8_t kind) {
    size_t n = 0;
    for (const Row& r : t.rows)
        n += r.kind == kind;
    return n;
}

void compare_object(const std::string& path) {
    if (!std::filesystem::exists(path))
        GTEST_SKIP() << path << " not on this machine";
    auto t = build_cfi_table(path);
    ASSERT_TRUE(t.ok()) << t.error().message();
    ASSERT_EQ(t->stats.source, CfiSource::EhFrame);
    EXPECT_GT(t->stats.fdes, 0u);
    EXPECT_EQ(t->stats.rows, t->rows.size());
    EXPECT_EQ(t->stats.truncated_fdes, 0u);
    EXPECT_EQ(t->stats.bad_fdes, 0u);
    auto f = ElfFile::open(path);
    ASSERT_TRUE(f.ok());
    Dwarf_CFI* cfi = dwarf_getcfi_elf(f->elf());
    ASSERT_NE(cfi, nullptr);
    const Comparison c = compare_with_libdw(*t, cfi);
    dwarf_cfi_end(cfi);
    const PackedTable p = pack(t->rows);
    std::cout << path << ": " << t->stats.fdes << " FDEs, " << t->rows.size() << " rows ("
              << t->stats.invalid_rows << " invalid), " << p.rows.size() << " packed rows in "
              << p.pages.size() << " pages (" << p.rows.size() * sizeof(hp_unw_row) << " bytes), "
              << t->stats.build_ns / 1000 << " us; " << c.pcs << " addresses compared, "
              << c.mismatches << " + " << c.packed_mismatches << " mismatches\n";
    EXPECT_GT(c.pcs, 0u);
    EXPECT_EQ(c.mismatches, 0u);
    EXPECT_EQ(c.packed_mismatches, 0u);
}

struct Symbol {
    uint64_t addr = 0;
    uint64_t size = 0;
};
// A function's address and size from .symtab, else .dynsym.
std::optional<Symbol> find_symbol(const std::string& path, const std::string& name) {
    auto f = ElfFile::open(path);
    if (!f)
        return std::nullopt;
    for (Elf64_Word type : {SHT_SYMTAB, SHT_DYNSYM}) {
        for (Elf_Scn* scn = elf_nextscn(f->elf(), nullptr); scn; scn = elf_nextscn(f->elf(), scn)) {
            GElf_Shdr sh;
            if (gelf_getshdr(scn, &sh) == nullptr || sh.sh_type != type || sh.sh_entsize == 0)
                continue;
            Elf_Data* d = elf_getdata(scn, nullptr);
            for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; ++i) {
                GElf_Sym s;
                if (gelf_getsym(d, static_cast<int>(i), &s) == nullptr || s.st_value == 0)
                    continue;
                const char* n = elf_strptr(f->elf(), sh.sh_link, s.st_name);
                if (n && name == n && GELF_ST_TYPE(s.st_info) == STT_FUNC)
                    return Symbol{s.st_value, s.st_size};
            }
        }
    }
    return std::nullopt;
}

// ------------------------------------------------------------- real objects vs libdw

TEST(UnwindCfi, LibcMatchesLibdwAtEveryAddress) {
    compare_object("/lib/x86_64-linux-gnu/libc.so.6");
}
TEST(UnwindCfi, Python3MatchesLibdwAtEveryAddress) {
    compare_object("/usr/bin/python3.11");
}
TEST(UnwindCfi, LdSoMatchesLibdwAtEveryAddress) {
    compare_object("/lib64/ld-linux-x86-64.so.2");
}
TEST(UnwindCfi, LibstdcxxMatchesLibdwAtEveryAddress) {
    compare_object("/lib/x86_64-linux-gnu/libstdc++.so.6");
}
TEST(UnwindCfi, LibmMatchesLibdwAtEveryAddress) {
    compare_object("/lib/x86_64-linux-gnu/libm.so.6");
}
TEST(UnwindCfi, OwnNoFramePointerProgramMatchesLibdwAtEveryAddress) {
    compare_object(kData + "nofp.elf");
}

TEST(UnwindCfi, LibcHasTheSpecialRows) {
    const std::string libc = "/lib/x86_64-linux-gnu/libc.so.6";
    if (!std::filesystem::exists(libc))
        GTEST_SKIP();
    auto t = build_cfi_table(libc);
    ASSERT_TRUE(t.ok()) << t.error().message();
    EXPECT_GE(count_kind(*t, HP_UNW_SIGNAL), 1u); // __restore_rt
    EXPECT_GE(count_kind(*t, HP_UNW_PLT), 1u);
    EXPECT_GT(count_kind(*t, HP_UNW_CFA_RBP), 0u);
    // clone: the child's path marks the return address undefined (the end of the stack).
    auto clone = find_symbol(libc, "clone");
    ASSERT_TRUE(clone.has_value());
    bool end_in_clone = false;
    for (const Row& r : t->rows)
        end_in_clone |=
            r.kind == HP_UNW_END && r.pc >= clone->addr && r.pc < clone->addr + clone->size;
    EXPECT_TRUE(end_in_clone);
    // rsp-based rules dominate (Debian builds libc without frame pointers).
    EXPECT_GT(count_kind(*t, HP_UNW_CFA_RSP), t->rows.size() / 2);
}

TEST(UnwindCfi, Python3EntryIsTheEndOfTheStackAndPltIsRecognized) {
    const std::string py = "/usr/bin/python3.11";
    if (!std::filesystem::exists(py))
        GTEST_SKIP();
    auto t = build_cfi_table(py);
    ASSERT_TRUE(t.ok()) << t.error().message();
    auto start = find_symbol(py, "_start");
    if (start) {
        const Row* r = find(t->rows, start->addr);
        ASSERT_NE(r, nullptr);
        EXPECT_EQ(r->kind, HP_UNW_END);
    }
    ASSERT_EQ(count_kind(*t, HP_UNW_PLT), 1u);
    for (const Row& r : t->rows) {
        if (r.kind == HP_UNW_PLT) {
            EXPECT_EQ(r.cfa_off, 11); // pushes its index at offset 11 of each 16-byte stub
        }
    }
}

// ------------------------------------------------------------- our own binaries

void expect_function_rows(const CfiTable& t, const Symbol& fn, const char* name) {
    const Row* entry = find(t.rows, fn.addr);
    ASSERT_NE(entry, nullptr) << name;
    EXPECT_EQ(entry->pc, fn.addr) << name;
    EXPECT_EQ(entry->kind, HP_UNW_CFA_RSP) << name; // CFA = rsp + 8 at the entry
    EXPECT_EQ(entry->cfa_off, 8) << name;
    EXPECT_EQ(entry->rbp, HP_UNW_RBP_SAME) << name;
    for (uint64_t pc = fn.addr; pc < fn.addr + fn.size; ++pc) {
        const Row* r = find(t.rows, pc);
        ASSERT_NE(r, nullptr);
        EXPECT_EQ(r->kind, HP_UNW_CFA_RSP) << name << " + " << pc - fn.addr;
        EXPECT_GE(r->cfa_off, 8);
    }
}

TEST(UnwindCfi, NoFramePointerProgramHasRowsForItsCallChain) {
    const std::string path = kData + "nofp.elf";
    auto t = build_cfi_table(path);
    ASSERT_TRUE(t.ok()) << t.error().message();
    EXPECT_EQ(t->stats.source, CfiSource::EhFrame);
    EXPECT_EQ(t->stats.invalid_rows, 0u);
    for (const char* name : {"main", "f", "g", "leaf"}) {
        auto fn = find_symbol(path, name);
        ASSERT_TRUE(fn.has_value()) << name;
        expect_function_rows(*t, *fn, name);
    }
    // g keeps a 256-byte array on the stack: its body's CFA is far above rsp.
    auto g = find_symbol(path, "g");
    int max_off = 0;
    for (uint64_t pc = g->addr; pc < g->addr + g->size; ++pc)
        max_off = std::max<int>(max_off, find(t->rows, pc)->cfa_off);
    EXPECT_GE(max_off, 8 + 256);
    auto start = find_symbol(path, "_start");
    ASSERT_TRUE(start.has_value());
    EXPECT_EQ(find(t->rows, start->addr)->kind, HP_UNW_END);
}

TEST(UnwindCfi, StripKeepsTheSameTable) {
    auto full = build_cfi_table(kData + "nofp.elf");
    auto stripped = build_cfi_table(kData + "nofp-stripped.elf");
    ASSERT_TRUE(full.ok() && stripped.ok());
    EXPECT_EQ(full->rows, stripped->rows);
}

TEST(UnwindCfi, NoCfiGivesAnEmptyTableWithAReason) {
    auto t = build_cfi_table(kData + "nocfi.elf");
    ASSERT_TRUE(t.ok()) << t.error().message();
    EXPECT_EQ(t->stats.source, CfiSource::None);
    EXPECT_TRUE(t->rows.empty());
    EXPECT_NE(t->reason.find("no .eh_frame"), std::string::npos) << t->reason;
}

TEST(UnwindCfi, DebugFrameOfTheFileItself) {
    const std::string path = kData + "debugframe.elf";
    auto t = build_cfi_table(path);
    ASSERT_TRUE(t.ok()) << t.error().message();
    EXPECT_EQ(t->stats.source, CfiSource::DebugFrame);
    EXPECT_FALSE(t->stats.from_debug_file);
    for (const char* name : {"main", "f", "g", "leaf"})
        expect_function_rows(*t, *find_symbol(path, name), name);
    // The same rules as libdw's, at every address.
    auto f = ElfFile::open(path);
    ASSERT_TRUE(f.ok());
    Dwarf* dw = dwarf_begin_elf(f->elf(), DWARF_C_READ, nullptr);
    ASSERT_NE(dw, nullptr);
    const Comparison c = compare_with_libdw(*t, dwarf_getcfi(dw));
    EXPECT_GT(c.pcs, 0u);
    EXPECT_EQ(c.mismatches + c.packed_mismatches, 0u);
    dwarf_end(dw);
}

TEST(UnwindCfi, CompressedDebugFrameOfTheSeparateDebugFile) {
    const std::string path = kData + "split.elf";
    auto alone = build_cfi_table(path);
    ASSERT_TRUE(alone.ok());
    EXPECT_EQ(alone->stats.source, CfiSource::None);
    auto t = build_cfi_table(path, kData + "split.debug");
    ASSERT_TRUE(t.ok()) << t.error().message();
    EXPECT_EQ(t->stats.source, CfiSource::DebugFrame);
    EXPECT_TRUE(t->stats.from_debug_file);
    // Addresses are the code's (the debug file shares them): the same as the unsplit one.
    auto whole = build_cfi_table(kData + "debugframe.elf");
    ASSERT_TRUE(whole.ok());
    EXPECT_EQ(t->rows, whole->rows);
    // A debug file for a file that has .eh_frame is not read.
    auto eh = build_cfi_table(kData + "nofp.elf", kData + "split.debug");
    ASSERT_TRUE(eh.ok());
    EXPECT_EQ(eh->stats.source, CfiSource::EhFrame);
}

TEST(UnwindCfi, NotAnElfOrMissingIsAnError) {
    EXPECT_FALSE(build_cfi_table("/nonexistent/file").ok());
    EXPECT_FALSE(build_cfi_table(std::string(HOSTPROF_TEST_DATA) + "/README.md").ok());
    EXPECT_FALSE(build_cfi_table(kData + "nofp.elf", "/nonexistent/debug").ok());
    EXPECT_FALSE(build_cfi_table(nullptr, nullptr).ok());
}

// ------------------------------------------------------------- crafted CFI

constexpr uint64_t kCodeAddr = 0x2000;

// An .eh_frame: one CIE (CFA = rsp + 8, RA at CFA - 8, pcrel sdata4 pointers, `cie_aug`
// 'S' for a signal frame) and one FDE per entry of `fdes` ({instructions, range}), the
// FDEs covering consecutive code from kCodeAddr.
std::string eh_frame(const std::vector<std::pair<std::string, uint32_t>>& fdes,
                     bool signal = false) {
    std::string s;
    const size_t cie = s.size();
    put32(s, 0); // length, patched
    put32(s, 0); // CIE id
    s.push_back(1);
    s += signal ? std::string("zRS", 4) : std::string("zR", 3);
    s.push_back(1);    // code alignment
    s.push_back(0x78); // data alignment -8
    s.push_back(16);   // return address register
    s.push_back(1);    // augmentation data length
    s.push_back(static_cast<char>(DW_EH_PE_pcrel | DW_EH_PE_sdata4));
    s += std::string("\x0c\x07\x08\x90\x01", 5); // def_cfa rsp 8; offset r16 at cfa-8
    pad4(s, cie + 4);
    const uint32_t cie_len = static_cast<uint32_t>(s.size() - cie - 4);
    std::memcpy(&s[cie], &cie_len, 4);
    uint64_t code = kCodeAddr;
    for (const auto& [ins, range] : fdes) {
        const size_t at = s.size();
        put32(s, 0);
        put32(s, static_cast<uint32_t>(s.size() - cie)); // CIE pointer: back to the CIE
        const int64_t rel =
            static_cast<int64_t>(code) - static_cast<int64_t>(kEhFrameAddr + s.size());
        put32(s, static_cast<uint32_t>(static_cast<int32_t>(rel)));
        put32(s, range);
        s.push_back(0); // augmentation data length
        s += ins;
        pad4(s, at + 4);
        const uint32_t len = static_cast<uint32_t>(s.size() - at - 4);
        std::memcpy(&s[at], &len, 4);
        code += range;
    }
    put32(s, 0); // terminator
    return s;
}

Result<CfiTable> build_crafted(const std::vector<std::pair<std::string, uint32_t>>& fdes,
                               bool signal = false) {
    return build_from_bytes(elf_with_eh_frame(eh_frame(fdes, signal)));
}

std::string adv(uint8_t n) {
    return std::string(1, static_cast<char>(DW_CFA_advance_loc | n));
}

TEST(UnwindCfi, CraftedRspAndRbpRules) {
    // push rbp; mov rbp, rsp; ...; back to CFA = rsp + 8 (each rule after its advance).
    const std::string prog = adv(1) +
                             std::string("\x0e\x10\x86\x02", 4)    // cfa_off 16, rbp at cfa-16
                             + adv(3) + std::string("\x0d\x06", 2) // def_cfa_register rbp
                             + adv(10) + std::string("\x0c\x07\x08", 3); // def_cfa rsp 8
    auto t = build_crafted({{prog, 16}});
    ASSERT_TRUE(t.ok()) << t.error().message();
    ASSERT_EQ(t->rows.size(), 5u);
    EXPECT_EQ(t->rows[0], (Row{kCodeAddr, HP_UNW_CFA_RSP, HP_UNW_RBP_SAME, 8, 0}));
    EXPECT_EQ(t->rows[1], (Row{kCodeAddr + 1, HP_UNW_CFA_RSP, HP_UNW_RBP_OFFSET, 16, -16}));
    EXPECT_EQ(t->rows[2], (Row{kCodeAddr + 4, HP_UNW_CFA_RBP, HP_UNW_RBP_OFFSET, 16, -16}));
    // def_cfa rsp 8 keeps rbp's rule (a real epilogue would also restore it).
    EXPECT_EQ(t->rows[3], (Row{kCodeAddr + 14, HP_UNW_CFA_RSP, HP_UNW_RBP_OFFSET, 8, -16}));
    EXPECT_EQ(t->rows[4].pc, kCodeAddr + 16);
    EXPECT_EQ(t->rows[4].kind, HP_UNW_NONE);
}

TEST(UnwindCfi, CraftedSpecialRules) {
    // DW_CFA_def_cfa_offset 40000 does not fit int16: INVALID.
    const std::string big = adv(2) + std::string("\x0e\xc0\xb8\x02", 4);
    // DW_CFA_undefined r16: the end of the stack.
    const std::string end = adv(2) + std::string("\x07\x10", 2);
    // DW_CFA_def_cfa_expression { DW_OP_breg7 8; DW_OP_deref }: not expressible.
    const std::string expr = adv(2) + std::string("\x0f\x03\x77\x08\x06", 5);
    // The standard .plt expression, threshold 11.
    const std::string plt =
        adv(2) + std::string("\x0f\x0b\x77\x08\x80\x00\x3f\x1a\x3b\x2a\x33\x24\x22", 13);
    // DW_CFA_register rbp in rbx: unknown in the caller; RA in a register: INVALID.
    const std::string rbp_reg = adv(2) + std::string("\x09\x06\x03", 3);
    const std::string ra_reg = adv(2) + std::string("\x09\x10\x03", 3);
    // rbp saved beyond int16: unknown rbp, the CFA rule stays usable.
    const std::string rbp_far = adv(2) + std::string("\x05\x06\x80\x80\x02", 5);
    auto t = build_crafted(
        {{big, 4}, {end, 4}, {expr, 4}, {plt, 4}, {rbp_reg, 4}, {ra_reg, 4}, {rbp_far, 4}});
    ASSERT_TRUE(t.ok()) << t.error().message();
    auto at = [&](uint64_t fde) { return *find(t->rows, kCodeAddr + fde * 4 + 2); };
    EXPECT_EQ(at(0).kind, HP_UNW_INVALID);
    EXPECT_EQ(at(1).kind, HP_UNW_END);
    EXPECT_EQ(at(2).kind, HP_UNW_INVALID);
    EXPECT_EQ(at(3).kind, HP_UNW_PLT);
    EXPECT_EQ(at(3).cfa_off, 11);
    EXPECT_EQ(at(4).kind, HP_UNW_CFA_RSP);
    EXPECT_EQ(at(4).rbp, HP_UNW_RBP_UNKNOWN);
    EXPECT_EQ(at(5).kind, HP_UNW_INVALID);
    EXPECT_EQ(at(6).kind, HP_UNW_CFA_RSP);
    EXPECT_EQ(at(6).rbp, HP_UNW_RBP_UNKNOWN);
    EXPECT_EQ(find(t->rows, kCodeAddr)->kind, HP_UNW_CFA_RSP); // each FDE's first 2 bytes
    EXPECT_EQ(t->stats.invalid_rows, 3u);
    EXPECT_EQ(t->stats.fdes, 7u);

    auto sig = build_crafted({{adv(1), 8}}, true);
    ASSERT_TRUE(sig.ok()) << sig.error().message();
    EXPECT_EQ(find(sig->rows, kCodeAddr + 3)->kind, HP_UNW_SIGNAL);
}

TEST(UnwindCfi, HugeFdeIsInvalidNotQuadratic) {
    // 100k rows in one FDE (3 bytes each): replaying it up to every row would interpret
    // ~15 G bytes. It is INVALID all through, and the FDE after it is fine.
    std::string ins;
    for (int i = 0; i < 100000; ++i)
        ins += adv(1) + std::string(i % 2 ? "\x0e\x08" : "\x0e\x10", 2);
    const auto t0 = std::chrono::steady_clock::now();
    auto t = build_crafted({{ins, 200000}, {adv(1), 16}});
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    ASSERT_TRUE(t.ok()) << t.error().message();
    EXPECT_EQ(t->stats.truncated_fdes, 1u);
    EXPECT_EQ(t->stats.invalid_rows, 1u);
    EXPECT_LT(ms, 5000);
    EXPECT_EQ(find(t->rows, kCodeAddr)->kind, HP_UNW_INVALID);
    EXPECT_EQ(find(t->rows, kCodeAddr + 199999)->kind, HP_UNW_INVALID);
    EXPECT_EQ(find(t->rows, kCodeAddr + 200000)->kind, HP_UNW_CFA_RSP);
    EXPECT_EQ(find(t->rows, kCodeAddr + 200016)->kind, HP_UNW_NONE);
    // A long FDE of ordinary size is walked: 5,000 rows.
    std::string five = ins.substr(0, 3 * 5000);
    auto ok = build_crafted({{five, 5000}});
    ASSERT_TRUE(ok.ok());
    EXPECT_EQ(ok->stats.truncated_fdes, 0u);
    EXPECT_EQ(ok->rows.size(), 5001u);
}

// ------------------------------------------------------------- corrupt input

TEST(UnwindCfi, TruncatedEhFrameEntryIsAnError) {
    std::string eh = eh_frame({{adv(4) + std::string("\x0e\x10", 2), 16}});
    // The FDE (after the 24-byte CIE) claims more bytes than the section holds.
    ASSERT_TRUE(build_from_bytes(elf_with_eh_frame(eh)).ok());
    const uint32_t huge = 0x00ffffff;
    std::memcpy(&eh[24], &huge, 4);
    auto t = build_from_bytes(elf_with_eh_frame(eh));
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.error().message().find("corrupt .eh_frame"), std::string::npos)
        << t.error().message();
}

TEST(UnwindCfi, FdesWithoutAReadableCieAreAnError) {
    std::string eh = eh_frame({{adv(4), 16}});
    const uint32_t bogus = 0x1000; // CIE pointer into nowhere
    std::memcpy(&eh[28], &bogus, 4);
    EXPECT_FALSE(build_from_bytes(elf_with_eh_frame(eh)).ok());
}

TEST(UnwindCfi, HugeRegisterNumbersAreAnError) {
    // DW_CFA_same_value 223000000: libdw would allocate a rule for every register below.
    const std::string ins = adv(1) + std::string("\x08\xea\xea\xea\x6a", 5);
    auto t = build_crafted({{ins, 8}});
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.error().message().find("register beyond"), std::string::npos)
        << t.error().message();
    // An overlong LEB128 (libdw reads 10 bytes of it as UINT64_MAX, then the rest as
    // instructions): the rest holds DW_CFA_undefined 200000.
    const std::string overlong = adv(1) + std::string("\x2e", 1) + std::string(10, '\x91') +
                                 std::string("\x07\xc0\x9a\x0c", 4);
    EXPECT_FALSE(build_crafted({{overlong, 8}}).ok());
    // The same in the CIE's rules (they run before every FDE's): its 7 bytes of
    // instructions at offset 17 become same_value r200000; offset r16 at cfa-8; nop.
    std::string eh = eh_frame({{adv(1), 8}});
    eh.replace(17, 7, std::string("\x08\xc0\x9a\x0c\x90\x01\x00", 7));
    auto c = build_from_bytes(elf_with_eh_frame(eh));
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.error().message().find("register beyond"), std::string::npos)
        << c.error().message();
    // The CFA's register gets no rule: def_cfa r200000 is only INVALID rows.
    auto cfa = build_crafted({{adv(1) + std::string("\x0c\xc0\x9a\x0c\x08", 5), 8}});
    ASSERT_TRUE(cfa.ok()) << cfa.error().message();
    EXPECT_EQ(find(cfa->rows, kCodeAddr + 1)->kind, HP_UNW_INVALID);
}

TEST(UnwindCfi, DeepRememberStateIsAnError) {
    // libdw copies the frame state on each DW_CFA_remember_state.
    auto deep = build_crafted({{adv(1) + std::string(1000, '\x0a'), 8}});
    ASSERT_FALSE(deep.ok());
    EXPECT_NE(deep.error().message().find("remember_state"), std::string::npos);
    // Remember/restore pairs, as epilogues use them, are fine however many.
    std::string pairs;
    for (int i = 0; i < 1000; ++i)
        pairs += std::string("\x0a\x0e\x10", 3) + adv(1) + std::string("\x0b", 1) + adv(1);
    auto t = build_crafted({{pairs, 2000}});
    ASSERT_TRUE(t.ok()) << t.error().message();
    EXPECT_EQ(find(t->rows, kCodeAddr + 1998)->cfa_off, 16); // remembered, changed
    EXPECT_EQ(find(t->rows, kCodeAddr + 1999)->cfa_off, 8);  // restored
}

// The byte offset of a named section in an ELF file's bytes.
std::pair<uint64_t, uint64_t> section_bytes(const std::string& bytes, const std::string& name) {
    MemElf m(bytes);
    size_t shstrndx = 0;
    if (m.elf == nullptr || elf_getshdrstrndx(m.elf, &shstrndx) != 0)
        return {0, 0};
    for (Elf_Scn* scn = elf_nextscn(m.elf, nullptr); scn; scn = elf_nextscn(m.elf, scn)) {
        GElf_Shdr sh;
        gelf_getshdr(scn, &sh);
        if (name == elf_strptr(m.elf, shstrndx, sh.sh_name))
            return {sh.sh_offset, sh.sh_size};
    }
    return {0, 0};
}

TEST(UnwindCfi, SearchTableNamingNoFdeIsAnError) {
    std::string bytes = read_file(kData + "nofp.elf");
    const auto [off, size] = section_bytes(bytes, ".eh_frame_hdr");
    ASSERT_GT(size, 20u);
    ASSERT_EQ(static_cast<uint8_t>(bytes[off + 3]), DW_EH_PE_datarel | DW_EH_PE_sdata4);
    // Table entry 0 (after the 12-byte header): {initial location, FDE}; move the FDE
    // pointer 4 bytes into the entry, where libdw would read instructions as a header.
    int32_t fde = 0;
    std::memcpy(&fde, &bytes[off + 12 + 4], 4);
    fde += 4;
    std::memcpy(&bytes[off + 12 + 4], &fde, 4);
    auto t = build_from_bytes(bytes);
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.error().message().find(".eh_frame_hdr"), std::string::npos) << t.error().message();
}

TEST(UnwindCfi, WithoutSectionHeadersThroughPtGnuEhFrame) {
    std::string bytes = read_file(kData + "nofp.elf");
    Elf64_Ehdr eh;
    std::memcpy(&eh, bytes.data(), sizeof eh);
    eh.e_shoff = 0;
    eh.e_shnum = 0;
    eh.e_shstrndx = 0;
    std::memcpy(bytes.data(), &eh, sizeof eh);
    auto t = build_from_bytes(bytes);
    ASSERT_TRUE(t.ok()) << t.error().message();
    auto full = build_cfi_table(kData + "nofp.elf");
    ASSERT_TRUE(full.ok());
    EXPECT_EQ(t->rows, full->rows);
}

TEST(UnwindCfi, TruncatedElfFilesNeverCrash) {
    const std::string bytes = read_file(kData + "nofp.elf");
    ASSERT_GT(bytes.size(), 4096u);
    for (size_t len : {size_t{0}, size_t{4}, size_t{63}, size_t{64}, size_t{200}, size_t{4096},
                       bytes.size() / 2, bytes.size() - 64, bytes.size() - 1}) {
        auto t = build_from_bytes(bytes.substr(0, len));
        if (len < 64) {
            EXPECT_FALSE(t.ok()) << len;
        }
        if (t.ok()) {
            EXPECT_TRUE(std::is_sorted(t->rows.begin(), t->rows.end(),
                                       [](const Row& a, const Row& b) { return a.pc < b.pc; }));
        }
    }
}

// Random byte changes in .eh_frame and .eh_frame_hdr of a real program: every build
// ends (an error or a table), quickly.
TEST(UnwindCfi, CorruptedEhFrameNeverCrashesOrHangs) {
    const std::string bytes = read_file(kData + "nofp.elf");
    uint64_t lo = 0, hi = 0;
    {
        MemElf m(bytes);
        ASSERT_NE(m.elf, nullptr);
        size_t shstrndx = 0;
        ASSERT_EQ(elf_getshdrstrndx(m.elf, &shstrndx), 0);
        for (Elf_Scn* scn = elf_nextscn(m.elf, nullptr); scn; scn = elf_nextscn(m.elf, scn)) {
            GElf_Shdr sh;
            gelf_getshdr(scn, &sh);
            const std::string name = elf_strptr(m.elf, shstrndx, sh.sh_name);
            if (name == ".eh_frame_hdr")
                lo = sh.sh_offset;
            if (name == ".eh_frame")
                hi = sh.sh_offset + sh.sh_size;
        }
    }
    ASSERT_LT(lo, hi);
    std::mt19937_64 rng(22);
    int ok = 0, errors = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 10000; ++i) {
        std::string b = bytes;
        const int changes = 1 + static_cast<int>(rng() % 8);
        for (int c = 0; c < changes; ++c) {
            const size_t at = lo + rng() % (hi - lo);
            b[at] = static_cast<char>(rng() % 3 == 0 ? 0xff : rng());
        }
        auto t = build_from_bytes(b);
        if (t.ok()) {
            ++ok;
            (void)pack(t->rows);
        } else {
            ++errors;
            EXPECT_FALSE(t.error().message().empty());
        }
    }
    const auto s =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0)
            .count();
    std::cout << ok << " tables, " << errors << " errors\n";
    EXPECT_GT(errors, 0);
    EXPECT_GT(ok, 0);
    EXPECT_LT(s, 30);
}

// The fuzz target's seeds (tests/data/fuzz/unwind_cfi, read as fuzz_unwind_cfi reads its
// input: a leading 0x7f is a whole ELF file, anything else .eh_frame bytes after one
// byte): ok_* build a table, bad_* give an error.
TEST(UnwindCfi, FuzzSeeds) {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(std::string(HOSTPROF_TEST_DATA) +
                                                             "/fuzz/unwind_cfi")) {
        const std::string name = e.path().filename().string();
        std::string bytes = read_file(e.path().string());
        ASSERT_FALSE(bytes.empty()) << name;
        if (bytes[0] != 0x7f)
            bytes = elf_with_eh_frame(bytes.substr(1));
        auto t = build_from_bytes(bytes);
        EXPECT_EQ(t.ok(), name.rfind("ok_", 0) == 0)
            << name << ": " << (t.ok() ? "accepted" : t.error().message());
        ++n;
    }
    EXPECT_GE(n, 2);
}

} // namespace
} // namespace hostprof::unwind
