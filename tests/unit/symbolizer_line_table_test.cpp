// LineTable (symbolizer/line_table.h) against libdw: for every compile unit of real objects
// (our own binaries, Debian's libc debug file, small C programs built here with DWARF 2 to
// 5, 32- and 64-bit DWARF), every row and the file list must equal dwarf_getsrclines' /
// dwarf_getsrcfiles', and find() must give dwarf_getsrc_die's answer (file from
// dwarf_linesrc, line from dwarf_lineno) at each row address, just after it, just before
// it and half-way to the next row. Corrupt and truncated units must give Errors.
#include <dwarf.h>
#include <elf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <gtest/gtest.h>
#include <libelf.h>
#include <malloc.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "symbolizer/line_table.h"
#include "run_command.h"

namespace hostprof::sym {
namespace {

namespace fs = std::filesystem;

using test::run_command;

size_t heap_in_use() {
    const struct mallinfo2 mi = ::mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

// An object opened with libelf + libdw; the section views are taken after dwarf_begin_elf,
// which decompresses SHF_COMPRESSED sections in place.
class DwarfObject {
  public:
    explicit DwarfObject(const std::string& path) {
        elf_version(EV_CURRENT);
        fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_ < 0)
            return;
        elf_ = elf_begin(fd_, ELF_C_READ_MMAP, nullptr);
        if (elf_ == nullptr)
            return;
        dbg_ = dwarf_begin_elf(elf_, DWARF_C_READ, nullptr);
        if (dbg_ == nullptr)
            return;
        const char* ident = elf_getident(elf_, nullptr);
        sections_.big_endian = ident != nullptr && ident[EI_DATA] == ELFDATA2MSB;
        size_t shstrndx = 0;
        if (elf_getshdrstrndx(elf_, &shstrndx) != 0)
            return;
        for (Elf_Scn* scn = elf_nextscn(elf_, nullptr); scn != nullptr;
             scn = elf_nextscn(elf_, scn)) {
            GElf_Shdr shdr;
            if (gelf_getshdr(scn, &shdr) == nullptr)
                continue;
            const char* name = elf_strptr(elf_, shstrndx, shdr.sh_name);
            if (name == nullptr)
                continue;
            std::span<const uint8_t>* target = nullptr;
            if (std::strcmp(name, ".debug_line") == 0)
                target = &sections_.debug_line;
            else if (std::strcmp(name, ".debug_line_str") == 0)
                target = &sections_.debug_line_str;
            else if (std::strcmp(name, ".debug_str") == 0)
                target = &sections_.debug_str;
            if (target == nullptr)
                continue;
            Elf_Data* d = elf_getdata(scn, nullptr);
            if (d != nullptr && d->d_buf != nullptr)
                *target = {static_cast<const uint8_t*>(d->d_buf), d->d_size};
        }
    }
    ~DwarfObject() {
        if (dbg_ != nullptr)
            dwarf_end(dbg_);
        if (elf_ != nullptr)
            elf_end(elf_);
        if (fd_ >= 0)
            ::close(fd_);
    }
    DwarfObject(const DwarfObject&) = delete;
    DwarfObject& operator=(const DwarfObject&) = delete;

    Dwarf* dwarf() const { return dbg_; }
    const LineSections& sections() const { return sections_; }

  private:
    int fd_ = -1;
    Elf* elf_ = nullptr;
    Dwarf* dbg_ = nullptr;
    LineSections sections_;
};

struct Stats {
    size_t units = 0;
    size_t rows = 0;
    size_t files = 0;
    size_t lookups = 0;
    size_t row_mismatches = 0;
    size_t file_mismatches = 0;
    size_t lookup_mismatches = 0;
    size_t libdw_errors = 0; // units libdw could not read (ours may)
    size_t our_errors = 0;   // units libdw read and we did not
    size_t our_bytes = 0;
    size_t libdw_bytes = 0;
    double our_seconds = 0;
    double libdw_seconds = 0;
    size_t max_unit_rows = 0;
    size_t max_unit_our_bytes = 0;
    size_t max_unit_libdw_bytes = 0;
    double max_unit_our_seconds = 0;
    double max_unit_libdw_seconds = 0;
    std::set<int> versions;
    size_t dwarf64_units = 0;
    std::vector<std::string> examples; // the first few mismatches
};

std::string show(const char* file, int line) {
    return std::string(file != nullptr ? file : "(null)") + ":" + std::to_string(line);
}

void note(Stats& st, std::string what) {
    if (st.examples.size() < 12)
        st.examples.push_back(std::move(what));
}

// Compares every unit of `path`.
Stats compare_object(const std::string& path) {
    Stats st;
    DwarfObject obj(path);
    Dwarf* dbg = obj.dwarf();
    if (dbg == nullptr) {
        note(st, "cannot open " + path);
        return st;
    }
    const LineSections& secs = obj.sections();
    Dwarf_CU* cu = nullptr;
    Dwarf_Half version = 0;
    uint8_t unit_type = 0;
    Dwarf_Die cudie;
    while (dwarf_get_units(dbg, cu, &cu, &version, &unit_type, &cudie, nullptr) == 0) {
        if (unit_type != DW_UT_compile && unit_type != DW_UT_partial)
            continue;
        Dwarf_Attribute attr;
        Dwarf_Word stmt_list = 0;
        if (dwarf_attr(&cudie, DW_AT_stmt_list, &attr) == nullptr ||
            dwarf_formudata(&attr, &stmt_list) != 0)
            continue;
        const char* comp_dir = dwarf_formstring(dwarf_attr(&cudie, DW_AT_comp_dir, &attr));
        Dwarf_Die tmp;
        uint8_t address_size = 0;
        uint8_t offset_size = 0;
        if (dwarf_diecu(&cudie, &tmp, &address_size, &offset_size) == nullptr)
            continue;
        ++st.units;
        if (stmt_list + 6 <= secs.debug_line.size()) {
            const uint8_t* p = secs.debug_line.data() + stmt_list;
            const bool dwarf64 = p[0] == 0xff && p[1] == 0xff && p[2] == 0xff && p[3] == 0xff;
            st.dwarf64_units += dwarf64;
            st.versions.insert(p[dwarf64 ? 12 : 4] | p[dwarf64 ? 13 : 5] << 8);
        }

        // libdw first (nothing cached yet for this unit): time and heap held.
        Dwarf_Lines* lines = nullptr;
        size_t nlines = 0;
        const size_t heap0 = heap_in_use();
        auto t0 = std::chrono::steady_clock::now();
        const int rc = dwarf_getsrclines(&cudie, &lines, &nlines);
        const double libdw_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const size_t libdw_bytes = heap_in_use() - heap0;

        t0 = std::chrono::steady_clock::now();
        auto table = LineTable::parse(
            secs, stmt_list, comp_dir != nullptr ? std::string_view(comp_dir) : std::string_view(),
            address_size);
        const double our_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

        if (rc != 0) {
            ++st.libdw_errors;
            note(st, "libdw cannot read the unit at " + std::to_string(stmt_list) + ": " +
                         dwarf_errmsg(-1));
            continue;
        }
        if (!table) {
            ++st.our_errors;
            note(st, "unit at " + std::to_string(stmt_list) + ": " + table.error().message());
            continue;
        }
        const LineTable& t = *table;
        st.rows += t.rows();
        st.our_bytes += t.bytes();
        st.libdw_bytes += libdw_bytes;
        st.our_seconds += our_s;
        st.libdw_seconds += libdw_s;
        if (t.rows() > st.max_unit_rows) {
            st.max_unit_rows = t.rows();
            st.max_unit_our_bytes = t.bytes();
            st.max_unit_libdw_bytes = libdw_bytes;
            st.max_unit_our_seconds = our_s;
            st.max_unit_libdw_seconds = libdw_s;
        }

        // The file list (dwarf_getsrcfiles + dwarf_filesrc: what inline frames use).
        Dwarf_Files* files = nullptr;
        size_t nfiles = 0;
        if (dwarf_getsrcfiles(&cudie, &files, &nfiles) == 0) {
            st.files += nfiles;
            if (nfiles != t.files()) {
                ++st.file_mismatches;
                note(st, "unit at " + std::to_string(stmt_list) + ": " + std::to_string(nfiles) +
                             " files, ours " + std::to_string(t.files()));
            }
            for (size_t i = 0; i < nfiles; ++i) {
                const char* name = dwarf_filesrc(files, i, nullptr, nullptr);
                if (t.file_name(i) != std::string_view(name != nullptr ? name : "")) {
                    ++st.file_mismatches;
                    note(st, "file " + std::to_string(i) + ": " + (name ? name : "(null)") +
                                 " ours " + std::string(t.file_name(i)));
                }
            }
        }

        // Every row.
        if (nlines != t.rows()) {
            ++st.row_mismatches;
            note(st, "unit at " + std::to_string(stmt_list) + ": " + std::to_string(nlines) +
                         " rows, ours " + std::to_string(t.rows()));
            continue;
        }
        for (size_t i = 0; i < nlines; ++i) {
            Dwarf_Line* l = dwarf_onesrcline(lines, i);
            Dwarf_Addr a = 0;
            int lineno = 0;
            bool end = false;
            dwarf_lineaddr(l, &a);
            dwarf_lineno(l, &lineno);
            dwarf_lineendsequence(l, &end);
            const char* src = dwarf_linesrc(l, nullptr, nullptr);
            const LineTable::RowView r = t.row(i);
            if (r.addr != a || r.line != static_cast<uint32_t>(lineno) || r.end_sequence != end ||
                t.file_name(r.file) != std::string_view(src != nullptr ? src : "")) {
                ++st.row_mismatches;
                note(st,
                     "row " + std::to_string(i) + ": libdw " + std::to_string(a) + " " +
                         show(src, lineno) + (end ? " end" : "") + ", ours " +
                         std::to_string(r.addr) + " " +
                         show(std::string(t.file_name(r.file)).c_str(), static_cast<int>(r.line)) +
                         (r.end_sequence ? " end" : ""));
            }
        }

        // Lookups.
        const auto check = [&](uint64_t addr) {
            ++st.lookups;
            Dwarf_Line* l = dwarf_getsrc_die(&cudie, addr);
            const std::optional<LineTable::Line> ours = t.find(addr);
            if (l == nullptr && !ours)
                return;
            bool same = l != nullptr && ours.has_value();
            int lineno = 0;
            const char* src = nullptr;
            if (l != nullptr) {
                dwarf_lineno(l, &lineno);
                src = dwarf_linesrc(l, nullptr, nullptr);
            }
            if (same)
                same = ours->line == static_cast<uint32_t>(lineno) &&
                       ours->file == std::string_view(src != nullptr ? src : "");
            if (!same) {
                ++st.lookup_mismatches;
                note(st,
                     "lookup " + std::to_string(addr) + ": libdw " +
                         (l ? show(src, lineno) : "none") + ", ours " +
                         (ours ? show(std::string(ours->file).c_str(), static_cast<int>(ours->line))
                               : "none"));
            }
        };
        for (size_t i = 0; i < nlines; ++i) {
            const uint64_t a = t.row(i).addr;
            if (i > 0 && t.row(i - 1).addr == a)
                continue;
            check(a);
            check(a + 1);
            if (a > 0)
                check(a - 1);
            size_t j = i + 1;
            while (j < nlines && t.row(j).addr == a)
                ++j;
            if (j < nlines && t.row(j).addr > a + 2)
                check(a + (t.row(j).addr - a) / 2);
        }
    }
    return st;
}

void report(const std::string& what, const Stats& st) {
    std::string versions;
    for (int v : st.versions)
        versions += " " + std::to_string(v);
    std::printf("[%s] units %zu (DWARF 64: %zu, line versions:%s), rows %zu, files %zu, "
                "lookups %zu\n"
                "  mismatches: rows %zu, files %zu, lookups %zu; unreadable: libdw %zu, ours %zu\n"
                "  held bytes: ours %zu (%.2f/row), libdw %zu (%.2f/row); parse: ours %.1f ms, "
                "libdw %.1f ms\n"
                "  largest unit: %zu rows, ours %zu B (%.2f/row) %.2f ms, libdw %zu B (%.2f/row) "
                "%.2f ms\n",
                what.c_str(), st.units, st.dwarf64_units, versions.c_str(), st.rows, st.files,
                st.lookups, st.row_mismatches, st.file_mismatches, st.lookup_mismatches,
                st.libdw_errors, st.our_errors, st.our_bytes,
                st.rows ? double(st.our_bytes) / double(st.rows) : 0.0, st.libdw_bytes,
                st.rows ? double(st.libdw_bytes) / double(st.rows) : 0.0, st.our_seconds * 1e3,
                st.libdw_seconds * 1e3, st.max_unit_rows, st.max_unit_our_bytes,
                st.max_unit_rows ? double(st.max_unit_our_bytes) / double(st.max_unit_rows) : 0.0,
                st.max_unit_our_seconds * 1e3, st.max_unit_libdw_bytes,
                st.max_unit_rows ? double(st.max_unit_libdw_bytes) / double(st.max_unit_rows) : 0.0,
                st.max_unit_libdw_seconds * 1e3);
    for (const std::string& e : st.examples)
        std::printf("  %s\n", e.c_str());
    std::fflush(stdout);
}

void expect_identical(const std::string& what, const Stats& st) {
    report(what, st);
    EXPECT_GT(st.units, 0u) << what;
    EXPECT_GT(st.rows, 0u) << what;
    EXPECT_EQ(st.row_mismatches, 0u) << what;
    EXPECT_EQ(st.file_mismatches, 0u) << what;
    EXPECT_EQ(st.lookup_mismatches, 0u) << what;
    EXPECT_EQ(st.libdw_errors, 0u) << what;
    EXPECT_EQ(st.our_errors, 0u) << what;
}

fs::path self_dir() {
    return fs::read_symlink("/proc/self/exe").parent_path();
}

TEST(SymbolizerLineTable, OwnBinariesMatchLibdw) {
    // The unit test binary itself (always built), and the agent when it was built too.
    const Stats self = compare_object(fs::read_symlink("/proc/self/exe").string());
    expect_identical("unit_tests", self);
    EXPECT_TRUE(self.versions.count(5)) << "expected DWARF 5 line tables";
    const fs::path agent = self_dir().parent_path() / "hostprof";
    if (fs::exists(agent)) {
        const Stats st = compare_object(agent.string());
        expect_identical("hostprof", st);
        if (st.rows > 0) {
            EXPECT_LE(double(st.max_unit_our_bytes) / double(st.max_unit_rows), 20.0);
        }
    } else {
        std::printf("%s not built: compared unit_tests only\n", agent.c_str());
    }
    if (self.max_unit_rows > 0) {
        EXPECT_LE(double(self.max_unit_our_bytes) / double(self.max_unit_rows), 20.0);
    }
}

// Debian's libc debug file (libc6-dbg), by the build id of the libc the tests run with.
TEST(SymbolizerLineTable, LibcDebugFileMatchesLibdw) {
    const std::string notes = run_command("readelf -n /lib/x86_64-linux-gnu/libc.so.6 2>/dev/null");
    const size_t at = notes.find("Build ID: ");
    if (at == std::string::npos)
        GTEST_SKIP() << "no x86-64 libc build id";
    std::string id = notes.substr(at + 10);
    id = id.substr(0, id.find_first_not_of("0123456789abcdef"));
    ASSERT_GT(id.size(), 2u);
    const std::string path =
        "/usr/lib/debug/.build-id/" + id.substr(0, 2) + "/" + id.substr(2) + ".debug";
    if (!fs::exists(path))
        GTEST_SKIP() << path << " not installed (libc6-dbg)";
    const Stats st = compare_object(path);
    expect_identical("libc debug", st);
    if (st.max_unit_rows > 0) {
        EXPECT_LE(double(st.max_unit_our_bytes) / double(st.max_unit_rows), 20.0);
    }
}

// Small programs built here: DWARF 2 and 3 (gas), 2, 4 and 5 as GCC writes them itself
// (-gno-as-loc-support), 64-bit DWARF; relative and absolute file names, an include
// directory, inlining and one sequence per function.
class SymbolizerLineTableBuilt : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("hostprof-lines-" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "inc");
        fs::create_directories(dir_ / "sub");
        std::ofstream(dir_ / "inc" / "helper.h") << R"(
static inline int helper(int x) {
    int s = 0;
    for (int i = 0; i < x; ++i)
        s += i * x;
    return s;
}
)";
        std::ofstream(dir_ / "sub" / "other.c") << R"(#include "helper.h"
int other(int x) {
    if (x > 3)
        return helper(x) + 1;
    return x * 2;
}
)";
        std::ofstream(dir_ / "main.c") << R"(#include <stdio.h>
