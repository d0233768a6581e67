#include "symbolizer/elf_image.h"

#include <dwarf.h>
#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <lzma.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

#include "symbolizer/demangle.h"
#include "symbolizer/dwarf_reader.h"
#include "symbolizer/parsers.h"

namespace hostprof::sym {
namespace {

constexpr size_t kMaxBuildIdBytes = 64;
constexpr size_t kMaxSymbols = 64u << 20;
constexpr size_t kMaxSections = 1u << 16;
constexpr size_t kMaxSegments = 1u << 12;

std::string to_hex(const unsigned char* p, size_t n) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string s;
    s.reserve(n * 2);
    for (size_t i = 0; i < n; ++i) {
        s.push_back(kDigits[p[i] >> 4]);
        s.push_back(kDigits[p[i] & 15]);
    }
    return s;
}

bool in_file(uint64_t off, uint64_t len, uint64_t file_size) {
    return off <= file_size && len <= file_size - off;
}

Result<std::string> notes_build_id(Elf_Data* data, const char* what) {
    size_t off = 0;
    GElf_Nhdr nhdr;
    size_t name_off = 0, desc_off = 0;
    while (off < data->d_size) {
        size_t next = gelf_getnote(data, off, &nhdr, &name_off, &desc_off);
        if (next == 0)
            return Error{0, std::string("malformed note in ") + what};
        if (nhdr.n_type == NT_GNU_BUILD_ID && nhdr.n_namesz == 4 &&
            std::memcmp(static_cast<const char*>(data->d_buf) + name_off, "GNU", 4) == 0) {
            if (nhdr.n_descsz == 0 || nhdr.n_descsz > kMaxBuildIdBytes)
                return Error{0, "build-id note of " + std::to_string(nhdr.n_descsz) +
                                    " bytes (at most 64)"};
            return to_hex(static_cast<const unsigned char*>(data->d_buf) + desc_off, nhdr.n_descsz);
        }
        off = next;
    }
    return std::string();
}

// Decompresses an .xz stream (a whole buffer) of at most max_out bytes of output; the
// decoder's own memory is capped too (a 64 MiB dictionary, xz -9, fits).
Result<std::string> xz_decompress(const uint8_t* in, size_t in_size, uint64_t max_out) {
    constexpr uint64_t kDecoderMemLimit = 80ull << 20;
    lzma_stream strm = LZMA_STREAM_INIT;
    if (lzma_stream_decoder(&strm, kDecoderMemLimit, 0) != LZMA_OK)
        return Error{0, "lzma decoder init failed"};
    std::string out;
    strm.next_in = in;
    strm.avail_in = in_size;
    lzma_ret ret = LZMA_OK;
    while (ret == LZMA_OK) {
        if (out.size() >= max_out) {
            lzma_end(&strm);
            return Error{0, ".gnu_debugdata decompresses past the " + std::to_string(max_out) +
                                "-byte cap"};
        }
        const size_t have = out.size();
        const size_t grow =
            static_cast<size_t>(std::min<uint64_t>(max_out - have, std::max<size_t>(have, 65536)));
        out.resize(have + grow);
        strm.next_out = reinterpret_cast<uint8_t*>(out.data()) + have;
        strm.avail_out = grow;
        ret = lzma_code(&strm, LZMA_FINISH);
        out.resize(have + grow - strm.avail_out);
    }
    lzma_end(&strm);
    if (ret != LZMA_STREAM_END)
        return Error{0, ".gnu_debugdata: xz error " + std::to_string(static_cast<int>(ret))};
    return out;
}

// Names from a DIE: the linkage (mangled) name when there is one, else DW_AT_name, following
// abstract origins and specifications.
const char* die_name(Dwarf_Die* die, bool& mangled) {
    Dwarf_Attribute attr;
    mangled = true;
    if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) != nullptr ||
        dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr) != nullptr) {
        if (const char* s = dwarf_formstring(&attr))
            return s;
    }
    mangled = false;
    if (dwarf_attr_integrate(die, DW_AT_name, &attr) != nullptr)
        return dwarf_formstring(&attr);
    return nullptr;
}

// Languages whose DW_AT_name is the linkage name (binutils' list for DWARF <= 5 in 2.40).
bool unmangled_language(int lang) {
    switch (lang) {
    case DW_LANG_C89:
    case DW_LANG_C:
    case DW_LANG_C99:
    case DW_LANG_C11:
    case DW_LANG_Cobol74:
    case DW_LANG_Cobol85:
    case DW_LANG_Fortran77:
    case DW_LANG_Pascal83:
    case DW_LANG_PLI:
    case DW_LANG_UPC:
    case DW_LANG_Mips_Assembler:
    case 0x8765: // DW_LANG_Upc (Unified Parallel C, vendor code)
    case 0x8e57: // DW_LANG_HP_Basic91
    case 0x8e59: // DW_LANG_HP_IMacro
    case 0x8e5a: // DW_LANG_HP_Assembler
        return true;
    default:
        return false;
    }
}

} // namespace

Result<std::string> read_build_id(Elf* elf) {
    size_t phnum = 0;
    if (elf_getphdrnum(elf, &phnum) == 0) {
        for (size_t i = 0; i < phnum && i < kMaxSegments; ++i) {
            GElf_Phdr ph;
            if (gelf_getphdr(elf, static_cast<int>(i), &ph) == nullptr || ph.p_type != PT_NOTE)
                continue;
            Elf_Data* data = elf_getdata_rawchunk(elf, static_cast<int64_t>(ph.p_offset),
                                                  ph.p_filesz, ELF_T_NHDR);
            if (data == nullptr)
                continue;
            auto id = notes_build_id(data, "PT_NOTE");
            if (!id || !id->empty())
                return id;
        }
    }
    Elf_Scn* scn = nullptr;
    while ((scn = elf_nextscn(elf, scn)) != nullptr) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) == nullptr || sh.sh_type != SHT_NOTE)
            continue;
        Elf_Data* data = elf_getdata(scn, nullptr);
        if (data == nullptr)
            return Error{0, std::string("unreadable note section: ") + elf_errmsg(-1)};
        auto id = notes_build_id(data, "SHT_NOTE");
        if (!id || !id->empty())
            return id;
    }
    return std::string();
}

ElfImage::~ElfImage() {
    if (dwarf_ != nullptr)
        dwarf_end(dwarf_);
}

Result<std::shared_ptr<ElfImage>> ElfImage::load_path(const std::string& path,
                                                      const ElfLoadOptions& options) {
    SafeOpener opener;
    OpenedFile f = opener.open_trusted(path, options.max_file_bytes);
    if (!f) {
        if (f.error != 0)
            return errno_error("open " + path, f.error);
        return Error{0, path + ": refused (" + open_refusal_name(f.refusal) + ")"};
    }
    ElfOrigin origin;
    origin.opener = &opener;
    origin.path_in_root = path;
    return load(std::move(f.fd), path, options, origin);
}

