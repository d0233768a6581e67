#include "unwind/cfi.h"

#include <dwarf.h>
#include <elf.h>
#include <gelf.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <unordered_map>

#include "common/elf_handle.h"

namespace hostprof::unwind {
namespace {

// DWARF register numbers (x86-64 psABI).
constexpr int kRegRbp = 6;
constexpr int kRegRsp = 7;
constexpr int kRegRa = 16;

// Bounds on hostile input. dwarf_cfi_addrframe replays an FDE's instructions from its
// start on every call, so walking an FDE of n rows reads about n times its size: an FDE
// whose replayed bytes would pass kMaxFdeWork keeps its rows so far and the rest of its
// range is INVALID; the whole file stops (an error) past kMaxTotalWork or kMaxQueries.
// Real objects are far below (measured: libc replays 2.4 MiB in all, its largest FDE
// 10 KiB; libLLVM-14, the biggest object here, 95 MiB in all, its largest FDE 1.3 MiB),
// and a 64 KiB input cannot reach more than ~256 MiB in all.
constexpr uint64_t kMaxFdeWork = 16ull << 20;
constexpr uint64_t kMaxTotalWork = 2ull << 30;
constexpr uint64_t kMaxQueries = 64ull << 20;
constexpr uint64_t kMaxFdes = 16ull << 20;

struct Fde {
    uint64_t start = 0;
    uint64_t end = 0;   // start + address range
    uint64_t bytes = 0; // size of the entry and of its CIE: what one replay reads at most
    uint64_t limit = 0; // the end of its code segment: no row of bad CFI goes past it
};

bool fits16(int64_t v) {
    return v >= std::numeric_limits<int16_t>::min() && v <= std::numeric_limits<int16_t>::max();
}

// ---------------------------------------------------------------- pointer encodings

// Reads one DW_EH_PE_* encoded value at *p (< end); `field_vaddr` is the address of *p
// (pcrel), `datarel` the data base (.eh_frame_hdr), 0 if unknown. False when the
// encoding is not one we read or the bytes run out.
bool read_encoded(uint8_t enc, const uint8_t*& p, const uint8_t* end, uint64_t field_vaddr,
                  uint64_t datarel, bool apply, uint64_t* out) {
    if (enc == DW_EH_PE_omit)
        return false;
    uint64_t v = 0;
    auto fixed = [&](size_t n, bool sign) {
        if (static_cast<size_t>(end - p) < n)
            return false;
        uint64_t x = 0;
        std::memcpy(&x, p, n); // little-endian host and file (x86-64 only)
        if (sign && n < 8 && (x >> (n * 8 - 1)) & 1)
            x |= ~0ull << (n * 8);
        v = x;
        p += n;
        return true;
    };
    auto leb = [&](bool sign) {
        uint64_t x = 0;
        unsigned shift = 0;
        uint8_t b = 0;
        do {
            if (p >= end || shift >= 64)
                return false;
            b = *p++;
            x |= static_cast<uint64_t>(b & 0x7f) << shift;
            shift += 7;
        } while (b & 0x80);
        if (sign && shift < 64 && (b & 0x40))
            x |= ~0ull << shift;
        v = x;
        return true;
    };
    bool ok = false;
    switch (enc & 0x0f) {
    case DW_EH_PE_absptr:
    case DW_EH_PE_udata8:
    case DW_EH_PE_sdata8:
        ok = fixed(8, false);
        break;
    case DW_EH_PE_udata2:
        ok = fixed(2, false);
        break;
    case DW_EH_PE_udata4:
        ok = fixed(4, false);
        break;
    case DW_EH_PE_sdata2:
        ok = fixed(2, true);
        break;
    case DW_EH_PE_sdata4:
        ok = fixed(4, true);
        break;
    case DW_EH_PE_uleb128:
        ok = leb(false);
        break;
    case DW_EH_PE_sleb128:
        ok = leb(true);
        break;
    default:
        return false;
    }
    if (!ok)
        return false;
    if (apply) {
        switch (enc & 0x70) {
        case DW_EH_PE_absptr:
            break;
        case DW_EH_PE_pcrel:
            v += field_vaddr;
            break;
        case DW_EH_PE_datarel:
            if (datarel == 0)
                return false;
            v += datarel;
            break;
        default: // textrel, funcrel, aligned: not used for code addresses on x86-64
            return false;
        }
        if (enc & DW_EH_PE_indirect)
            return false;
    }
    *out = v;
    return true;
}

// The FDE pointer encoding of a CIE ('R' in its augmentation), DW_EH_PE_absptr when none;
// -1 when the augmentation cannot be read.
int fde_encoding(const Dwarf_CIE& cie) {
    const char* aug = cie.augmentation;
    if (aug == nullptr || aug[0] != 'z')
        return DW_EH_PE_absptr;
    const uint8_t* p = cie.augmentation_data;
    const uint8_t* end = p + cie.augmentation_data_size;
    for (const char* c = aug + 1; *c; ++c) {
        switch (*c) {
        case 'R':
            if (p >= end)
                return -1;
            return *p;
        case 'L':
            if (p >= end)
                return -1;
            ++p;
            break;
        case 'P': {
            if (p >= end)
                return -1;
            const uint8_t enc = *p++;
            uint64_t ignored;
            if (!read_encoded(enc & 0x0f, p, end, 0, 0, false, &ignored))
                return -1;
            break;
        }
        case 'S':
        case 'B':
        case 'G':
            break;
        default:
            return DW_EH_PE_absptr; // unknown letter: 'z' lets us ignore the rest
        }
    }
    return DW_EH_PE_absptr;
}

// An executable PT_LOAD segment's addresses: every FDE must lie in one. (It also bounds
// the pages a table spans, which pack() fills for rules that cross pages.)
struct Segment {
    uint64_t lo = 0, hi = 0;
};
constexpr uint64_t kMaxSegmentBytes = 4ull << 30;

struct CfiSection {
    std::vector<Segment> code;
    Elf_Data* data = nullptr;
    uint64_t vaddr = 0;   // address of data->d_buf[0]
    uint64_t hdr = 0;     // .eh_frame_hdr address (the datarel base), 0 if none
    bool eh_frame = true; // false: .debug_frame
};

// Every FDE of a CFI section with its address range, sorted by start.
Result<std::vector<Fde>> list_fdes(const unsigned char* ident, const CfiSection& s,
                                   CfiStats& stats) {
    struct CieInfo {
        int enc = -1;
        uint64_t bytes = 0;
    };
    std::unordered_map<Dwarf_Off, CieInfo> cies;
    std::vector<Fde> fdes;
    const auto* base = static_cast<const uint8_t*>(s.data->d_buf);
    const size_t size = s.data->d_size;
    Dwarf_Off off = 0;
    const char* what = s.eh_frame ? ".eh_frame" : ".debug_frame";
    auto cie_at = [&](Dwarf_Off at) -> CieInfo {
        auto it = cies.find(at);
        if (it != cies.end())
            return it->second;
        CieInfo info;
        Dwarf_CFI_Entry e;
        Dwarf_Off next = 0;
        if (cies.size() < kMaxFdes &&
            dwarf_next_cfi(ident, s.data, s.eh_frame, at, &next, &e) == 0 && dwarf_cfi_cie_p(&e)) {
            info.enc = s.eh_frame ? fde_encoding(e.cie) : DW_EH_PE_absptr;
            info.bytes = next > at ? next - at : 0;
        }
        cies.emplace(at, info);
        return info;
    };
    while (off < size) {
        Dwarf_CFI_Entry e;
        Dwarf_Off next = 0;
        const int rc = dwarf_next_cfi(ident, s.data, s.eh_frame, off, &next, &e);
        if (rc == 1)
            break;
        if (rc < 0 || next <= off || next > size)
            return Error{0, std::string("corrupt ") + what + " entry at offset " +
                                std::to_string(off) + ": " + dwarf_errmsg(-1)};
        const Dwarf_Off at = off;
        off = next;
        if (dwarf_cfi_cie_p(&e))
            continue;
        if (fdes.size() >= kMaxFdes)
            return Error{0,
                         std::string(what) + ": more than " + std::to_string(kMaxFdes) + " FDEs"};
        const CieInfo cie = cie_at(e.fde.CIE_pointer);
        const uint8_t* p = e.fde.start;
        uint64_t start = 0, range = 0;
        if (cie.enc < 0 || p < base || p > base + size || e.fde.end > base + size ||
            !read_encoded(static_cast<uint8_t>(cie.enc), p, e.fde.end,
                          s.vaddr + static_cast<uint64_t>(p - base), s.hdr, true, &start) ||
            !read_encoded(static_cast<uint8_t>(cie.enc & 0x0f), p, e.fde.end, 0, 0, false,
                          &range)) {
            ++stats.bad_fdes;
            continue;
        }
        if (range == 0)
            continue;
        auto seg = std::find_if(s.code.begin(), s.code.end(), [&](const Segment& g) {
            return start >= g.lo && start < g.hi && range <= g.hi - start;
        });
        if (seg == s.code.end()) {
            ++stats.bad_fdes;
            continue;
        }
        fdes.push_back({start, start + range, (next - at) + cie.bytes, seg->hi});
    }
    if (fdes.empty() && stats.bad_fdes > 0)
        return Error{0, std::string(what) + ": none of its " + std::to_string(stats.bad_fdes) +
                            " FDEs is readable"};
    std::sort(fdes.begin(), fdes.end(),
              [](const Fde& a, const Fde& b) { return a.start < b.start; });
    return fdes;
}

// ---------------------------------------------------------------- locating the CFI

Elf_Scn* section_named(Elf* elf, const char* name, GElf_Shdr* shdr_out) {
    size_t shstrndx = 0;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return nullptr;
    for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn; scn = elf_nextscn(elf, scn)) {
        GElf_Shdr shdr;
        if (gelf_getshdr(scn, &shdr) == nullptr)
            continue;
        const char* n = elf_strptr(elf, shstrndx, shdr.sh_name);
        if (n && std::strcmp(n, name) == 0) {
            *shdr_out = shdr;
            return scn;
        }
    }
    return nullptr;
}

// The .eh_frame_hdr (PT_GNU_EH_FRAME) and, when the file has no section headers, the
// .eh_frame it points at (up to the end of its PT_LOAD segment).
struct EhFrameHdr {
    uint64_t vaddr = 0;
    uint64_t eh_frame = 0; // 0 when unreadable
};
EhFrameHdr read_eh_frame_hdr(Elf* elf) {
    EhFrameHdr out;
    size_t phnum = 0;
    if (elf_getphdrnum(elf, &phnum) != 0)
        return out;
    for (size_t i = 0; i < phnum; ++i) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf, static_cast<int>(i), &ph) == nullptr || ph.p_type != PT_GNU_EH_FRAME)
            continue;
        out.vaddr = ph.p_vaddr;
        if (ph.p_filesz < 8)
            return out;
        Elf_Data* d = elf_getdata_rawchunk(elf, static_cast<int64_t>(ph.p_offset), 8, ELF_T_BYTE);
        if (d == nullptr || d->d_size < 8)
            return out;
        const auto* p = static_cast<const uint8_t*>(d->d_buf);
        if (p[0] != 1) // version
            return out;
        const uint8_t* q = p + 4;
        uint64_t v = 0;
        if (read_encoded(p[1], q, p + 8, ph.p_vaddr + 4, ph.p_vaddr, true, &v))
            out.eh_frame = v;
        return out;
    }
    return out;
}