#include "helper.h"
int other(int x);
__attribute__((noinline)) static int twice(int x) { return helper(x) * 2; }
int main(int argc, char** argv) {
    (void)argv;
    int r = twice(argc) + other(argc);
    printf("%d\n", r);
    return r == 12345;
}
)";
    }
    void TearDown() override { fs::remove_all(dir_); }

    // Builds with `flags` (main.c by a relative name, sub/other.c by its absolute one).
    std::string build(const std::string& name, const std::string& flags) {
        std::string out = (dir_ / name).string();
        const std::string cmd = "cd " + dir_.string() + " && cc -O2 -ffunction-sections -g " +
                                flags + " -Iinc main.c " + (dir_ / "sub" / "other.c").string() +
                                " -o " + out + " 2>&1 && echo ok";
        EXPECT_EQ(run_command(cmd), "ok\n") << cmd;
        return out;
    }

    fs::path dir_;
};

TEST_F(SymbolizerLineTableBuilt, Dwarf2To5MatchLibdw) {
    struct Variant {
        const char* name;
        const char* flags;
        int version;  // a line table version the program must contain
        bool dwarf64; // and a 64-bit DWARF unit
    };
    const Variant variants[] = {
        {"gas-dwarf2", "-gdwarf-2", 3, false},
        {"gas-dwarf4", "-gdwarf-4", 0, false},
        {"gcc-dwarf2", "-gdwarf-2 -gno-as-loc-support", 2, false},
        {"gcc-dwarf4", "-gdwarf-4 -gno-as-loc-support", 4, false},
        {"gcc-dwarf5", "-gdwarf-5 -gno-as-loc-support", 5, false},
        {"gcc-dwarf4-64", "-gdwarf-4 -gdwarf64 -gno-as-loc-support", 4, true},
        {"gcc-dwarf5-64", "-gdwarf-5 -gdwarf64 -gno-as-loc-support", 5, true},
    };
    for (const Variant& v : variants) {
        const Stats st = compare_object(build(v.name, v.flags));
        expect_identical(v.name, st);
        if (v.version != 0) {
            EXPECT_TRUE(st.versions.count(v.version)) << v.name;
        }
        if (v.dwarf64) {
            EXPECT_GT(st.dwarf64_units, 0u) << v.name;
        }
    }
}