Result<std::shared_ptr<ElfImage>> ElfImage::load(UniqueFd fd, const std::string& path,
                                                 const ElfLoadOptions& options,
                                                 const ElfOrigin& origin) {
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return errno_error("stat " + path);
    if (!S_ISREG(st.st_mode))
        return Error{0, path + ": not a regular file"};
    const uint64_t file_size = static_cast<uint64_t>(st.st_size);
    if (file_size > options.max_file_bytes)
        return Error{0, path + ": larger than the " + std::to_string(options.max_file_bytes) +
                            "-byte limit"};
    auto opened = ElfFile::adopt(std::move(fd), path);
    if (!opened)
        return opened.error();
    ElfFile file = std::move(opened).value();
    Elf* elf = file.elf();

    GElf_Ehdr eh;
    if (gelf_getehdr(elf, &eh) == nullptr)
        return Error{0, path + ": bad ELF header: " + elf_errmsg(-1)};
    size_t shnum = 0, phnum = 0, shstrndx = 0;
    if (elf_getshdrnum(elf, &shnum) != 0)
        return Error{0, path + ": bad section count: " + elf_errmsg(-1)};
    if (elf_getphdrnum(elf, &phnum) != 0)
        return Error{0, path + ": bad program header count: " + elf_errmsg(-1)};
    // The raw header fields too: libelf may report 0 sections when it could not read them.
    if (eh.e_shoff != 0 && eh.e_shnum != 0 &&
        !in_file(eh.e_shoff, uint64_t{eh.e_shnum} * eh.e_shentsize, file_size))
        return Error{0, path + ": section headers past the end of the file"};
    if (eh.e_shoff != 0 && shnum == 0 && eh.e_shnum != 0)
        return Error{0, path + ": unreadable section headers"};
    if (shnum > kMaxSections || phnum > kMaxSegments)
        return Error{0, path + ": implausible header counts (" + std::to_string(shnum) +
                            " sections, " + std::to_string(phnum) + " segments)"};
    if (shnum > 0 &&
        (eh.e_shentsize == 0 || !in_file(eh.e_shoff, uint64_t{eh.e_shentsize} * shnum, file_size)))
        return Error{0, path + ": section headers past the end of the file"};
    if (phnum > 0 &&
        (eh.e_phentsize == 0 || !in_file(eh.e_phoff, uint64_t{eh.e_phentsize} * phnum, file_size)))
        return Error{0, path + ": program headers past the end of the file"};
    if (shnum > 0) {
        if (elf_getshdrstrndx(elf, &shstrndx) != 0 || shstrndx >= shnum)
            return Error{0, path + ": section name table index out of range"};
    }

    std::shared_ptr<ElfImage> img(new ElfImage());

    for (size_t i = 0; i < phnum; ++i) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf, static_cast<int>(i), &ph) == nullptr)
            return Error{0, path + ": unreadable program header: " + elf_errmsg(-1)};
        if (ph.p_type != PT_LOAD)
            continue;
        if (ph.p_filesz > ph.p_memsz || !in_file(ph.p_offset, ph.p_filesz, file_size))
            return Error{0, path + ": PT_LOAD segment outside the file"};
        img->segments_.push_back(
            Segment{ph.p_vaddr, ph.p_memsz, ph.p_offset, ph.p_filesz, (ph.p_flags & PF_X) != 0});
    }
    if ((eh.e_type == ET_EXEC || eh.e_type == ET_DYN) && img->segments_.empty())
        return Error{0, path + ": executable or shared object without PT_LOAD segments"};

    // Sections: check bounds, find the symbol tables and the debuglink.
    Elf_Scn* symtab = nullptr;
    Elf_Scn* dynsym = nullptr;
    Elf_Scn* debugdata = nullptr;
    bool own_debug_info = false; // .debug_info in this file
    for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) == nullptr)
            return Error{0, path + ": unreadable section header: " + elf_errmsg(-1)};
        if (sh.sh_type != SHT_NOBITS && sh.sh_type != SHT_NULL &&
            !in_file(sh.sh_offset, sh.sh_size, file_size))
            return Error{0, path + ": section " + std::to_string(elf_ndxscn(scn)) +
                                " past the end of the file"};
        const char* name = elf_strptr(elf, shstrndx, sh.sh_name);
        if (sh.sh_type == SHT_SYMTAB)
            symtab = scn;
        else if (sh.sh_type == SHT_DYNSYM)
            dynsym = scn;
        if (name == nullptr)
            continue;
        if (std::strcmp(name, ".debug_info") == 0 && sh.sh_type != SHT_NOBITS && sh.sh_size > 0)
            own_debug_info = true;
        if (std::strcmp(name, ".gnu_debugdata") == 0 && sh.sh_type == SHT_PROGBITS &&
            sh.sh_size > 0)
            debugdata = scn;
        if (std::strcmp(name, ".gnu_debuglink") == 0 && sh.sh_type != SHT_NOBITS) {
            Elf_Data* d = elf_getdata(scn, nullptr);
            if (d != nullptr && d->d_buf != nullptr && d->d_size > 0) {
                const char* s = static_cast<const char*>(d->d_buf);
                size_t len = strnlen(s, d->d_size);
                if (len < d->d_size && len > 0)
                    img->debuglink_.assign(s, len);
            }
        }
    }

    auto id = read_build_id(elf);
    if (!id)
        return Error{0, path + ": " + id.error().message()};
    img->build_id_ = std::move(id).value();

    if (symtab != nullptr) {
        if (Status s = img->read_symbol_table(elf, symtab); !s)
            return Error{0, path + ": .symtab: " + s.error().message()};
    }
    if (options.dwarf || symtab == nullptr) {
        std::optional<SafeOpener> own;
        SafeOpener* opener = origin.opener;
        if (opener == nullptr)
            opener = &own.emplace();
        img->open_dwarf(file, own_debug_info, path, options, *opener, origin);
    }
    if (img->symbols_.empty() && img->dwarf_file_ && img->dwarf_file_->elf() != elf) {
        // A separate debug file usually carries the full .symtab.
        Elf* de = img->dwarf_file_->elf();
        for (Elf_Scn* scn = elf_nextscn(de, nullptr); scn != nullptr; scn = elf_nextscn(de, scn)) {
            GElf_Shdr sh;
            if (gelf_getshdr(scn, &sh) != nullptr && sh.sh_type == SHT_SYMTAB) {
                (void)img->read_symbol_table(de, scn);
                break;
            }
        }
    }
    const bool full_symtab = !img->symbols_.empty(); // .symtab, here or in a debug file
    img->full_symtab_ = full_symtab;
    if (img->symbols_.empty() && dynsym != nullptr) {
        if (Status s = img->read_symbol_table(elf, dynsym); !s)
            return Error{0, path + ": .dynsym: " + s.error().message()};
    }
    {
        // MiniDebugInfo (Fedora, CentOS): an xz-compressed ELF whose .symtab holds the
        // functions .dynsym lacks (static ones). Merged with .dynsym.
        if (debugdata != nullptr && !full_symtab) {
            Elf_Data* d = elf_getdata(debugdata, nullptr);
            if (d == nullptr || d->d_buf == nullptr) {
                img->minidebuginfo_error_ = "unreadable .gnu_debugdata";
            } else {
                auto inner = xz_decompress(static_cast<const uint8_t*>(d->d_buf), d->d_size,
                                           options.max_debugdata_bytes);
                if (!inner) {
                    img->minidebuginfo_error_ = inner.error().message();
                } else {
                    std::string& buf = inner.value();
                    Elf* me = elf_memory(buf.data(), buf.size());
                    Elf_Scn* mst = nullptr;
                    std::string why;
                    if (me == nullptr || elf_kind(me) != ELF_K_ELF) {
                        why = "not an ELF";
                    } else {
                        for (Elf_Scn* scn = elf_nextscn(me, nullptr); scn != nullptr;
                             scn = elf_nextscn(me, scn)) {
                            GElf_Shdr sh;
                            if (gelf_getshdr(scn, &sh) == nullptr ||
                                (sh.sh_type != SHT_NOBITS &&
                                 !in_file(sh.sh_offset, sh.sh_size, buf.size()))) {
                                why = "section outside the decompressed data";
                                break;
                            }
                            if (sh.sh_type == SHT_SYMTAB && mst == nullptr)
                                mst = scn;
                        }
                        if (why.empty() && mst == nullptr)
                            why = "no .symtab";
                    }
                    if (why.empty()) {
                        const size_t before = img->symbols_.size();
                        if (Status st = img->read_symbol_table(me, mst); !st)
                            why = st.error().message();
                        else
                            img->minidebuginfo_symbols_ = img->symbols_.size() - before;
                    }
                    if (me != nullptr)
                        elf_end(me);
                    if (!why.empty())
                        img->minidebuginfo_error_ = ".gnu_debugdata: " + why;
                }
            }
        }
    }
    img->sort_symbols();
    if (!options.dwarf && img->dwarf_pending_) { // found for its .symtab only
        img->dwarf_pending_ = false;
        img->dwarf_file_.reset();
        img->debug_file_.clear();
    }
    img->account_bytes();
    return img;
}