// The bytes of the PT_LOAD segment from `vaddr` to the segment's end of file data.
Elf_Data* segment_tail(Elf* elf, uint64_t vaddr) {
    size_t phnum = 0;
    if (elf_getphdrnum(elf, &phnum) != 0)
        return nullptr;
    for (size_t i = 0; i < phnum; ++i) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf, static_cast<int>(i), &ph) == nullptr || ph.p_type != PT_LOAD)
            continue;
        if (vaddr < ph.p_vaddr || vaddr - ph.p_vaddr >= ph.p_filesz)
            continue;
        const uint64_t skip = vaddr - ph.p_vaddr;
        return elf_getdata_rawchunk(elf, static_cast<int64_t>(ph.p_offset + skip),
                                    ph.p_filesz - skip, ELF_T_BYTE);
    }
    return nullptr;
}

std::vector<Segment> code_segments(Elf* elf) {
    std::vector<Segment> out;
    size_t phnum = 0;
    if (elf_getphdrnum(elf, &phnum) != 0)
        return out;
    for (size_t i = 0; i < phnum; ++i) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf, static_cast<int>(i), &ph) == nullptr || ph.p_type != PT_LOAD ||
            !(ph.p_flags & PF_X) || ph.p_memsz == 0 || ph.p_memsz > kMaxSegmentBytes ||
            ph.p_vaddr + ph.p_memsz < ph.p_vaddr)
            continue;
        out.push_back({ph.p_vaddr, ph.p_vaddr + ph.p_memsz});
    }
    return out;
}