// Returns the first unit of `path`'s .debug_line (a copy), its comp_dir and address size.
struct FirstUnit {
    std::vector<uint8_t> bytes;
    std::string comp_dir;
    uint8_t address_size = 8;
    size_t header_end = 0; // offset of the line-number program
};

FirstUnit first_unit(const std::string& path) {
    FirstUnit u;
    DwarfObject obj(path);
    if (obj.dwarf() == nullptr)
        return u;
    Dwarf_CU* cu = nullptr;
    Dwarf_Half version = 0;
    uint8_t unit_type = 0;
    Dwarf_Die cudie;
    while (dwarf_get_units(obj.dwarf(), cu, &cu, &version, &unit_type, &cudie, nullptr) == 0) {
        Dwarf_Attribute attr;
        Dwarf_Word off = 0;
        if (dwarf_attr(&cudie, DW_AT_stmt_list, &attr) == nullptr ||
            dwarf_formudata(&attr, &off) != 0)
            continue;
        const auto& line = obj.sections().debug_line;
        if (off + 12 > line.size())
            continue;
        const uint8_t* p = line.data() + off;
        uint32_t len = 0;
        std::memcpy(&len, p, 4);
        if (len >= 0xfffffff0 || off + 4 + len > line.size())
            continue;
        u.bytes.assign(p, p + 4 + len);
        uint32_t header_length = 0;
        const size_t hl_at = p[4] >= 5 ? 8 : 6;
        std::memcpy(&header_length, p + hl_at, 4);
        u.header_end = hl_at + 4 + header_length;
        const char* cd = dwarf_formstring(dwarf_attr(&cudie, DW_AT_comp_dir, &attr));
        u.comp_dir = cd != nullptr ? cd : "";
        Dwarf_Die tmp;
        uint8_t osz = 0;
        dwarf_diecu(&cudie, &tmp, &u.address_size, &osz);
        break;
    }
    return u;
}

