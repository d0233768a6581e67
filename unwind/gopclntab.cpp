#include "unwind/gopclntab.h"

#include <fcntl.h>
#include <gelf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string_view>

#include "common/elf_handle.h"

namespace hostprof::unwind {

namespace {

constexpr uint32_t kMagic12 = 0xfffffffb;
constexpr uint32_t kMagic116 = 0xfffffffa;
constexpr uint32_t kMagic118 = 0xfffffff0;
constexpr uint32_t kMagic120 = 0xfffffff1;

// _func.flag bits (runtime/symtab.go, Go 1.17+).
constexpr uint8_t kFlagTopFrame = 1;
constexpr uint8_t kFlagSPWrite = 2;
constexpr uint8_t kFlagAsm = 4; // Go 1.19+

// Before Go 1.17 there are no flags: the functions that are TOPFRAME or SPWRITE in later
// versions, by name.
constexpr std::string_view kEndNames[] = {
    "runtime.goexit",
    "runtime.mstart",
    "runtime.rt0_go",
    "runtime.mcall",
    "runtime.morestack",
    "runtime.systemstack",
    "runtime.asmcgocall",
    "runtime.gogo",
    "runtime.cgocallback",
    "runtime.asmcgocall_no_g",
    "runtime.systemstack_switch",
};

Error corrupt(const std::string& what) {
    return Error{EINVAL, "gopclntab: " + what};
}

uint32_t le32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v; // amd64 tables only: little-endian hosts and files
}
uint64_t le64(const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}

// A bounds-checked view of the table.
struct View {
    const uint8_t* p = nullptr;
    size_t n = 0;
    bool has(uint64_t off, uint64_t len) const { return off <= n && len <= n - off; }
    bool u32(uint64_t off, uint32_t& v) const {
        if (!has(off, 4))
            return false;
        v = le32(p + off);
        return true;
    }
    bool u64(uint64_t off, uint64_t& v) const {
        if (!has(off, 8))
            return false;
        v = le64(p + off);
        return true;
    }
};

// The layout of one format: where the function table, names, pc tables and _func fields
// are.
struct Layout {
    uint32_t magic = 0;
    uint64_t nfunc = 0;
    uint64_t functab = 0;  // offset of the function table
    bool entry32 = false;  // functab entries {u32 entryoff, u32 funcoff} (1.18+), else u64s
    uint64_t funcbase = 0; // funcoff is relative to this
    uint64_t names = 0;    // nameoff is relative to this
    uint64_t pctab = 0;    // pcsp is relative to this
    uint64_t text_start = 0;
    size_t f_name = 0, f_pcsp = 0, f_flag = 0; // _func field offsets
    bool has_flag = false;
    size_t func_size = 0; // bytes of _func needed
};

Result<Layout> parse_header(const View& t, uint64_t text_start) {
    if (t.n < 16)
        return corrupt("table too small (" + std::to_string(t.n) + " bytes)");
    Layout l;
    l.magic = le32(t.p);
    if (l.magic != kMagic12 && l.magic != kMagic116 && l.magic != kMagic118 && l.magic != kMagic120)
        return corrupt("unknown magic");
    if (t.p[4] != 0 || t.p[5] != 0)
        return corrupt("bad header padding");
    if (t.p[6] != 1 || t.p[7] != 8)
        return Error{ENOTSUP, "gopclntab: pc quantum " + std::to_string(t.p[6]) +
                                  ", pointer size " + std::to_string(t.p[7]) + ": not amd64"};
    auto word = [&](unsigned i, uint64_t& v) { return t.u64(8 + uint64_t{i} * 8, v); };
    if (!word(0, l.nfunc))
        return corrupt("truncated header");
    if (l.magic == kMagic12) {
        l.functab = 16;
        l.funcbase = 0;
        l.names = 0;
        l.pctab = 0;
        l.f_name = 8;
        l.f_pcsp = 20;
        l.func_size = 24;
    } else {
        uint64_t names = 0, pctab = 0, functab = 0, text = 0;
        const bool v118 = l.magic != kMagic116;
        const unsigned k = v118 ? 1 : 0; // 1.18 added textStart after nfiles
        if ((v118 && !word(2, text)) || !word(2 + k, names) || !word(5 + k, pctab) ||
            !word(6 + k, functab))
            return corrupt("truncated header");
        if (names >= t.n || pctab >= t.n || functab >= t.n)
            return corrupt("header offsets past the table");
        l.names = names;
        l.pctab = pctab;
        l.functab = functab;
        l.funcbase = functab;
        l.has_flag = true;
        if (!v118) {
            l.f_name = 8;
            l.f_pcsp = 20;
            l.f_flag = 41; // zero padding in 1.16
            l.func_size = 44;
        } else {
            l.entry32 = true;
            l.text_start = text_start ? text_start : text;
            l.f_name = 4;
            l.f_pcsp = 16;
            l.f_flag = l.magic == kMagic118 ? 37 : 41; // 1.20 added startLine
            l.func_size = l.magic == kMagic118 ? 40 : 44;
        }
    }
    const uint64_t esz = l.entry32 ? 8 : 16;
    if (l.nfunc == 0 || l.nfunc > (t.n - std::min(t.n, size_t(l.functab))) / esz)
        return corrupt("function count " + std::to_string(l.nfunc) + " does not fit the table");
    if (!t.has(l.functab, l.nfunc * esz + (l.entry32 ? 4 : 8)))
        return corrupt("truncated function table");
    return l;
}

// Reads one uvarint of the pc-value encoding; false past `end` or when longer than 5 bytes.
bool uvarint(const View& t, uint64_t& off, uint64_t end, uint32_t& v) {
    uint32_t r = 0;
    for (unsigned shift = 0; shift < 35; shift += 7) {
        if (off >= end)
            return false;
        const uint8_t b = t.p[off++];
        r |= uint32_t(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            v = r;
            return true;
        }
    }
    return false;
}

struct Segment {
    uint64_t lo, hi;
    int64_t delta;
};

// Decodes a pcsp table starting at `off` for a function at `entry` whose code may reach
// `limit`. The value applies on [previous pc, pc). Bounded by the table's bytes.
Status decode_pcsp(const View& t, uint64_t off, uint64_t entry, uint64_t limit,
                   std::vector<Segment>& out) {
    out.clear();
    int64_t val = -1;
    uint64_t pc = entry;
    bool first = true;
    while (true) {
        if (off >= t.n)
            return corrupt("pcsp table runs past the end");
        if (t.p[off] == 0 && !first)
            return {}; // end of the table
        uint32_t uv = 0, pcd = 0;
        if (!uvarint(t, off, t.n, uv) || !uvarint(t, off, t.n, pcd))
            return corrupt("truncated pcsp table");
        if (first && uv == 0 && pcd == 0)
            return {}; // an empty table
        first = false;
        const int32_t vd = int32_t(-(uv & 1) ^ (uv >> 1));
        val += vd;
        if (val < std::numeric_limits<int32_t>::min() || val > std::numeric_limits<int32_t>::max())
            return corrupt("pcsp value out of range");
        if (pcd > limit - pc)
            return corrupt("pcsp table runs past the function's end");
        const uint64_t next = pc + pcd;
        if (pcd > 0)
            out.push_back({pc, next, val});
        pc = next;
    }
}

bool name_is(const View& t, uint64_t off, std::string_view want) {
    if (!t.has(off, want.size() + 1))
        return false;
    return std::memcmp(t.p + off, want.data(), want.size()) == 0 && t.p[off + want.size()] == 0;
}

const uint8_t* code_at(const std::vector<CodeBytes>& code, uint64_t addr, size_t len) {
    for (const CodeBytes& c : code)
        if (addr >= c.addr && addr - c.addr <= c.size && len <= c.size - (addr - c.addr))
            return c.bytes + (addr - c.addr);
    return nullptr;
}

// The length of `48 <op> modrm 24 [disp]` (op(disp(SP)), BP / op(BP), disp(SP)) at `addr`
// for op 0x89 (MOVQ BP, d(SP)), 0x8b (MOVQ d(SP), BP) or 0x8d (LEAQ d(SP), BP); 0 if not.
size_t sp_disp_insn(const std::vector<CodeBytes>& code, uint64_t addr, uint8_t op, int64_t disp) {
    const uint8_t* b = code_at(code, addr, 4);
    if (!b || b[0] != 0x48 || b[1] != op || b[3] != 0x24)
        return 0;
    if (b[2] == 0x2c && disp == 0)
        return 4;
    if (b[2] == 0x6c && disp >= -128 && disp < 128) {
        const uint8_t* d8 = code_at(code, addr, 5);
        return d8 && int8_t(d8[4]) == disp ? 5 : 0;
    }
    if (b[2] == 0xac) {
        const uint8_t* d32 = code_at(code, addr, 8);
        return d32 && int64_t(int32_t(le32(d32 + 4))) == disp ? 8 : 0;
    }
    return 0;
}

// How a function's prologue saves the caller's BP, from its first segment with a frame
// (which starts right after the instruction that made it): `saved` is where BP is at
// CFA - 16 from on, `framed` where BP = CFA - 16 (the frame pointer set up); 0 when the
// prologue is not one the Go toolchain emits.
struct Prologue {
    uint64_t saved = 0, framed = 0;
    bool push = false; // PUSHQ BP (Go 1.21+), else SUBQ then MOVQ BP, n-8(SP)
};
Prologue prologue(const std::vector<CodeBytes>& code, const Segment& s) {
    Prologue p;
    // Go 1.21+ (and hand-written assembly): PUSHQ BP (0x55) then MOVQ SP, BP (48 89 e5).
    if (s.delta == 8 && s.lo >= 2) {
        const uint8_t* b = code_at(code, s.lo - 2, 2);
        const uint8_t* m = code_at(code, s.lo, 3);
        const bool mov = m && m[0] == 0x48 && m[1] == 0x89 && m[2] == 0xe5;
        if (b && b[1] == 0x55 && (b[0] < 0x40 || b[0] > 0x4f || mov)) {
            p.saved = s.lo;
            p.framed = mov ? s.lo + 3 : 0;
            p.push = true;
            return p;
        }
    }
    // Up to Go 1.20: SUBQ $n, SP; MOVQ BP, n-8(SP); LEAQ n-8(SP), BP.
    if (size_t n = sp_disp_insn(code, s.lo, 0x89, s.delta - 8)) {
        p.saved = s.lo + n;
        if (size_t m = sp_disp_insn(code, p.saved, 0x8d, s.delta - 8))
            p.framed = p.saved + m;
    }
    return p;
}

bool all_int3(const std::vector<CodeBytes>& code, uint64_t lo, uint64_t hi) {
    if (hi - lo > 4096)
        return false;
    const uint8_t* b = code_at(code, lo, hi - lo);
    return b && std::all_of(b, b + (hi - lo), [](uint8_t c) { return c == 0xcc; });
}

// runtime.asmcgocall's call of a C function on the g0 stack (Go 1.19's asm_amd64.s):
//
//   MOVQ DI, g(SP)       48 89 7c 24 g      save g
//   MOVQ 8(DI), DI       48 8b 7f 08        g.stack.hi
//   SUBQ DX, DI          48 29 d7           - the goroutine's SP at entry (DX)
//   MOVQ DI, depth(SP)   48 89 7c 24 depth  save the depth
//   MOVQ BX, DI ...      48 89 /r           register moves (the C arguments)
//   CALL AX              ff d0
//   ...                                     reload g and depth (the same displacements)
//   MOVQ SI, SP          48 89 f4           back on the goroutine's stack
//
// From the instruction after the depth's save to the one that restores SP (both the
// interrupted instructions and the C function's return address), the goroutine's frames
// are reachable from the two slots. `lo`/`hi` bound that range; lo == 0: not found.
struct CgoSwitch {
    uint64_t lo = 0, hi = 0;
    int16_t g_off = 0, depth_off = 0;
};
CgoSwitch cgo_switch(const std::vector<CodeBytes>& code, uint64_t entry, uint64_t end) {
    CgoSwitch out;
    if (end <= entry || end - entry > 4096)
        return out;
    const uint8_t* b = code_at(code, entry, end - entry);
    if (!b)
        return out;
    const size_t n = end - entry;
    static constexpr uint8_t kSave[] = {0x48, 0x89, 0x7c, 0x24};
    static constexpr uint8_t kHiSub[] = {0x48, 0x8b, 0x7f, 0x08, 0x48, 0x29, 0xd7};
    static constexpr uint8_t kRestoreSp[] = {0x48, 0x89, 0xf4};
    auto at = [&](size_t i, const uint8_t* pat, size_t len) {
        return i <= n && len <= n - i && std::memcmp(b + i, pat, len) == 0;
    };
    auto slot = [](uint8_t d) { return int8_t(d) >= 0 && d % 8 == 0; };
    for (size_t i = 0; i + 17 <= n; ++i) {
        if (!at(i, kSave, 4) || !at(i + 5, kHiSub, 7) || !at(i + 12, kSave, 4))
            continue;
        const uint8_t g = b[i + 4], depth = b[i + 16];
        if (!slot(g) || !slot(depth) || g == depth)
            return out;
        // The argument moves (REX.W MOV reg, reg not into SP), then CALL AX.
        size_t c = i + 17;
        for (int k = 0; k < 4 && c + 3 <= n && (b[c] & 0xf8) == 0x48 && b[c + 1] == 0x89 &&
                        (b[c + 2] & 0xc0) == 0xc0 && (b[c + 2] & 0x07) != 4;
             ++k)
            c += 3;
        if (c + 2 > n || b[c] != 0xff || b[c + 1] != 0xd0)
            return out;
        // The first MOVQ SI, SP after it, before any RET byte (an earlier match inside
        // another instruction only ends the range early), reloading g and depth first.
        const size_t ret = c + 2;
        const uint8_t reload_g[] = {0x48, 0x8b, 0x7c, 0x24, g};
        const uint8_t sub_depth[] = {0x48, 0x2b, 0x74, 0x24, depth};
        bool has_g = false, has_depth = false;
        for (size_t j = ret; j < n && j < ret + 64 && b[j] != 0xc3; ++j) {
            has_g = has_g || at(j, reload_g, 5);
            has_depth = has_depth || at(j, sub_depth, 5);
            if (at(j, kRestoreSp, 3)) {
                if (has_g && has_depth) {
                    out.lo = entry + i + 17;
                    out.hi = entry + j + 3;
                    out.g_off = g;
                    out.depth_off = depth;
                }
                return out;
            }
        }
        return out;
    }
    return out;
}

Row go_row(uint64_t pc, uint8_t kind) {
    Row r;
    r.pc = pc;
    r.kind = kind | HP_UNW_ROW_GO;
    return r;
}

} // namespace