// Appends the function symbols of one table; sort_symbols() orders and deduplicates.
Status ElfImage::read_symbol_table(Elf* e, Elf_Scn* scn) {
    GElf_Shdr sh;
    if (gelf_getshdr(scn, &sh) == nullptr)
        return Error{0, "symbol table header: " + std::string(elf_errmsg(-1))};
    size_t entsize = gelf_fsize(e, ELF_T_SYM, 1, EV_CURRENT);
    if (entsize == 0 || sh.sh_entsize != entsize)
        return Error{0, "symbol table entry size " + std::to_string(sh.sh_entsize)};
    size_t count = sh.sh_size / entsize;
    if (count > kMaxSymbols)
        return Error{0, "symbol table of " + std::to_string(count) + " entries"};
    Elf_Scn* strscn = elf_getscn(e, sh.sh_link);
    GElf_Shdr strsh;
    if (strscn == nullptr || gelf_getshdr(strscn, &strsh) == nullptr || strsh.sh_type != SHT_STRTAB)
        return Error{0, "symbol table without a string table"};
    Elf_Data* strdata = elf_getdata(strscn, nullptr);
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (data == nullptr || strdata == nullptr)
        return Error{0, "unreadable symbol table: " + std::string(elf_errmsg(-1))};
    const char* strs = static_cast<const char*>(strdata->d_buf);
    size_t strsize = strdata->d_size;
    if (strsize == 0 || strs == nullptr || strs[strsize - 1] != '\0')
        return Error{0, "string table not terminated"};
    count = std::min(count, data->d_size / entsize);
    std::vector<Symbol>& syms = symbols_;
    std::string& names = names_;
    if (count > kMaxSymbols - std::min(kMaxSymbols, syms.size()))
        return Error{0, "more than " + std::to_string(kMaxSymbols) + " symbols"};
    auto function = [&](size_t i, GElf_Sym& s) {
        if (gelf_getsym(data, static_cast<int>(i), &s) == nullptr)
            return false;
        int type = GELF_ST_TYPE(s.st_info);
        return (type == STT_FUNC || type == STT_GNU_IFUNC) && s.st_shndx != SHN_UNDEF &&
               s.st_value != 0 && s.st_name != 0 && s.st_name < strsize;
    };
    // Counted first, then stored: growing by doubling would hold up to twice the table, and
    // then a second, exact copy (sort_symbols), at the moment a profile loads it.
    size_t functions = 0, name_bytes = 0;
    for (size_t i = 0; i < count; ++i) {
        GElf_Sym s;
        if (function(i, s)) {
            ++functions;
            name_bytes += strnlen(strs + s.st_name, strsize - s.st_name) + 1;
        }
    }
    syms.reserve(syms.size() + functions);
    names.reserve(names.size() + std::min<size_t>(name_bytes, UINT32_MAX));
    for (size_t i = 0; i < count; ++i) {
        GElf_Sym s;
        if (!function(i, s))
            continue;
        const char* n = strs + s.st_name;
        if (names.size() > UINT32_MAX - 4096)
            break;
        syms.push_back(Symbol{s.st_value, s.st_size, static_cast<uint32_t>(names.size()),
                              static_cast<uint32_t>(syms.size())});
        names.append(n);
        names.push_back('\0');
    }
    return {};
}

void ElfImage::sort_symbols() {
    // Aliases (several names at one address) stay, in table order: which one names an
    // address depends on the address (find_symbol). Exact duplicates (.dynsym and
    // .gnu_debugdata both listing a function) go.
    // In place: `order` breaks ties as a stable sort would, without its buffer.
    std::sort(symbols_.begin(), symbols_.end(), [](const Symbol& a, const Symbol& b) {
        return a.address != b.address ? a.address < b.address : a.order < b.order;
    });
    symbols_.erase(std::unique(symbols_.begin(), symbols_.end(),
                               [this](const Symbol& a, const Symbol& b) {
                                   return a.address == b.address && a.size == b.size &&
                                          std::strcmp(names_.c_str() + a.name,
                                                      names_.c_str() + b.name) == 0;
                               }),
                   symbols_.end());
    // Stored at their counted size: a copy only when duplicates freed an eighth or more.
    if (symbols_.capacity() - symbols_.size() > symbols_.capacity() / 8)
        symbols_.shrink_to_fit();
}