Status check_elf(Elf* elf, const char* what) {
    if (elf == nullptr || elf_kind(elf) != ELF_K_ELF)
        return Error{0, std::string(what) + ": not an ELF file"};
    GElf_Ehdr eh;
    if (gelf_getehdr(elf, &eh) == nullptr)
        return Error{0, std::string(what) + ": no ELF header: " + elf_errmsg(-1)};
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
        eh.e_machine != EM_X86_64)
        return Error{0, std::string(what) + ": not an x86-64 ELF file"};
    if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
        return Error{0, std::string(what) + ": neither an executable nor a shared object"};
    return {};
}

// ---------------------------------------------------------------- classification

bool is_plt_expression(const Dwarf_Op* ops, size_t n, int16_t* threshold) {
    // DW_OP_breg7 8; DW_OP_breg16 0; DW_OP_lit15; DW_OP_and; DW_OP_litN; DW_OP_ge;
    // DW_OP_lit3; DW_OP_shl; DW_OP_plus: rsp + 8 + (((rip & 15) >= N) << 3).
    if (n != 9)
        return false;
    if (ops[0].atom != DW_OP_breg7 || ops[0].number != 8 || ops[1].atom != DW_OP_breg16 ||
        ops[1].number != 0 || ops[2].atom != DW_OP_lit15 || ops[3].atom != DW_OP_and ||
        ops[4].atom < DW_OP_lit0 || ops[4].atom > DW_OP_lit15 || ops[5].atom != DW_OP_ge ||
        ops[6].atom != DW_OP_lit3 || ops[7].atom != DW_OP_shl || ops[8].atom != DW_OP_plus)
        return false;
    *threshold = static_cast<int16_t>(ops[4].atom - DW_OP_lit0);
    return true;
}