// Parses `bytes` from an exactly sized heap copy (so that a sanitizer sees any overread).
Result<LineTable> parse_copy(const std::vector<uint8_t>& bytes, const FirstUnit& u,
                             const LineSections& strings) {
    // NOLINTNEXTLINE(performance-unnecessary-copy-initialization): the copy is the point
    const std::vector<uint8_t> copy(bytes); // capacity == size
    LineSections s = strings;
    s.debug_line = copy;
    return LineTable::parse(s, 0, u.comp_dir, u.address_size);
}

TEST_F(SymbolizerLineTableBuilt, TruncatedAndCorruptUnitsGiveErrors) {
    for (const char* flags : {"-gdwarf-5 -gno-as-loc-support", "-gdwarf-4 -gno-as-loc-support",
                              "-gdwarf-2 -gno-as-loc-support"}) {
        const std::string path = build("corrupt", flags);
        const FirstUnit u = first_unit(path);
        ASSERT_FALSE(u.bytes.empty()) << flags;
        ASSERT_LT(u.header_end, u.bytes.size()) << flags;
        DwarfObject obj(path);
        // The v5 names point into .debug_line_str: keep those (exactly sized copies too).
        std::vector<uint8_t> line_str(obj.sections().debug_line_str.begin(),
                                      obj.sections().debug_line_str.end());
        std::vector<uint8_t> str(obj.sections().debug_str.begin(), obj.sections().debug_str.end());
        LineSections strings;
        strings.debug_line_str = line_str;
        strings.debug_str = str;

        auto whole = parse_copy(u.bytes, u, strings);
        ASSERT_TRUE(whole) << flags << ": " << whole.error().message();
        EXPECT_GT(whole->rows(), 0u);

        // Cut anywhere: the unit length no longer fits.
        for (size_t cut = 0; cut < u.bytes.size(); ++cut) {
            std::vector<uint8_t> b(u.bytes.begin(), u.bytes.begin() + cut);
            EXPECT_FALSE(parse_copy(b, u, strings)) << flags << " cut at " << cut;
        }
        // Cut inside the header with the unit length rewritten to match: the header is
        // read up to the cut and must be found truncated.
        for (size_t cut = 4; cut < u.header_end; ++cut) {
            std::vector<uint8_t> b(u.bytes.begin(), u.bytes.begin() + cut);
            const uint32_t len = static_cast<uint32_t>(cut - 4);
            std::memcpy(b.data(), &len, 4);
            EXPECT_FALSE(parse_copy(b, u, strings)) << flags << " header cut at " << cut;
        }
        // Cut inside the program, likewise: an Error, or the rows before the cut.
        for (size_t cut = u.header_end; cut < u.bytes.size(); ++cut) {
            std::vector<uint8_t> b(u.bytes.begin(), u.bytes.begin() + cut);
            const uint32_t len = static_cast<uint32_t>(cut - 4);
            std::memcpy(b.data(), &len, 4);
            auto t = parse_copy(b, u, strings);
            if (t) {
                EXPECT_LE(t->rows(), whole->rows());
            }
        }
        // Every byte flipped in a few ways: whatever the result, no crash, no overread, and
        // bounded (rows never more than the unit's bytes).
        size_t errors = 0;
        for (size_t at = 0; at < u.bytes.size(); ++at)
            for (uint8_t mask : {0xff, 0x80, 0x01, 0x7f}) {
                std::vector<uint8_t> b = u.bytes;
                b[at] ^= mask;
                auto t = parse_copy(b, u, strings);
                if (!t)
                    ++errors;
                else
                    EXPECT_LE(t->rows(), b.size());
            }
        EXPECT_GT(errors, 0u);
        // Header bytes flipped to 0xff (huge lengths, counts, forms): Errors or bounded.
        for (size_t at = 4; at < u.header_end; ++at) {
            std::vector<uint8_t> b = u.bytes;
            b[at] = 0xff;
            auto t = parse_copy(b, u, strings);
            if (t) {
                EXPECT_LE(t->rows(), b.size());
            }
        }
        // A few random bytes changed anywhere, many times.
        std::mt19937 mutate(7);
        for (int i = 0; i < 5000; ++i) {
            std::vector<uint8_t> b = u.bytes;
            for (int k = 1 + static_cast<int>(mutate() % 8); k > 0; --k)
                b[mutate() % b.size()] = static_cast<uint8_t>(mutate());
            auto t = parse_copy(b, u, strings);
            if (t) {
                EXPECT_LE(t->rows(), b.size());
            }
        }
        // Random garbage after a valid header.
        std::mt19937 rng(42);
        for (int i = 0; i < 2000; ++i) {
            std::vector<uint8_t> b = u.bytes;
            for (size_t k = u.header_end; k < b.size(); ++k)
                b[k] = static_cast<uint8_t>(rng());
            auto t = parse_copy(b, u, strings);
            if (t) {
                EXPECT_LE(t->rows(), b.size());
            }
        }
    }
    // Offsets outside the section, empty sections.
    LineSections empty;
    EXPECT_FALSE(LineTable::parse(empty, 0, {}, 8));
    const uint8_t tiny[] = {0xff, 0xff, 0xff, 0xff, 0x10};
    LineSections s;
    s.debug_line = tiny;
    EXPECT_FALSE(LineTable::parse(s, 0, {}, 8));
    EXPECT_FALSE(LineTable::parse(s, 5, {}, 8));
    EXPECT_FALSE(LineTable::parse(s, ~uint64_t{0}, {}, 8));
}