void ElfImage::account_bytes() {
    bytes_ = sizeof(ElfImage) + symbols_.capacity() * sizeof(Symbol) + names_.capacity() +
             cu_ranges_.capacity() * sizeof(CuRange) + segments_.capacity() * sizeof(Segment);
    if (dwarf_ != nullptr) {
        // libdw's own allocations grow with use (abbreviations, line tables, CUs): charge
        // an estimate proportional to the DWARF size.
        bytes_ += 64 * 1024 + cu_ranges_.size() * 512;
    }
    for (const auto& [off, f] : cu_functions_)
        bytes_ += cu_functions_bytes(f);
    for (const auto& [off, name] : demangled_)
        bytes_ += name.capacity() + 48;
    bytes_ += lines_bytes_ + inflated_bytes_;
}

// Mapped debug data one DWARF lookup brings into this process's resident set: the function
// and inline-chain DIEs and their names, each faulting in the 64 KiB around it.
constexpr size_t kLookupTouchBytes = 64 * 1024;

size_t ElfImage::release_memory() {
    size_t freed = 0;
    if (!line_tables_.empty()) {
        freed = lines_bytes_;
        line_tables_.clear();
        lines_bytes_ = 0;
        // The units looked up also left their abbreviations in libdw: a fresh handle.
        if (dwarf_ != nullptr && dwarf_file_) {
            if (Dwarf* fresh = dwarf_begin_elf(dwarf_file_->elf(), DWARF_C_READ, nullptr)) {
                dwarf_end(dwarf_);
                dwarf_ = fresh;
            }
        }
        account_bytes();
    }
    drop_mapped_pages();
    walked_bytes_ = 0;
    return freed;
}

void ElfImage::drop_mapped_pages() const {
    if (!dwarf_file_)
        return;
    size_t size = 0;
    char* base = elf_rawfile(dwarf_file_->elf(), &size);
    const long page = ::sysconf(_SC_PAGESIZE);
    const auto start = reinterpret_cast<uint64_t>(base);
    if (base == nullptr || size == 0 || page <= 0 || start % static_cast<uint64_t>(page) != 0)
        return;
    struct stat st {};
    if (::fstat(dwarf_file_->fd(), &st) != 0)
        return;
    // Only a read-only private mapping of this very file (libelf's ELF_C_READ_MMAP), whose
    // pages the kernel can re-read: were the image a heap copy, dropping it would zero it.
    std::string maps;
    {
        UniqueFd fd(::open("/proc/self/maps", O_RDONLY | O_CLOEXEC));
        if (!fd)
            return;
        char buf[16384];
        ssize_t n;
        while ((n = ::read(fd.get(), buf, sizeof buf)) > 0)
            maps.append(buf, static_cast<size_t>(n));
    }
    const uint64_t len =
        (size + static_cast<uint64_t>(page) - 1) & ~(static_cast<uint64_t>(page) - 1);
    for (const MapEntry& m : parse_maps(maps).entries) {
        if (m.start != start)
            continue;
        if (!m.writable && !m.shared && m.inode == st.st_ino && m.dev_major == major(st.st_dev) &&
            m.dev_minor == minor(st.st_dev) && m.offset == 0 && m.end - m.start >= len)
            ::madvise(base, len, MADV_DONTNEED);
        return;
    }
}

bool ElfImage::has_debug_info(Elf* e) {
    size_t shstrndx = 0;
    if (elf_getshdrstrndx(e, &shstrndx) != 0)
        return false;
    for (Elf_Scn* scn = elf_nextscn(e, nullptr); scn != nullptr; scn = elf_nextscn(e, scn)) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) == nullptr)
            continue;
        const char* name = elf_strptr(e, shstrndx, sh.sh_name);
        if (name != nullptr && std::strcmp(name, ".debug_info") == 0)
            return sh.sh_type != SHT_NOBITS && sh.sh_size > 0;
    }
    return false;
}

// Found at load, opened on first use: dwarf_begin_elf inflates every compressed debug
// section (Debian's libc debug file: 4 MB on disk, ~20 MB inflated, ~50 ms of zlib), and
// a process capture loads every object the process maps, most of whose frames never need
// file:line. Symbol lookups use .symtab only.
bool ElfImage::try_dwarf(ElfFile f, const std::string& name) {
    dwarf_file_.emplace(std::move(f));
    debug_file_ = name;
    dwarf_pending_ = true;
    return true;
}

bool ElfImage::open_pending_dwarf() {
    dwarf_pending_ = false;
    if (!dwarf_file_)
        return false;
    // Compressed debug sections (SHF_COMPRESSED, as Debian's debug files have them) are
    // inflated onto the heap by dwarf_begin_elf and stay there while the handle lives:
    // charged to this object, so the cache bound sees them.
    size_t inflated = 0;
    Elf* e = dwarf_file_->elf();
    for (Elf_Scn* scn = elf_nextscn(e, nullptr); scn != nullptr; scn = elf_nextscn(e, scn)) {
        GElf_Shdr sh;
        GElf_Chdr ch;
        if (gelf_getshdr(scn, &sh) != nullptr && (sh.sh_flags & SHF_COMPRESSED) != 0 &&
            gelf_getchdr(scn, &ch) != nullptr)
            inflated += static_cast<size_t>(std::min<uint64_t>(ch.ch_size, 1ull << 32));
    }
    Dwarf* dw = dwarf_begin_elf(e, DWARF_C_READ, nullptr);
    if (dw == nullptr) {
        debug_file_.clear();
        return false;
    }
    inflated_bytes_ = inflated;
    dwarf_ = dw;
    index_dwarf();
    drop_mapped_pages(); // the index walk touched every unit header
    account_bytes();
    return true;
}

bool ElfImage::attach_debug_file(ElfFile f, const std::string& name, bool want_dwarf) {
    if (!build_id_.empty()) {
        auto other = read_build_id(f.elf());
        if (!other || *other != build_id_)
            return false;
    }
    bool changed = false;
    if (!full_symtab_) {
        Elf* e = f.elf();
        for (Elf_Scn* scn = elf_nextscn(e, nullptr); scn != nullptr; scn = elf_nextscn(e, scn)) {
            GElf_Shdr sh;
            if (gelf_getshdr(scn, &sh) == nullptr || sh.sh_type != SHT_SYMTAB)
                continue;
            std::vector<Symbol> old_symbols = std::move(symbols_);
            std::string old_names = std::move(names_);
            symbols_.clear();
            names_.clear();
            if (read_symbol_table(e, scn) && !symbols_.empty()) {
                sort_symbols();
                demangled_.clear(); // keyed by offsets into the old names
                full_symtab_ = true;
                changed = true;
            } else {
                symbols_ = std::move(old_symbols);
                names_ = std::move(old_names);
            }
            break;
        }
    }
    if (want_dwarf && dwarf_ == nullptr && !dwarf_pending_ && has_debug_info(f.elf()) &&
        try_dwarf(std::move(f), name))
        changed = true;
    if (changed)
        account_bytes();
    return changed;
}