// A register saved at CFA + off: libdw gives DW_OP_call_frame_cfa [DW_OP_plus_uconst off].
bool saved_at_cfa(const Dwarf_Op* ops, size_t n, int64_t* off) {
    if (n == 1 && ops[0].atom == DW_OP_call_frame_cfa) {
        *off = 0;
        return true;
    }
    if (n == 2 && ops[0].atom == DW_OP_call_frame_cfa && ops[1].atom == DW_OP_plus_uconst) {
        *off = static_cast<int64_t>(ops[1].number);
        return true;
    }
    return false;
}

// libdw's error numbers are private: "no FDE covers this address" is told by its message.
bool is_no_match(int err) {
    const char* m = dwarf_errmsg(err);
    return m != nullptr && std::strcmp(m, "no matching address range") == 0;
}

Row kind_only(uint8_t kind) {
    Row r;
    r.kind = kind;
    return r;
}

} // namespace

const char* cfi_source_name(CfiSource s) {
    switch (s) {
    case CfiSource::None:
        return "none";
    case CfiSource::EhFrame:
        return "eh_frame";
    case CfiSource::DebugFrame:
        return "debug_frame";
    }
    return "?";
}

Row classify_frame(Dwarf_Frame* frame) {
    Dwarf_Addr start = 0, end = 0;
    bool signalp = false;
    const int ra_reg = dwarf_frame_info(frame, &start, &end, &signalp);
    if (signalp)
        return kind_only(HP_UNW_SIGNAL);
    if (ra_reg != kRegRa)
        return kind_only(HP_UNW_INVALID);

    Dwarf_Op mem[3];
    Dwarf_Op* ops = nullptr;
    size_t n = 0;
    if (dwarf_frame_register(frame, kRegRa, mem, &ops, &n) != 0)
        return kind_only(HP_UNW_INVALID);
    if (n == 0) // undefined (ops == mem): the outermost frame; same value: unusable
        return kind_only(ops == mem ? HP_UNW_END : HP_UNW_INVALID);
    int64_t ra_off = 0;
    if (!saved_at_cfa(ops, n, &ra_off) || ra_off != -8)
        return kind_only(HP_UNW_INVALID);

    Row r;
    if (dwarf_frame_cfa(frame, &ops, &n) != 0 || n == 0)
        return kind_only(HP_UNW_INVALID);
    int reg = -1;
    int64_t off = 0;
    if (n == 1 && ops[0].atom == DW_OP_bregx) {
        reg = static_cast<int>(std::min<Dwarf_Word>(ops[0].number, 1024));
        off = static_cast<int64_t>(ops[0].number2);
    } else if (n == 1 && ops[0].atom >= DW_OP_breg0 && ops[0].atom <= DW_OP_breg31) {
        reg = ops[0].atom - DW_OP_breg0;
        off = static_cast<int64_t>(ops[0].number);
    }
    if (reg == kRegRsp || reg == kRegRbp) {
        if (!fits16(off))
            return kind_only(HP_UNW_INVALID);
        r.kind = reg == kRegRsp ? HP_UNW_CFA_RSP : HP_UNW_CFA_RBP;
        r.cfa_off = static_cast<int16_t>(off);
    } else if (int16_t threshold = 0; is_plt_expression(ops, n, &threshold)) {
        r.kind = HP_UNW_PLT;
        r.cfa_off = threshold;
    } else {
        return kind_only(HP_UNW_INVALID);
    }

    // Where the caller's rbp is: same value (and undefined, which no walker can do better
    // than keep), saved at CFA + off, or unknown (a register, an expression, an offset
    // beyond int16).
    if (dwarf_frame_register(frame, kRegRbp, mem, &ops, &n) != 0) {
        r.rbp = HP_UNW_RBP_UNKNOWN;
    } else if (n == 0) {
        r.rbp = HP_UNW_RBP_SAME;
    } else if (int64_t rbp_off = 0; saved_at_cfa(ops, n, &rbp_off) && fits16(rbp_off)) {
        r.rbp = HP_UNW_RBP_OFFSET;
        r.rbp_off = static_cast<int16_t>(rbp_off);
    } else {
        r.rbp = HP_UNW_RBP_UNKNOWN;
    }
    return r;
}