Result<GoTable> decode_pclntab(const GoImage& img, const GoOptions& opt) {
    const View t{img.pclntab, img.pclntab_size};
    auto lr = parse_header(t, img.text_start);
    if (!lr)
        return lr.error();
    const Layout& l = *lr;
    if (l.nfunc > opt.max_functions)
        return corrupt(std::to_string(l.nfunc) + " functions: over the limit");
    GoTable out;
    out.magic = l.magic;
    out.text_start = l.text_start;
    out.pclntab_addr = img.pclntab_addr;
    out.counts.functions = l.nfunc;

    const uint64_t esz = l.entry32 ? 8 : 16;
    auto entry_at = [&](uint64_t i) -> uint64_t {
        const uint64_t off = l.functab + i * esz;
        return l.entry32 ? l.text_start + le32(t.p + off) : le64(t.p + off);
    };
    auto funcoff_at = [&](uint64_t i) -> uint64_t {
        const uint64_t off = l.functab + i * esz + (l.entry32 ? 4 : 8);
        return l.entry32 ? le32(t.p + off) : le64(t.p + off);
    };

    std::vector<Row>& rows = out.rows;
    rows.reserve(std::min<uint64_t>(l.nfunc, 1 << 18) * 5); // ~5 rows a function
    std::vector<Segment> segs;
    uint64_t prev_end = 0;
    for (uint64_t i = 0; i < l.nfunc; ++i) {
        const uint64_t entry = entry_at(i), next = entry_at(i + 1);
        const std::string fn = "function " + std::to_string(i);
        if (next < entry)
            return corrupt(fn + ": entries out of order");
        if (entry < prev_end)
            return corrupt(fn + ": overlaps the previous one");
        const uint64_t foff = l.funcbase + funcoff_at(i);
        if (foff < l.funcbase || !t.has(foff, l.func_size))
            return corrupt(fn + ": _func out of the table");
        const uint8_t* f = t.p + foff;
        const uint64_t fentry = l.entry32 ? l.text_start + le32(f) : le64(f);
        if (fentry != entry)
            return corrupt(fn + ": _func entry differs from the function table's");
        if (entry == next)
            continue; // empty
        if (img.code.empty() ? next - entry > opt.max_text
                             : !code_at(img.code, entry, next - entry))
            return corrupt(fn + ": not within the code");

        if (prev_end != 0 && prev_end < entry && !all_int3(img.code, prev_end, entry)) {
            rows.push_back(go_row(prev_end, HP_UNW_NONE));
            ++out.counts.gaps;
        }

        const uint8_t flag = l.has_flag ? f[l.f_flag] : 0;
        bool end = (flag & (kFlagTopFrame | kFlagSPWrite)) != 0;
        const uint64_t name = l.names + uint64_t(le32(f + l.f_name));
        if (!end && l.magic != kMagic118 && l.magic != kMagic120 && name >= l.names)
            for (std::string_view n : kEndNames)
                end = end || name_is(t, name, n);

        const uint32_t pcsp = le32(f + l.f_pcsp);
        segs.clear();
        if (pcsp != 0) {
            const uint64_t off = l.pctab + pcsp;
            if (off < l.pctab || off >= t.n)
                return corrupt(fn + ": pcsp offset out of the table");
            Status st = decode_pcsp(t, off, entry, next, segs);
            if (!st)
                return Error{st.error().err, st.error().context + " (" + fn + ")"};
        }
        if (segs.empty()) {
            ++out.counts.no_pcsp;
            rows.push_back(go_row(entry, end ? HP_UNW_END : HP_UNW_NONE));
            prev_end = next;
            continue;
        }
        prev_end = segs.back().hi;
        if (end) {
            ++out.counts.end_functions;
            rows.push_back(go_row(entry, HP_UNW_END));
            // asmcgocall: the goroutine's frames above a call into C, from the g0 stack.
            if (name >= l.names && (name_is(t, name, "runtime.asmcgocall") ||
                                    name_is(t, name, "runtime.asmcgocall.abi0"))) {
                const CgoSwitch sw = cgo_switch(img.code, entry, next);
                if (sw.lo != 0) {
                    Row r = go_row(sw.lo, HP_UNW_GO_CGO);
                    r.rbp = HP_UNW_RBP_UNKNOWN;
                    r.cfa_off = sw.depth_off;
                    r.rbp_off = sw.g_off;
                    rows.push_back(r);
                    rows.push_back(go_row(sw.hi, HP_UNW_END));
                    ++out.counts.cgo_switches;
                }
            }
            continue;
        }

        // The first segment with a frame: the prologue's save of BP.
        Prologue pro;
        bool has_frame = false;
        for (const Segment& s : segs)
            if (s.delta > 0) {
                has_frame = true;
                pro = prologue(img.code, s);
                break;
            }
        if (pro.saved)
            ++out.counts.frames;
        else if (has_frame)
            ++out.counts.unknown_frames;
        // Compiled Go never uses BP for anything but the frame pointer; assembly may.
        const bool asm_code = (flag & kFlagAsm) != 0 || l.magic == kMagic12 || l.magic == kMagic116;

        bool invalid = false;
        for (const Segment& s : segs) {
            const bool saved = pro.saved && s.delta >= 8;
            if (s.delta < 0) {
                rows.push_back(go_row(s.lo, HP_UNW_INVALID));
                invalid = true;
                continue;
            }
            if (s.delta + 8 > std::numeric_limits<int16_t>::max()) {
                // A frame too large for an rsp offset: CFA = rbp + 16 once the frame pointer
                // is set up, but not from the epilogue's restore of BP to its ADDQ.
                if (!saved || !pro.framed || asm_code || s.hi <= pro.framed) {
                    rows.push_back(go_row(s.lo, HP_UNW_INVALID));
                    invalid = true;
                    continue;
                }
                if (s.lo < pro.framed)
                    rows.push_back(go_row(s.lo, HP_UNW_INVALID));
                Row r = go_row(std::max(s.lo, pro.framed), HP_UNW_CFA_RBP);
                r.cfa_off = 16;
                r.rbp = HP_UNW_RBP_OFFSET;
                r.rbp_off = -16;
                rows.push_back(r);
                // ... MOVQ n-8(SP), BP; ADDQ $n, SP (48 81 c4 imm32) ending the segment.
                const uint8_t* add = s.hi - s.lo >= 15 ? code_at(img.code, s.hi - 7, 7) : nullptr;
                if (!pro.push && add && add[0] == 0x48 && add[1] == 0x81 && add[2] == 0xc4 &&
                    int64_t(le32(add + 3)) == s.delta) {
                    for (uint64_t len : {4, 5, 8})
                        if (sp_disp_insn(img.code, s.hi - 7 - len, 0x8b, s.delta - 8) == len &&
                            s.hi - 7 - len > r.pc) {
                            rows.push_back(go_row(s.hi - 7 - len, HP_UNW_INVALID));
                            break;
                        }
                }
                continue;
            }
            Row r = go_row(s.lo, HP_UNW_CFA_RSP);
            r.cfa_off = int16_t(s.delta + 8);
            if (saved && s.hi > pro.saved) {
                if (s.lo < pro.saved)
                    rows.push_back(r); // the instruction before the save
                r.pc = std::max(s.lo, pro.saved);
                r.rbp = HP_UNW_RBP_OFFSET;
                r.rbp_off = -16;
            }
            rows.push_back(r);
        }
        out.counts.invalid_ranges += invalid;
    }
    // After the last function (the table's end of text): nothing known.
    const uint64_t etext = entry_at(l.nfunc);
    if (etext < prev_end)
        return corrupt("the last function runs past the end of text");
    if (etext - entry_at(0) > opt.max_text)
        return corrupt("text larger than the limit");
    rows.push_back(go_row(prev_end ? prev_end : etext, HP_UNW_NONE));
    normalize(rows);
    rows.shrink_to_fit();
    return out;
}