void ElfImage::open_dwarf(ElfFile& self, bool own_debug_info, const std::string& path,
                          const ElfLoadOptions& options, SafeOpener& opener,
                          const ElfOrigin& origin) {
    if (own_debug_info) {
        auto again = ElfFile::adopt(UniqueFd(::fcntl(self.fd(), F_DUPFD_CLOEXEC, 0)), path);
        if (again && try_dwarf(std::move(again).value(), path))
            return;
    }
    // Candidates: (in the process's root?, path). The host's debug directories hold the
    // packages installed next to the agent; a container may carry its own.
    UniqueFd host_root = SafeOpener::open_root("/");
    struct stat own {};
    (void)::fstat(self.fd(), &own);
    const bool in_process = origin.root_fd >= 0;
    std::vector<std::pair<bool, std::string>> candidates;
    if (build_id_.size() > 2) {
        const std::string rel =
            "/.build-id/" + build_id_.substr(0, 2) + "/" + build_id_.substr(2) + ".debug";
        for (const auto& dir : options.debug_dirs) {
            if (in_process)
                candidates.push_back({true, dir + rel});
            candidates.push_back({false, dir + rel});
        }
    }
    const std::string& own_path = origin.path_in_root;
    if (!debuglink_.empty() && debuglink_.find('/') == std::string::npos && debuglink_ != "." &&
        debuglink_ != ".." && !own_path.empty()) {
        const std::string dir = own_path.substr(0, own_path.rfind('/') + 1);
        candidates.push_back({in_process, dir + debuglink_});
        candidates.push_back({in_process, dir + ".debug/" + debuglink_});
        for (const auto& d : options.debug_dirs) {
            const std::string under = d + (dir.rfind('/', 0) == 0 ? "" : "/") + dir + debuglink_;
            if (in_process)
                candidates.push_back({true, under});
            candidates.push_back({false, under});
        }
    }
    for (const auto& [process_root, c] : candidates) {
        if (!process_root && c == path)
            continue;
        OpenedFile opened = opener.open_in_root(process_root ? origin.root_fd : host_root.get(), c,
                                                options.max_file_bytes);
        if (!opened)
            continue;
        if (opened.st.st_dev == own.st_dev && opened.st.st_ino == own.st_ino)
            continue; // the object itself (a debuglink naming its own file)
        auto f = ElfFile::adopt(std::move(opened.fd), c);
        if (!f || !has_debug_info(f->elf()))
            continue;
        if (!build_id_.empty()) {
            auto other = read_build_id(f->elf());
            if (!other || *other != build_id_)
                continue;
        }
        if (try_dwarf(std::move(f).value(), c))
            return;
    }
}

namespace {

// The bytes of a section of `elf` by name (inflated if libdw has not already done it).
std::span<const uint8_t> section_bytes(Elf* elf, const char* want) {
    size_t shstrndx = 0;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return {};
    for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) == nullptr || sh.sh_type == SHT_NOBITS)
            continue;
        const char* name = elf_strptr(elf, shstrndx, sh.sh_name);
        if (name == nullptr || std::strcmp(name, want) != 0)
            continue;
        if ((sh.sh_flags & SHF_COMPRESSED) != 0 && elf_compress(scn, 0, 0) < 0)
            return {};
        Elf_Data* d = elf_getdata(scn, nullptr);
        if (d == nullptr || d->d_buf == nullptr)
            return {};
        return {static_cast<const uint8_t*>(d->d_buf), d->d_size};
    }
    return {};
}

// The address ranges of .debug_aranges (DWARF 2-5) with the offset of the unit header each
// set names: (low, high, header offset). Stops at the first malformed set.
struct ArangeSpan {
    uint64_t low, high, unit_header;
};

std::vector<ArangeSpan> read_aranges(std::span<const uint8_t> d, bool big_endian) {
    std::vector<ArangeSpan> out;
    Reader r(d.data(), d.data() + d.size(), big_endian);
    while (!r.at_end()) {
        const uint8_t* set = r.pos();
        uint64_t length = 0, version = 0, header = 0;
        size_t offset_size = 4;
        uint8_t address_size = 0, segment_size = 0;
        if (!r.uint(4, length))
            break;
        if (length == 0xffffffff) {
            offset_size = 8;
            if (!r.uint(8, length))
                break;
        }
        if (length > r.left())
            break;
        const uint8_t* end = r.pos() + length;
        Reader s(r.pos(), end, big_endian);
        r.seek(end);
        if (!s.uint(2, version) || !s.uint(offset_size, header) || !s.u8(address_size) ||
            !s.u8(segment_size) || version != 2 || (address_size != 4 && address_size != 8) ||
            segment_size != 0)
            break;
        // Tuples start at a multiple of their size from the start of the set.
        const size_t tuple = 2u * address_size;
        const auto into = static_cast<size_t>(s.pos() - set);
        if (!s.skip((tuple - into % tuple) % tuple))
            break;
        uint64_t low = 0, size = 0;
        while (s.uint(address_size, low) && s.uint(address_size, size) && (low != 0 || size != 0))
            if (size > 0 && low + size > low)
                out.push_back(ArangeSpan{low, low + size, header});
    }
    return out;
}

} // namespace