// find() where a row is expected ("<none>", which no test expects, when there is none).
LineTable::Line found(const LineTable& t, uint64_t addr) {
    return t.find(addr).value_or(LineTable::Line{"<none>", ~0u, ~0u});
}

// A hand-written DWARF 4 unit with VLIW operations (maximum_operations_per_instruction 3),
// an unknown standard opcode (opcode_base 14, opcode 13 with 2 operands), an unknown
// extended opcode, DW_LNE_define_file and an unsorted sequence.
TEST(SymbolizerLineTable, HandWrittenUnit) {
    std::vector<uint8_t> u;
    const auto put = [&u](std::initializer_list<int> bytes) {
        for (int b : bytes)
            u.push_back(static_cast<uint8_t>(b));
    };
    put({0, 0, 0, 0}); // unit_length, patched below
    put({4, 0});       // version 4
    put({0, 0, 0, 0}); // header_length, patched below
    const size_t header_start = u.size();
    put({4, 3, 1, static_cast<uint8_t>(-5), 14, 14}); // min_inst 4, max_ops 3, line_base -5
    put({0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1, 2});     // standard_opcode_lengths (1..13)
    put({'i', 'n', 'c', 0, 0});                       // include_directories: "inc"
    put({'a', '.', 'c', 0, 0, 0, 0});                 // file 1: a.c in comp_dir
    put({'b', '.', 'h', 0, 1, 0, 0});                 // file 2: inc/b.h
    put({'/', 'x', '.', 'c', 0, 1, 0, 0});            // file 3: absolute
    put({0});
    const size_t program = u.size();
    // Sequence 1 at 0x2000: set_address, rows via copy / special opcodes / op_index.
    put({0, 9, 2, 0, 0x20, 0, 0, 0, 0, 0, 0}); // set_address 0x2000
    put({3, 9});                               // advance_line +9 -> line 10
    put({1});                                  // copy: 0x2000 line 10
    put({2, 4});                               // advance_pc 4 ops: addr += 4*((0+4)/3)=4, op 1
    put({1});                                  // copy: 0x2004 op 1, line 10
    put({13, 0x85, 0x01, 7});                  // unknown standard opcode, 2 ulebs
    put({0, 3, 0x80, 1, 2});                   // unknown extended opcode (len 3)
    put({4, 2});                               // set_file 2
    put({14 + 5 + 14 * 2});                    // special: line += 0, ops += 2 -> 0x2008 op 0
    put({0, 8, 3, 'd', '.', 'c', 0, 1, 0, 0}); // define_file 4: inc/d.c
    put({4, 4, 9, 0x10, 0});                   // set_file 4, fixed_advance_pc 0x10 -> 0x2018
    put({1});                                  // copy
    put({8});                                  // const_add_pc: (255-14)/14 = 17 ops
    put({0, 1, 1});                            // end_sequence at 0x2018 + 4*((0+17)/3)=0x202c
    // Sequence 2 at 0x1000 (before sequence 1 in address order), file 3, ending at 0x2000
    // where sequence 1 begins: libdw puts the end_sequence first.
    put({0, 9, 2, 0, 0x10, 0, 0, 0, 0, 0, 0});
    put({4, 3, 1});                // file 3, copy: 0x1000 line 1
    put({9, 0x00, 0x10, 0, 1, 1}); // fixed_advance_pc 0x1000 -> 0x2000; end_sequence
    const uint32_t header_length = static_cast<uint32_t>(program - header_start);
    std::memcpy(u.data() + 6, &header_length, 4);
    const uint32_t unit_length = static_cast<uint32_t>(u.size() - 4);
    std::memcpy(u.data(), &unit_length, 4);

    LineSections s;
    s.debug_line = u;
    auto t = LineTable::parse(s, 0, "/src", 8);
    ASSERT_TRUE(t) << t.error().message();
    EXPECT_EQ(t->files(), 5u);
    EXPECT_EQ(t->file_name(0), "???");
    EXPECT_EQ(t->file_name(1), "/src/a.c");
    EXPECT_EQ(t->file_name(2), "inc/b.h");
    EXPECT_EQ(t->file_name(3), "/x.c");
    EXPECT_EQ(t->file_name(4), "inc/d.c");
    EXPECT_EQ(t->file_name(5), "");
    ASSERT_EQ(t->rows(), 7u);
    const uint64_t want_addr[] = {0x1000, 0x2000, 0x2000, 0x2004, 0x2008, 0x2018, 0x202c};
    const bool want_end[] = {false, true, false, false, false, false, true};
    for (size_t i = 0; i < 7; ++i) {
        EXPECT_EQ(t->row(i).addr, want_addr[i]) << i;
        EXPECT_EQ(t->row(i).end_sequence, want_end[i]) << i;
    }
    EXPECT_FALSE(t->find(0xfff));
    EXPECT_EQ(found(*t, 0x1000).file, "/x.c");
    EXPECT_EQ(found(*t, 0x1fff).line, 1u);
    EXPECT_EQ(found(*t, 0x2000).file, "/src/a.c");
    EXPECT_EQ(found(*t, 0x2000).line, 10u);
    EXPECT_EQ(found(*t, 0x2009).file, "inc/b.h");
    EXPECT_EQ(found(*t, 0x2020).file, "inc/d.c");
    EXPECT_FALSE(t->find(0x202c));
    EXPECT_FALSE(t->find(0x3000));
    // Without DW_AT_comp_dir, directory 0 names stay relative.
    auto rel = LineTable::parse(s, 0, std::string_view(), 8);
    ASSERT_TRUE(rel);
    EXPECT_EQ(rel->file_name(1), "a.c");
    // The same unit as 64-bit DWARF.
    std::vector<uint8_t> u64 = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0};
    u64.resize(u64.size() + 8);
    const uint64_t hl64 = header_length;
    std::memcpy(u64.data() + 14, &hl64, 8);
    u64.insert(u64.end(), u.begin() + static_cast<long>(header_start), u.end());
    const uint64_t ul64 = u64.size() - 12;
    std::memcpy(u64.data() + 4, &ul64, 8);
    s.debug_line = u64;
    auto t64 = LineTable::parse(s, 0, "/src", 8);
    ASSERT_TRUE(t64) << t64.error().message();
    EXPECT_EQ(t64->rows(), 7u);
    EXPECT_EQ(found(*t64, 0x2009).file, "inc/b.h");
}