namespace {

struct ElfView {
    const uint8_t* raw = nullptr;
    size_t size = 0;
    struct Load {
        uint64_t vaddr, off, filesz;
        bool exec;
    };
    std::vector<Load> loads;

    const uint8_t* at_vaddr(uint64_t addr, uint64_t len) const {
        for (const Load& s : loads)
            if (addr >= s.vaddr && addr - s.vaddr <= s.filesz && len <= s.filesz - (addr - s.vaddr))
                return raw + s.off + (addr - s.vaddr);
        return nullptr;
    }
};

struct Section {
    uint64_t addr = 0, off = 0, size = 0;
    bool found = false;
};

bool section_bytes(const ElfView& v, const Section& s) {
    return s.found && s.off <= v.size && s.size <= v.size - s.off;
}

uint64_t symbol_value(Elf* elf, std::string_view want) {
    Elf_Scn* scn = nullptr;
    while ((scn = elf_nextscn(elf, scn)) != nullptr) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB || sh.sh_entsize == 0)
            continue;
        Elf_Data* d = elf_getdata(scn, nullptr);
        if (!d)
            continue;
        const size_t n = std::min<size_t>(sh.sh_size / sh.sh_entsize, size_t{1} << 24);
        for (size_t i = 0; i < n; ++i) {
            GElf_Sym sym;
            if (!gelf_getsym(d, int(i), &sym))
                break;
            const char* name = elf_strptr(elf, sh.sh_link, sym.st_name);
            if (name && want == name)
                return sym.st_value;
        }
    }
    return 0;
}