namespace {

struct FrameDeleter {
    void operator()(Dwarf_Frame* f) const { std::free(f); }
};
using FramePtr = std::unique_ptr<Dwarf_Frame, FrameDeleter>;

// Walks the rows of every FDE, asking libdw for the rule at each row boundary: the rule
// at `pc` holds up to the frame's end or the next FDE's start, whichever is first (FDEs
// may overlap in bad input; libdw answers by its own lookup either way, so the table
// gives libdw's answer at every address). Addresses no FDE covers get a NONE row.
Status walk_fdes(Dwarf_CFI* cfi, const std::vector<Fde>& fdes, CfiTable& out) {
    std::vector<Row>& rows = out.rows;
    constexpr uint64_t kEnd = std::numeric_limits<uint64_t>::max();
    size_t j = 0; // fdes[j].start <= pc < fdes[j + 1].start
    uint64_t pc = fdes.empty() ? kEnd : fdes[0].start;
    uint64_t queries = 0, total_work = 0, fde_work = 0, max_bytes = 0;
    size_t work_fde = 0;
    for (const Fde& f : fdes)
        max_bytes = std::max(max_bytes, f.bytes);
    while (pc != kEnd) {
        while (j + 1 < fdes.size() && fdes[j + 1].start <= pc)
            ++j;
        const uint64_t next_start = j + 1 < fdes.size() ? fdes[j + 1].start : kEnd;
        if (++queries > kMaxQueries)
            return Error{0, "CFI has more than " + std::to_string(kMaxQueries) + " rows"};
        if (pc >= fdes[j].limit) { // past FDE j's segment (bad CFI): nothing until the next
            Row r = kind_only(HP_UNW_NONE);
            r.pc = pc;
            rows.push_back(r);
            pc = next_start;
            continue;
        }
        const uint64_t bound = std::min(next_start, fdes[j].limit);
        const bool inside = pc < fdes[j].end; // of FDE j, whose replays we count
        if (work_fde != j) {
            work_fde = j;
            fde_work = 0;
        }
        // The end of FDE j's range when pc is inside it, else the bound.
        const uint64_t fde_end = inside && fdes[j].end < bound ? fdes[j].end : bound;
        if (inside && fde_work + fdes[j].bytes > kMaxFdeWork) {
            // Its rows so far stay; the rest of its range is INVALID.
            ++out.stats.truncated_fdes;
            Row r = kind_only(HP_UNW_INVALID);
            r.pc = pc;
            rows.push_back(r);
            pc = fde_end;
            continue;
        }
        Dwarf_Frame* raw = nullptr;
        const int rc = dwarf_cfi_addrframe(cfi, pc, &raw);
        const int err = rc != 0 ? dwarf_errno() : 0;
        // What the query replayed: FDE j, or (overlapping FDEs in bad input) another one,
        // counted as the largest; a miss costs a lookup.
        const bool no_match = rc != 0 && is_no_match(err);
        const uint64_t cost = no_match ? 0 : inside ? fdes[j].bytes : max_bytes;
        fde_work += inside ? cost : 0;
        total_work += cost;
        if (total_work > kMaxTotalWork) {
            std::free(raw);
            return Error{0, "CFI too costly to interpret (more than " +
                                std::to_string(kMaxTotalWork >> 20) + " MiB replayed)"};
        }
        if (rc != 0) {
            FramePtr f(raw);
            // No FDE here (a gap): NONE up to the next FDE. Anything else is CFI libdw
            // rejected: INVALID over the FDE's range.
            Row r = kind_only(no_match ? HP_UNW_NONE : HP_UNW_INVALID);
            r.pc = pc;
            rows.push_back(r);
            if (!no_match) {
                ++out.stats.bad_fdes;
                pc = fde_end;
            } else {
                pc = bound;
            }
            continue;
        }
        FramePtr frame(raw);
        Row r = classify_frame(frame.get());
        r.pc = pc;
        rows.push_back(r);
        Dwarf_Addr start = 0, end = 0;
        bool signalp = false;
        dwarf_frame_info(frame.get(), &start, &end, &signalp);
        pc = end > pc && end < bound ? end : bound;
    }
    return {};
}

} // namespace