void ElfImage::index_dwarf() {
    // Units by header offset, read from their headers alone (no DIE parsed).
    struct Unit {
        uint64_t header, die;
        bool listed;
    };
    std::vector<Unit> units;
    Dwarf_Off off = 0, next = 0;
    size_t header_size = 0;
    while (dwarf_next_unit(dwarf_, off, &next, &header_size, nullptr, nullptr, nullptr, nullptr,
                           nullptr, nullptr) == 0) {
        units.push_back(Unit{off, off + header_size, false});
        off = next;
    }
    // libdw interns units in order up to the one a lookup asks for, reading each header
    // through the mapping (fault-around maps 64 KiB around each: megabytes of a large
    // .debug_info such as ours): interned here, those pages go back right after
    // (open_pending_dwarf drops them) instead of staying until the profile is built.
    if (!units.empty()) {
        Dwarf_Die last;
        (void)dwarf_offdie(dwarf_, units.back().die, &last);
    }
    // .debug_aranges gives each unit's addresses without parsing the unit: walking the units
    // instead makes libdw parse every unit's first DIE and its abbreviation table (~4 MB of
    // allocations for Debian's libc, where interning alone is ~2 MB, on every profile that
    // reaches it). Read here, only the units lookups reach are ever parsed.
    if (Elf* e = dwarf_getelf(dwarf_); e != nullptr) {
        const bool big_endian =
            elf_getident(e, nullptr) != nullptr && elf_getident(e, nullptr)[EI_DATA] == ELFDATA2MSB;
        for (const ArangeSpan& a : read_aranges(section_bytes(e, ".debug_aranges"), big_endian)) {
            auto u = std::lower_bound(units.begin(), units.end(), a.unit_header,
                                      [](const Unit& x, uint64_t h) { return x.header < h; });
            if (u == units.end() || u->header != a.unit_header)
                continue;
            u->listed = true;
            cu_ranges_.push_back(CuRange{a.low, a.high, u->die});
        }
    }
    // Units aranges does not list (compilers that do not emit it, assembler units, units
    // without code): their first DIE says where their code is.
    for (const Unit& u : units) {
        if (u.listed)
            continue;
        Dwarf_Die cudie;
        uint8_t unit_type = 0;
        if (dwarf_offdie(dwarf_, u.die, &cudie) == nullptr ||
            dwarf_cu_info(cudie.cu, nullptr, &unit_type, nullptr, nullptr, nullptr, nullptr,
                          nullptr) != 0 ||
            (unit_type != DW_UT_compile && unit_type != DW_UT_partial &&
             unit_type != DW_UT_skeleton))
            continue;
        Dwarf_Addr base = 0, low = 0, high = 0;
        ptrdiff_t r = 0;
        while ((r = dwarf_ranges(&cudie, r, &base, &low, &high)) > 0)
            if (high > low)
                cu_ranges_.push_back(CuRange{low, high, u.die});
    }
    std::sort(cu_ranges_.begin(), cu_ranges_.end(),
              [](const CuRange& a, const CuRange& b) { return a.low < b.low; });
    cu_ranges_.shrink_to_fit();
}

std::optional<uint64_t> ElfImage::file_offset_to_vaddr(uint64_t offset) const {
    const Segment* best = nullptr;
    for (const auto& s : segments_)
        if (offset >= s.offset && offset - s.offset < s.filesz)
            if (best == nullptr || (s.executable && !best->executable))
                best = &s;
    if (best == nullptr)
        return std::nullopt;
    return offset - best->offset + best->vaddr;
}

size_t ElfImage::cu_functions_bytes(const CuFunctions& f) {
    return f.funcs.capacity() * sizeof(FuncDie) +
           f.ranges.capacity() * (sizeof(FuncRange) + sizeof(uint64_t)) + 96;
}

const ElfImage::CuFunctions& ElfImage::cu_functions(Dwarf_Die* cudie, uint64_t cu_offset) const {
    auto found = cu_functions_.find(cu_offset);
    if (found != cu_functions_.end())
        return found->second;
    CuFunctions& out = cu_functions_[cu_offset];
    // Function DIEs with children seen on the walk, whether or not they have code: the
    // nesting of those that do. A candidate enters out.funcs when it has code or when a
    // function with code is nested in it.
    struct Candidate {
        uint64_t die_offset;
        int32_t parent; // candidate index
        bool inlined;
        int32_t func = -1; // index in out.funcs once there
    };
    std::vector<Candidate> candidates;
    {
        // The walk below reads the whole unit through the mapping.
        Dwarf_Off unit_start = dwarf_dieoffset(cudie) - dwarf_cuoffset(cudie), next = 0;
        size_t header = 0;
        if (dwarf_nextcu(dwarf_, unit_start, &next, &header, nullptr, nullptr, nullptr) == 0 &&
            next > unit_start)
            walked_bytes_ += static_cast<size_t>(next - unit_start);
    }
    auto materialize = [&](int32_t c) {
        // The chain of enclosing candidates not yet in out.funcs, outermost first.
        std::vector<int32_t> chain;
        for (int32_t i = c; i >= 0 && candidates[static_cast<size_t>(i)].func < 0;
             i = candidates[static_cast<size_t>(i)].parent)
            chain.push_back(i);
        for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
            Candidate& k = candidates[static_cast<size_t>(*it)];
            const int32_t parent =
                k.parent >= 0 ? candidates[static_cast<size_t>(k.parent)].func : -1;
            k.func = static_cast<int32_t>(out.funcs.size());
            out.funcs.push_back(FuncDie{k.die_offset, parent, k.inlined});
        }
        return c >= 0 ? candidates[static_cast<size_t>(c)].func : -1;
    };
    // Iterative walk (no recursion on untrusted depth): (die, enclosing candidate).
    std::vector<std::pair<Dwarf_Die, int32_t>> stack;
    Dwarf_Die child;
    if (dwarf_child(cudie, &child) == 0)
        stack.push_back({child, -1});
    constexpr size_t kMaxRanges = 1u << 24;
    while (!stack.empty() && out.ranges.size() < kMaxRanges && candidates.size() < kMaxRanges) {
        auto [die, enclosing] = stack.back();
        stack.pop_back();
        Dwarf_Die sibling;
        if (dwarf_siblingof(&die, &sibling) == 0)
            stack.push_back({sibling, enclosing});
        const int tag = dwarf_tag(&die);
        int32_t inner = enclosing;
        bool descend = dwarf_haschildren(&die) > 0;
        switch (tag) {
        case DW_TAG_subprogram:
        case DW_TAG_inlined_subroutine:
        case DW_TAG_entry_point: {
            const bool inlined = tag == DW_TAG_inlined_subroutine;
            const uint64_t off = dwarf_dieoffset(&die);
            int32_t func = -1;
            Dwarf_Addr base = 0, low = 0, high = 0;
            ptrdiff_t roff = 0;
            while ((roff = dwarf_ranges(&die, roff, &base, &low, &high)) > 0) {
                if (high <= low)
                    continue;
                if (func < 0) {
                    if (descend) {
                        candidates.push_back(Candidate{off, enclosing, inlined});
                        inner = static_cast<int32_t>(candidates.size() - 1);
                        func = materialize(inner);
                    } else {
                        func = static_cast<int32_t>(out.funcs.size());
                        out.funcs.push_back(FuncDie{off, materialize(enclosing), inlined});
                    }
                }
                // Adjacent pieces of one function count as one range, as in binutils.
                if (!out.ranges.empty() && out.ranges.back().func == static_cast<uint32_t>(func) &&
                    out.ranges.back().high == low)
                    out.ranges.back().high = high;
                else
                    out.ranges.push_back(FuncRange{low, high, static_cast<uint32_t>(func)});
            }
            if (func < 0 && descend) {
                candidates.push_back(Candidate{off, enclosing, inlined});
                inner = static_cast<int32_t>(candidates.size() - 1);
            }
            break;
        }
        // Children that never hold a function.
        case DW_TAG_formal_parameter:
        case DW_TAG_variable:
        case DW_TAG_call_site:
        case DW_TAG_GNU_call_site:
        case DW_TAG_enumeration_type:
        case DW_TAG_subroutine_type:
        case DW_TAG_array_type:
        case DW_TAG_template_type_parameter:
        case DW_TAG_template_value_parameter:
        case DW_TAG_GNU_template_parameter_pack:
        case DW_TAG_GNU_formal_parameter_pack:
            descend = false;
            break;
        default:
            break;
        }
        if (descend && stack.size() < 4096 && dwarf_child(&die, &child) == 0)
            stack.push_back({child, inner});
    }
    std::sort(out.ranges.begin(), out.ranges.end(),
              [](const FuncRange& a, const FuncRange& b) { return a.low < b.low; });
    out.max_high.resize(out.ranges.size());
    uint64_t m = 0;
    for (size_t i = 0; i < out.ranges.size(); ++i)
        out.max_high[i] = m = std::max(m, out.ranges[i].high);
    out.funcs.shrink_to_fit();
    out.ranges.shrink_to_fit();
    bytes_ += cu_functions_bytes(out);
    return out;
}