// The Go version from .go.buildinfo: "\xff Go buildinf:", pointer size, flags; then (1.18+,
// flags & 2) varint-prefixed strings inline at 32, else pointers to string headers at 16.
std::string buildinfo_version(const ElfView& v, const Section& s) {
    if (!section_bytes(v, s) || s.size < 32)
        return {};
    const uint8_t* b = v.raw + s.off;
    if (std::memcmp(b, "\xff Go buildinf:", 14) != 0 || b[14] != 8)
        return {};
    if (b[15] & 2) {
        View t{b, size_t(s.size)};
        uint64_t off = 32;
        uint32_t len = 0;
        if (!uvarint(t, off, t.n, len) || len > 64 || !t.has(off, len))
            return {};
        return std::string(reinterpret_cast<const char*>(b + off), len);
    }
    if (b[15] & 1)
        return {}; // big-endian
    const uint8_t* hdr = v.at_vaddr(le64(b + 16), 16);
    if (!hdr)
        return {};
    const uint64_t len = le64(hdr + 8);
    const uint8_t* str = len <= 64 ? v.at_vaddr(le64(hdr), len) : nullptr;
    return str ? std::string(reinterpret_cast<const char*>(str), len) : std::string();
}

// Without section headers: the table's header in the loadable, non-executable bytes.
bool scan_for_table(const ElfView& v, Section& out) {
    for (const ElfView::Load& s : v.loads) {
        if (s.exec || s.off > v.size)
            continue;
        const uint64_t n = std::min<uint64_t>(s.filesz, v.size - s.off);
        const uint8_t* base = v.raw + s.off;
        for (uint64_t o = 0; o + 16 <= n; o += 8) {
            const uint32_t m = le32(base + o);
            if ((m != kMagic116 && m != kMagic118 && m != kMagic120 && m != kMagic12) ||
                base[o + 4] != 0 || base[o + 5] != 0 || base[o + 6] != 1 || base[o + 7] != 8)
                continue;
            View t{base + o, size_t(n - o)};
            if (!parse_header(t, 0))
                continue;
            out = {s.vaddr + o, s.off + o, n - o, true};
            return true;
        }
    }
    return false;
}

} // namespace