// A hand-written DWARF 5 unit: directories by DW_FORM_line_strp, file names by `path_form`
// (strp or strx1), directory indexes as data1, MD5s (data16) and a vendor block skipped.
std::vector<uint8_t> v5_unit(uint8_t path_form) {
    std::vector<uint8_t> u;
    const auto put = [&u](std::initializer_list<int> bytes) {
        for (int b : bytes)
            u.push_back(static_cast<uint8_t>(b));
    };
    put({0, 0, 0, 0, 5, 0, 8, 0}); // unit_length, version 5, address 8, segment selector 0
    put({0, 0, 0, 0});             // header_length
    const size_t header_start = u.size();
    put({1, 1, 1, static_cast<uint8_t>(-5), 14, 13, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1});
    put({1, DW_LNCT_path, DW_FORM_line_strp}); // directory format
    put({2, 0, 0, 0, 0, 4, 0, 0, 0});          // "/d0", "inc" in .debug_line_str
    put({4, DW_LNCT_path, path_form, DW_LNCT_directory_index, DW_FORM_data1, DW_LNCT_MD5,
         DW_FORM_data16, 0x81, 0x40, DW_FORM_block}); // file format (0x2001: vendor)
    put({3});                                         // 3 files
    const int names[3][4] = {{0, 0, 0, 0}, {4, 0, 0, 0}, {8, 0, 0, 0}};
    const int dirs[3] = {0, 1, 1};
    for (int f = 0; f < 3; ++f) {
        if (path_form == DW_FORM_strp)
            put({names[f][0], names[f][1], names[f][2], names[f][3]});
        else
            put({f}); // strx1
        put({dirs[f]});
        for (int k = 0; k < 16; ++k)
            put({0xaa});
        put({2, 0x55, 0x66});
    }
    const size_t program = u.size();
    put({0, 9, 2, 0, 1, 0, 0, 0, 0, 0, 0}); // set_address 0x100
    put({1, 4, 2, 2, 4, 1, 2, 4, 0, 1, 1}); // copy; file 2, +4, copy; +4, end_sequence
    const uint32_t header_length = static_cast<uint32_t>(program - header_start);
    std::memcpy(u.data() + 8, &header_length, 4);
    const uint32_t unit_length = static_cast<uint32_t>(u.size() - 4);
    std::memcpy(u.data(), &unit_length, 4);
    return u;
}