const ElfImage::Symbol* ElfImage::find_symbol(uint64_t vaddr) const {
    // As binutils (addr2line, objdump) chooses: the symbols starting closest below the
    // address, whether or not they reach it; among aliases starting there, the one whose
    // extent holds the address, the smallest such, the first in table order on a tie; when
    // none holds it, the largest. A size of 0 counts as 1.
    auto end = std::upper_bound(symbols_.begin(), symbols_.end(), vaddr,
                                [](uint64_t a, const Symbol& s) { return a < s.address; });
    if (end == symbols_.begin())
        return nullptr;
    auto first = std::prev(end);
    const uint64_t start = first->address;
    while (first != symbols_.begin() && std::prev(first)->address == start)
        --first;
    const uint64_t offset = vaddr - start;
    auto extent = [](const Symbol& s) { return s.size == 0 ? uint64_t{1} : s.size; };
    const Symbol* best = &*first;
    for (auto it = std::next(first); it != end; ++it) {
        const bool best_holds = offset < extent(*best);
        const bool holds = offset < extent(*it);
        if (!best_holds ? extent(*it) > extent(*best) : holds && extent(*it) < extent(*best))
            best = &*it;
    }
    // Past the end of the last symbol of the object: unknown (binutils would stretch the
    // last symbol of the section to any address after it).
    if (end == symbols_.end() && best->size != 0 && offset >= best->size)
        return nullptr;
    return best;
}

const ElfImage::CuRange* ElfImage::find_unit(uint64_t vaddr,
                                             std::vector<const CuRange*>* others) const {
    auto it = std::upper_bound(cu_ranges_.begin(), cu_ranges_.end(), vaddr,
                               [](uint64_t a, const CuRange& r) { return a < r.low; });
    // Several units may claim the address: the linker points the debug information of a
    // discarded COMDAT copy (a template instantiated in many units) at the copy it kept,
    // and their line tables differ. The first unit in .debug_info wins, as in binutils,
    // elfutils and LLVM, which read units in order.
    const CuRange* range = nullptr;
    for (int steps = 0; it != cu_ranges_.begin() && steps < 64; ++steps) {
        const CuRange& r = *--it;
        if (vaddr < r.low || vaddr >= r.high)
            continue;
        const CuRange* other = &r;
        if (range == nullptr || r.die_offset < range->die_offset)
            std::swap(range, other);
        if (other != nullptr && others != nullptr && others->size() < 8)
            others->push_back(other);
    }
    return range;
}

uint64_t ElfImage::unit_of(uint64_t vaddr) const {
    const CuRange* r = find_unit(vaddr, nullptr);
    return r != nullptr ? r->die_offset : UINT64_MAX;
}

const LineTable* ElfImage::line_table(Dwarf_Die* cu, uint64_t die_offset) const {
    auto [it, added] = line_tables_.try_emplace(die_offset);
    std::optional<LineTable>& slot = it->second;
    if (!added)
        return slot.has_value() ? &slot.value() : nullptr;
    Dwarf_Attribute attr;
    Dwarf_Word stmt_list = 0;
    if (!dwarf_file_ || dwarf_attr(cu, DW_AT_stmt_list, &attr) == nullptr ||
        dwarf_formudata(&attr, &stmt_list) != 0)
        return nullptr;
    const char* comp_dir = nullptr;
    if (dwarf_attr(cu, DW_AT_comp_dir, &attr) != nullptr)
        comp_dir = dwarf_formstring(&attr);
    uint8_t address_size = 0;
    Dwarf_Die unit;
    if (dwarf_diecu(cu, &unit, &address_size, nullptr) == nullptr)
        address_size = 0;
    Elf* e = dwarf_file_->elf();
    LineSections s;
    s.debug_line = section_bytes(e, ".debug_line");
    s.debug_line_str = section_bytes(e, ".debug_line_str");
    s.debug_str = section_bytes(e, ".debug_str");
    s.big_endian =
        elf_getident(e, nullptr) != nullptr && elf_getident(e, nullptr)[EI_DATA] == ELFDATA2MSB;
    auto table = LineTable::parse(
        s, stmt_list, comp_dir != nullptr ? std::string_view(comp_dir) : std::string_view(),
        address_size);
    if (!table)
        return nullptr;
    const LineTable& t = slot.emplace(std::move(table.value()));
    lines_bytes_ += t.bytes();
    bytes_ += t.bytes();
    return &t;
}