Result<GoTable> build_go_rows(Elf* elf, const std::string& name, const GoOptions& opt) {
    if (!elf || elf_kind(elf) != ELF_K_ELF)
        return Error{ENOENT, name + ": not an ELF file"};
    GElf_Ehdr eh;
    if (!gelf_getehdr(elf, &eh))
        return Error{EINVAL, name + ": " + elf_errmsg(-1)};
    ElfView v;
    size_t raw_size = 0;
    v.raw = reinterpret_cast<const uint8_t*>(elf_rawfile(elf, &raw_size));
    v.size = raw_size;
    if (!v.raw)
        return Error{EINVAL, name + ": " + elf_errmsg(-1)};
    size_t nph = 0;
    if (elf_getphdrnum(elf, &nph) == 0) {
        for (size_t i = 0; i < nph && i < 4096; ++i) {
            GElf_Phdr ph;
            if (!gelf_getphdr(elf, int(i), &ph) || ph.p_type != PT_LOAD || ph.p_offset > v.size)
                continue;
            v.loads.push_back({ph.p_vaddr, ph.p_offset,
                               std::min<uint64_t>(ph.p_filesz, v.size - ph.p_offset),
                               (ph.p_flags & PF_X) != 0});
        }
    }

    Section pcln, text, buildinfo;
    size_t shstrndx = 0;
    if (elf_getshdrstrndx(elf, &shstrndx) == 0) {
        Elf_Scn* scn = nullptr;
        for (size_t k = 0; k < 65536 && (scn = elf_nextscn(elf, scn)) != nullptr; ++k) {
            GElf_Shdr sh;
            if (!gelf_getshdr(scn, &sh))
                continue;
            const char* n = elf_strptr(elf, shstrndx, sh.sh_name);
            if (!n)
                continue;
            const std::string_view sn(n);
            const Section s{sh.sh_addr, sh.sh_offset, sh.sh_size, sh.sh_type != SHT_NOBITS};
            if (sn == ".gopclntab" || sn == ".data.rel.ro.gopclntab")
                pcln = s;
            else if (sn == ".text")
                text = s;
            else if (sn == ".go.buildinfo")
                buildinfo = s;
        }
    }
    if (!section_bytes(v, pcln) && !(opt.scan && scan_for_table(v, pcln)))
        return Error{ENOENT, name + ": no .gopclntab (not a Go binary)"};
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
        eh.e_machine != EM_X86_64)
        return Error{ENOTSUP, name + ": a Go binary, not for amd64"};

    GoImage img;
    img.pclntab = v.raw + pcln.off;
    img.pclntab_size = pcln.size;
    img.pclntab_addr = pcln.addr;
    for (const ElfView::Load& s : v.loads)
        if (s.exec)
            img.code.push_back({s.vaddr, v.raw + s.off, s.filesz});
    // 1.18+: entries are offsets from runtime.text, which the header holds (or, in a PIE,
    // maybe only its relocation does: then the symbol, else .text's start).
    if (pcln.size >= 32 && (le32(img.pclntab) == kMagic118 || le32(img.pclntab) == kMagic120) &&
        le64(img.pclntab + 24) == 0) {
        img.text_start = symbol_value(elf, "runtime.text");
        if (!img.text_start)
            img.text_start = text.addr;
    }
    auto r = decode_pclntab(img, opt);
    if (!r)
        return Error{r.error().err, name + ": " + r.error().context};
    // The functions must be code of this file.
    if (!img.code.empty() && r->rows.size() > 1 && !v.at_vaddr(r->rows.front().pc, 1))
        return Error{EINVAL, name + ": gopclntab: functions outside the file's segments"};
    r->version = buildinfo_version(v, buildinfo);
    return r;
}

Result<GoTable> build_go_rows(int fd, const std::string& name, const GoOptions& opt) {
    if (elf_version(EV_CURRENT) == EV_NONE)
        return Error{0, std::string("libelf: ") + elf_errmsg(-1)};
    Elf* e = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
    if (!e)
        return Error{EINVAL, name + ": " + elf_errmsg(-1)};
    auto r = build_go_rows(e, name, opt);
    elf_end(e);
    return r;
}

Result<GoTable> build_go_rows(const std::string& path, const GoOptions& opt) {
    auto f = ElfFile::open(path);
    if (!f)
        return f.error();
    return build_go_rows(f->elf(), path, opt);
}

} // namespace hostprof::unwind