TEST(SymbolizerLineTable, HandWrittenDwarf5Unit) {
    static const char line_str[] = "/d0\0inc";
    static const char str[] = "a.c\0b.h\0/abs.h";
    LineSections s;
    s.debug_line_str = {reinterpret_cast<const uint8_t*>(line_str), sizeof line_str};
    s.debug_str = {reinterpret_cast<const uint8_t*>(str), sizeof str};
    const std::vector<uint8_t> strp = v5_unit(DW_FORM_strp);
    s.debug_line = strp;
    auto t = LineTable::parse(s, 0, "/ignored", 8);
    ASSERT_TRUE(t) << t.error().message();
    EXPECT_EQ(t->files(), 3u);
    EXPECT_EQ(t->file_name(0), "/d0/a.c");
    EXPECT_EQ(t->file_name(1), "inc/b.h");
    EXPECT_EQ(t->file_name(2), "/abs.h");
    ASSERT_EQ(t->rows(), 3u);
    EXPECT_EQ(found(*t, 0x100).file, "inc/b.h");
    EXPECT_EQ(found(*t, 0x105).file, "/abs.h");
    EXPECT_EQ(found(*t, 0x105).line, 1u);
    EXPECT_FALSE(t->find(0x108));
    // Another address size than the CU's: libdw refuses the unit too.
    EXPECT_FALSE(LineTable::parse(s, 0, "/ignored", 4));
    // strx names need .debug_str_offsets: unknown, not an Error.
    const std::vector<uint8_t> strx = v5_unit(DW_FORM_strx1);
    s.debug_line = strx;
    auto x = LineTable::parse(s, 0, "/ignored", 8);
    ASSERT_TRUE(x) << x.error().message();
    EXPECT_EQ(x->files(), 3u);
    EXPECT_EQ(x->file_name(1), "");
    EXPECT_EQ(x->rows(), 3u);
    EXPECT_EQ(found(*x, 0x104).file_index, 2u);
    // A .debug_str too short for the names: an Error.
    s.debug_line = strp;
    s.debug_str = s.debug_str.first(6);
    EXPECT_FALSE(LineTable::parse(s, 0, "/ignored", 8));
}

} // namespace
} // namespace hostprof::sym