bool ElfImage::dwarf_frames(uint64_t vaddr, const Symbol* sym, bool demangle_names, bool inlines,
                            std::vector<SymbolizedFrame>& out) const {
    std::vector<const CuRange*> others; // further claimants, for the line only
    const CuRange* range = find_unit(vaddr, &others);
    if (range == nullptr)
        return false;
    Dwarf_Die cudie;
    if (dwarf_offdie(dwarf_, range->die_offset, &cudie) == nullptr)
        return false;
    // The unit's line for vaddr, from its line table (read once, kept until
    // release_memory, charged to this object).
    auto line_in = [&](Dwarf_Die* die, uint64_t die_offset) -> std::optional<LineTable::Line> {
        const LineTable* t = line_table(die, die_offset);
        return t != nullptr ? t->find(vaddr) : std::nullopt;
    };
    SymbolizedFrame leaf;
    std::optional<LineTable::Line> line = line_in(&cudie, range->die_offset);
    // The first unit's line table may not cover the address (a static initializer's
    // .constprop clone seen in our own test binary): another unit claiming it may, as
    // eu-addr2line finds through .debug_aranges. Names still come from the first unit.
    std::sort(others.begin(), others.end(),
              [](const CuRange* a, const CuRange* b) { return a->die_offset < b->die_offset; });
    for (size_t i = 0; !line && i < others.size(); ++i) {
        Dwarf_Die other;
        if (others[i]->die_offset != range->die_offset &&
            dwarf_offdie(dwarf_, others[i]->die_offset, &other) != nullptr)
            line = line_in(&other, others[i]->die_offset);
    }
    if (line) {
        if (!line->file.empty())
            leaf.file = std::string(line->file);
        leaf.line = static_cast<int>(line->line);
    }
    auto name_of = [&](Dwarf_Die* die) {
        bool mangled = false;
        const char* n = die_name(die, mangled);
        if (n == nullptr)
            return std::string();
        return mangled && demangle_names ? demangle(n) : std::string(n);
    };
    // The function holding vaddr, as binutils picks it: the smallest range holding the
    // address (an inlined callee lies inside its caller's range), on a tie the later DIE.
    const CuFunctions& index = cu_functions(&cudie, range->die_offset);
    int32_t best = -1;
    {
        uint64_t best_len = UINT64_MAX;
        auto fit = std::upper_bound(index.ranges.begin(), index.ranges.end(), vaddr,
                                    [](uint64_t a, const FuncRange& r) { return a < r.low; });
        for (size_t i = static_cast<size_t>(fit - index.ranges.begin()); i > 0; --i) {
            if (index.max_high[i - 1] <= vaddr)
                break;
            const FuncRange& r = index.ranges[i - 1];
            if (vaddr >= r.high)
                continue;
            const uint64_t len = r.high - r.low;
            if (best < 0 || len < best_len ||
                (len == best_len && index.funcs[r.func].die_offset >
                                        index.funcs[static_cast<size_t>(best)].die_offset)) {
                best = static_cast<int32_t>(r.func);
                best_len = len;
            }
        }
    }
    // Innermost first: the function, then while it is inlined, the function it sits in.
    std::vector<Dwarf_Die> funcs;
    for (int32_t f = best, steps = 0; f >= 0 && steps < 4096; ++steps) {
        const FuncDie& fd = index.funcs[static_cast<size_t>(f)];
        Dwarf_Die d;
        if (dwarf_offdie(dwarf_, fd.die_offset, &d) == nullptr)
            break;
        funcs.push_back(d);
        f = fd.inlined ? fd.parent : -1;
    }
    if (funcs.empty()) {
        out.push_back(std::move(leaf));
        return true;
    }
    // A function's name: its linkage name when DWARF has one, or DW_AT_name in a language
    // without mangling; otherwise the ELF symbol's, else DW_AT_name (binutils' choice for
    // the innermost function; for the outermost, the symbol is that function's too).
    const bool plain_names = unmangled_language(dwarf_srclang(&cudie));
    auto best_name = [&](Dwarf_Die* die) {
        bool mangled = false;
        const char* n = die_name(die, mangled);
        if (n != nullptr && (mangled || plain_names))
            return mangled && demangle_names ? demangle(n) : std::string(n);
        if (sym != nullptr)
            return symbol_name(*sym, demangle_names);
        return n != nullptr ? std::string(n) : std::string();
    };
    leaf.function = best_name(&funcs[0]);
    if (!inlines) {
        // One frame: the outermost function (the real one) at the line of the address.
        if (funcs.size() > 1)
            leaf.function = best_name(&funcs.back());
        out.push_back(std::move(leaf));
        return true;
    }
    // DW_AT_call_file indexes the unit's file table.
    const LineTable* files = funcs.size() > 1 ? line_table(&cudie, range->die_offset) : nullptr;
    leaf.inlined = funcs.size() > 1;
    out.push_back(std::move(leaf));
    for (size_t i = 1; i < funcs.size(); ++i) {
        SymbolizedFrame f;
        f.function = i + 1 < funcs.size() ? name_of(&funcs[i]) : best_name(&funcs[i]);
        f.inlined = i + 1 < funcs.size();
        Dwarf_Attribute attr;
        Dwarf_Word word = 0;
        if (dwarf_attr(&funcs[i - 1], DW_AT_call_line, &attr) != nullptr &&
            dwarf_formudata(&attr, &word) == 0)
            f.line = static_cast<int>(word);
        if (files != nullptr && dwarf_attr(&funcs[i - 1], DW_AT_call_file, &attr) != nullptr &&
            dwarf_formudata(&attr, &word) == 0 && word < files->files())
            if (std::string_view src = files->file_name(word); !src.empty())
                f.file = std::string(src);
        out.push_back(std::move(f));
    }
    return true;
}

const std::string& ElfImage::symbol_name(const Symbol& s, bool demangle_names) const {
    const char* n = names_.c_str() + s.name;
    if (!demangle_names) {
        scratch_.assign(n);
        return scratch_;
    }
    auto it = demangled_.find(s.name);
    if (it == demangled_.end()) {
        it = demangled_.emplace(s.name, demangle(n)).first;
        bytes_ += it->second.capacity() + 48;
    }
    return it->second;
}

ElfLookup ElfImage::symbolize(uint64_t vaddr, bool demangle_names, bool inlines,
                              std::vector<SymbolizedFrame>& out) const {
    const size_t first = out.size();
    const Symbol* sym = find_symbol(vaddr);
    // Lazily built state, like the per-unit indexes below (images are never const objects).
    if (dwarf_pending_)
        (void)const_cast<ElfImage*>(this)->open_pending_dwarf();
    // DWARF read in place from the file mapping (not inflated onto the heap): the DIEs a
    // lookup reads each fault in the pages around them (fault-around maps 64 KiB).
    if (dwarf_ != nullptr && inflated_bytes_ == 0)
        walked_bytes_ += kLookupTouchBytes;
    if (dwarf_ != nullptr && dwarf_frames(vaddr, sym, demangle_names, inlines, out)) {
        if (out[first].function.empty() && sym != nullptr)
            out[first].function = symbol_name(*sym, demangle_names);
        if (!out[first].function.empty() || !out[first].file.empty())
            return ElfLookup::Found;
        out.resize(first);
    }
    if (sym == nullptr)
        return symbols_.empty() ? ElfLookup::Stripped : ElfLookup::NoSymbol;
    SymbolizedFrame f;
    f.function = symbol_name(*sym, demangle_names);
    out.push_back(std::move(f));
    return ElfLookup::Found;
}

} // namespace hostprof::sym