Result<CfiTable> build_cfi_table(Elf* elf, Elf* debug_elf) {
    const auto t0 = std::chrono::steady_clock::now();
    if (auto st = check_elf(elf, "file"); !st)
        return st.error();
    CfiTable out;
    const unsigned char* ident = reinterpret_cast<const unsigned char*>(elf_getident(elf, nullptr));
    if (ident == nullptr)
        return Error{0, "no ELF identification"};

    // .eh_frame: by its section header, else through PT_GNU_EH_FRAME.
    const std::vector<Segment> code = code_segments(elf);
    if (code.empty()) {
        out.reason = "no executable segment";
        return out;
    }
    CfiSection eh;
    eh.code = code;
    const EhFrameHdr hdr = read_eh_frame_hdr(elf);
    eh.hdr = hdr.vaddr;
    GElf_Shdr shdr;
    if (Elf_Scn* scn = section_named(elf, ".eh_frame", &shdr);
        scn && shdr.sh_type == SHT_PROGBITS) {
        eh.data = elf_rawdata(scn, nullptr);
        eh.vaddr = shdr.sh_addr;
    } else if (hdr.eh_frame != 0) {
        eh.data = segment_tail(elf, hdr.eh_frame);
        eh.vaddr = hdr.eh_frame;
    }

    std::vector<Fde> fdes;
    Dwarf_CFI* cfi = nullptr;
    struct CfiEnd {
        void operator()(Dwarf_CFI* c) const { dwarf_cfi_end(c); }
    };
    std::unique_ptr<Dwarf_CFI, CfiEnd> eh_cfi;
    struct DwarfEnd {
        void operator()(Dwarf* d) const { dwarf_end(d); }
    };
    std::unique_ptr<Dwarf, DwarfEnd> dwarf;

    if (eh.data != nullptr && eh.data->d_size > 0) {
        auto listed = list_fdes(ident, eh, out.stats);
        if (!listed)
            return listed.error();
        fdes = std::move(*listed);
        if (!fdes.empty()) {
            eh_cfi.reset(dwarf_getcfi_elf(elf));
            if (!eh_cfi)
                return Error{0, std::string("libdw cannot read .eh_frame: ") + dwarf_errmsg(-1)};
            cfi = eh_cfi.get();
            out.stats.source = CfiSource::EhFrame;
        }
    }
    // .debug_frame, of the file itself, else of the debug file.
    for (Elf* e : {elf, debug_elf}) {
        if (cfi != nullptr || e == nullptr)
            break;
        if (e == debug_elf) {
            if (auto st = check_elf(e, "debug file"); !st)
                return st.error();
        }
        if (section_named(e, ".debug_frame", &shdr) == nullptr)
            continue;
        // dwarf_begin_elf inflates a compressed .debug_frame in place: read it afterwards.
        dwarf.reset(dwarf_begin_elf(e, DWARF_C_READ, nullptr));
        if (!dwarf)
            return Error{0, std::string("libdw cannot read .debug_frame: ") + dwarf_errmsg(-1)};
        Elf_Scn* scn = section_named(e, ".debug_frame", &shdr);
        CfiSection dbg;
        dbg.code = code; // the debug file's addresses are the code's
        dbg.eh_frame = false;
        dbg.data = scn && shdr.sh_type == SHT_PROGBITS ? elf_getdata(scn, nullptr) : nullptr;
        if (dbg.data == nullptr || dbg.data->d_size == 0) {
            dwarf.reset();
            continue;
        }
        auto listed = list_fdes(ident, dbg, out.stats);
        if (!listed)
            return listed.error();
        if (listed->empty()) {
            dwarf.reset();
            continue;
        }
        fdes = std::move(*listed);
        cfi = dwarf_getcfi(dwarf.get());
        if (cfi == nullptr)
            return Error{0, std::string("libdw cannot read .debug_frame: ") + dwarf_errmsg(-1)};
        out.stats.source = CfiSource::DebugFrame;
        out.stats.from_debug_file = e == debug_elf;
    }
    if (cfi == nullptr) {
        out.reason = eh.data != nullptr ? ".eh_frame has no FDE and there is no .debug_frame"
                                        : "no .eh_frame and no .debug_frame";
        out.stats.build_ns =
            static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      std::chrono::steady_clock::now() - t0)
                                      .count());
        return out;
    }
    out.stats.fdes = static_cast<uint32_t>(fdes.size());
    out.rows.reserve(fdes.size() * 8);
    if (auto st = walk_fdes(cfi, fdes, out); !st)
        return st.error();
    normalize(out.rows);
    out.stats.rows = static_cast<uint32_t>(out.rows.size());
    for (const Row& r : out.rows)
        out.stats.invalid_rows += (r.kind & HP_UNW_KIND_MASK) == HP_UNW_INVALID;
    out.stats.build_ns = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
            .count());
    return out;
}

Result<CfiTable> build_cfi_table(const std::string& path, const std::string& debug_path) {
    auto file = ElfFile::open(path);
    if (!file)
        return file.error();
    if (debug_path.empty())
        return build_cfi_table(file->elf(), nullptr);
    auto dbg = ElfFile::open(debug_path);
    if (!dbg)
        return dbg.error();
    return build_cfi_table(file->elf(), dbg->elf());
}

} // namespace hostprof::unwind
