#include "unwind/python.h"

#include <fcntl.h>
#include <gelf.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <fstream>
#include <sstream>
#include <string_view>

#include "common/elf_handle.h"
#include "symbolizer/parsers.h"

namespace hostprof::unwind {

std::string PythonVersion::str() const {
    return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(micro);
}

// ---- offsets -------------------------------------------------------------------------------

namespace {

// CPython 3.11 (x86-64), from /usr/include/python3.11 with Py_BUILD_CORE (offsetof); the
// unit test recompiles the check against the installed headers.
constexpr PythonOffsets kPython311 = [] {
    PythonOffsets o;
    o.runtime_interpreters_head = 40;
    o.runtime_tstate_current = 576;
    o.runtime_autotss_key = 592;
    o.runtime_size = 166688;
    o.interp_next = 0;
    o.interp_threads_head = 16;
    o.tstate_next = 8;
    o.tstate_interp = 16;
    o.tstate_cframe = 56;
    o.tstate_thread_id = 152;
    o.tstate_native_thread_id = 160;
    o.cframe_current_frame = 8;
    o.frame_code = 32;
    o.frame_previous = 48;
    o.frame_prev_instr = 56;
    o.frame_is_entry = 68;
    o.frame_owner = 69;
    o.code_filename = 112;
    o.code_name = 120;
    o.code_qualname = 128;
    o.code_firstlineno = 72;
    o.code_linetable = 136;
    o.code_code = 184;
    o.object_type = 8;
    o.varobject_size = 16;
    o.bytes_data = 32;
    o.unicode_length = 16;
    o.unicode_state = 32;
    o.unicode_ascii_data = 48;
    o.unicode_compact_data = 72;
    o.codeunit_size = 2;
    return o;
}();

} // namespace

Result<PythonOffsets> python_offsets(int major, int minor) {
    if (major == 3 && minor == 11)
        return kPython311;
    std::string v = std::to_string(major) + "." + std::to_string(minor);
    if (major == 3 && minor < 11)
        return Error{ENOTSUP, "CPython " + v +
                                  ": not supported (before 3.11 frames are PyFrameObjects, "
                                  "not _PyInterpreterFrames; no offsets table yet)"};
    if (major == 3 && minor >= 12)
        return Error{ENOTSUP, "CPython " + v +
                                  ": not supported (no offsets table yet: 3.12 moved the "
                                  "thread state's cframe and the frame's code field)"};
    return Error{ENOTSUP, "CPython " + v + ": not supported"};
}

bool PythonRuntime::bias_for(uint64_t start, uint64_t offset, uint64_t& bias) const {
    for (const PythonSegment& s : segments) {
        const uint64_t seg_lo = s.offset & ~0xfffULL;
        if (offset >= seg_lo && offset < s.offset + s.filesz) {
            bias = start - offset + s.offset - s.vaddr;
            return true;
        }
    }
    return false;
}

// ---- detection -----------------------------------------------------------------------------

namespace {

struct Sym {
    uint64_t value = 0, size = 0;
    size_t shndx = 0;
    bool found = false;
};

// Looks `names` up in the symbol tables of `type` (SHT_DYNSYM or SHT_SYMTAB); false when the
// file has none of that type.
bool scan_symbols(Elf* elf, uint32_t type, const char* const* names, Sym* out, size_t n) {
    bool any = false;
    for (Elf_Scn* scn = nullptr; (scn = elf_nextscn(elf, scn)) != nullptr;) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != type || sh.sh_entsize == 0)
            continue;
        Elf_Data* d = elf_getdata(scn, nullptr);
        if (!d)
            continue;
        any = true;
        const size_t count = d->d_size / sh.sh_entsize;
        for (size_t i = 0; i < count; ++i) {
            GElf_Sym s;
            if (!gelf_getsym(d, static_cast<int>(i), &s) || s.st_shndx == SHN_UNDEF)
                continue;
            const char* nm = elf_strptr(elf, sh.sh_link, s.st_name);
            if (!nm || (nm[0] != '_' && nm[0] != 'P'))
                continue;
            for (size_t k = 0; k < n; ++k)
                if (!out[k].found && std::strcmp(nm, names[k]) == 0)
                    out[k] = Sym{s.st_value, s.st_size, s.st_shndx, true};
        }
    }
    return any;
}

// Looks `names` up, names[0] first: in .dynsym, and in .symtab only when the file has no
// .dynsym (a static program) or names[0] was found and another is missing. Every file a
// process maps is asked: a program or library with dynamic symbols and no _PyRuntime among
// them is no CPython (one that loads extension modules exports it), and its .symtab (often
// the larger table) is not read.
void find_symbols(Elf* elf, const char* const* names, Sym* out, size_t n) {
    const bool dynamic = scan_symbols(elf, SHT_DYNSYM, names, out, n);
    if (dynamic && !out[0].found)
        return;
    for (size_t k = 0; k < n; ++k)
        if (!out[k].found) {
            scan_symbols(elf, SHT_SYMTAB, names, out, n);
            return;
        }
}

// Bytes at a file address inside section `shndx`.
bool read_at(Elf* elf, size_t shndx, uint64_t addr, void* buf, size_t size) {
    Elf_Scn* scn = elf_getscn(elf, shndx);
    GElf_Shdr sh;
    if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS)
        return false;
    if (addr < sh.sh_addr || addr - sh.sh_addr > sh.sh_size ||
        size > sh.sh_size - (addr - sh.sh_addr))
        return false;
    Elf_Data* d = elf_getdata(scn, nullptr);
    if (!d || !d->d_buf || d->d_size < sh.sh_size)
        return false;
    std::memcpy(buf, static_cast<const char*>(d->d_buf) + (addr - sh.sh_addr), size);
    return true;
}

// "3.N.M" followed by NUL or a release tag ("3.10.12", "3.12.0rc1", "3.9.2+"): the
// PY_VERSION string, in .rodata (no Py_Version symbol before 3.11).
bool version_from_rodata(Elf* elf, PythonVersion& v) {
    size_t shstrndx = 0;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return false;
    for (Elf_Scn* scn = nullptr; (scn = elf_nextscn(elf, scn)) != nullptr;) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS)
            continue;
        const char* nm = elf_strptr(elf, shstrndx, sh.sh_name);
        if (!nm || std::strcmp(nm, ".rodata") != 0)
            continue;
        Elf_Data* d = elf_getdata(scn, nullptr);
        if (!d || !d->d_buf)
            return false;
        std::string_view all(static_cast<const char*>(d->d_buf), d->d_size);
        for (size_t pos = 0; pos < all.size();) {
            size_t end = all.find('\0', pos);
            if (end == std::string_view::npos)
                end = all.size();
            std::string_view s = all.substr(pos, end - pos);
            pos = end + 1;
            // Must start a string: preceded by NUL (we split on NULs) and be short.
            if (s.size() < 5 || s.size() > 16 || s.substr(0, 2) != "3.")
                continue;
            int mi = 0, mc = 0;
            size_t i = 2, n1 = 0, n2 = 0;
            while (i < s.size() && s[i] >= '0' && s[i] <= '9' && n1 < 3)
                mi = mi * 10 + (s[i++] - '0'), ++n1;
            if (n1 == 0 || i >= s.size() || s[i] != '.')
                continue;
            ++i;
            while (i < s.size() && s[i] >= '0' && s[i] <= '9' && n2 < 3)
                mc = mc * 10 + (s[i++] - '0'), ++n2;
            if (n2 == 0)
                continue;
            std::string_view tail = s.substr(i);
            bool ok = tail.empty() || tail == "+" || tail.rfind('a', 0) == 0 ||
                      tail.rfind('b', 0) == 0 || tail.rfind("rc", 0) == 0;
            if (!ok)
                continue;
            v = PythonVersion{3, mi, mc};
            return true;
        }
        return false;
    }
    return false;
}

} // namespace

Result<PythonRuntime> detect_python(Elf* elf, const std::string& name, PythonVersion* version) {
    if (!elf || elf_kind(elf) != ELF_K_ELF)
        return Error{EINVAL, name + ": not an ELF file"};
    GElf_Ehdr eh;
    if (!gelf_getehdr(elf, &eh))
        return Error{EINVAL, name + ": " + elf_errmsg(-1)};
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
        eh.e_machine != EM_X86_64)
        return Error{ENOTSUP, name + ": not an x86-64 ELF64 file"};

    static const char* const kNames[] = {"_PyRuntime", "Py_Version", "_PyEval_EvalFrameDefault"};
    Sym syms[3];
    find_symbols(elf, kNames, syms, 3);
    if (!syms[0].found)
        return Error{ENOENT, name + ": no _PyRuntime symbol (not a CPython interpreter)"};

    PythonRuntime rt;
    rt.runtime_addr = syms[0].value;
    rt.runtime_size = syms[0].size;
    uint64_t hex = 0;
    if (syms[1].found && syms[1].size == 8 && read_at(elf, syms[1].shndx, syms[1].value, &hex, 8)) {
        rt.version = PythonVersion{static_cast<int>((hex >> 24) & 0xff),
                                   static_cast<int>((hex >> 16) & 0xff),
                                   static_cast<int>((hex >> 8) & 0xff)};
        rt.version_source = "Py_Version";
    } else if (version_from_rodata(elf, rt.version)) {
        rt.version_source = ".rodata string";
    } else {
        return Error{ENOTSUP, name + ": CPython of an unknown version (no Py_Version, no "
                                     "version string)"};
    }
    if (version != nullptr)
        *version = rt.version;
    if (syms[2].found && syms[2].size > 0) {
        rt.eval_addr = syms[2].value;
        rt.eval_size = syms[2].size;
    }
    auto off = python_offsets(rt.version.major, rt.version.minor);
    if (!off)
        return Error{ENOTSUP, name + ": " + off.error().context};
    rt.offsets = *off;
    // The symbol's size is sizeof(_PyRuntimeState): a build with another layout (a debug
    // build, another configure) is refused rather than read wrongly.
    if (rt.runtime_size != rt.offsets.runtime_size)
        return Error{ENOTSUP, name + ": CPython " + rt.version.str() + ": _PyRuntime is " +
                                  std::to_string(rt.runtime_size) + " bytes, the table expects " +
                                  std::to_string(rt.offsets.runtime_size) +
                                  " (a build with another layout)"};

    size_t nph = 0;
    if (elf_getphdrnum(elf, &nph) != 0)
        return Error{EINVAL, name + ": " + elf_errmsg(-1)};
    for (size_t i = 0; i < nph; ++i) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf, static_cast<int>(i), &ph) && ph.p_type == PT_LOAD)
            rt.segments.push_back({ph.p_vaddr, ph.p_offset, ph.p_filesz});
    }
    return rt;
}

Result<PythonRuntime> detect_python(int fd, const std::string& name, PythonVersion* version) {
    if (elf_version(EV_CURRENT) == EV_NONE)
        return Error{0, std::string("libelf: ") + elf_errmsg(-1)};
    Elf* e = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
    if (!e)
        return Error{EINVAL, name + ": " + elf_errmsg(-1)};
    auto r = detect_python(e, name, version);
    elf_end(e);
    return r;
}

Result<PythonRuntime> detect_python(const std::string& path) {
    auto f = ElfFile::open(path);
    if (!f)
        return f.error();
    return detect_python(f->elf(), path);
}

// ---- line table ----------------------------------------------------------------------------

namespace {

// 6-bit chunks, least significant first, 0x40 = more follow (Objects/locations.md).
bool read_varint(std::span<const uint8_t> t, size_t& i, uint64_t& v) {
    v = 0;
    for (unsigned shift = 0; shift < 64; shift += 6) {
        if (i >= t.size())
            return false;
        const uint8_t b = t[i++];
        v |= static_cast<uint64_t>(b & 63) << shift;
        if (!(b & 64))
            return true;
    }
    return false;
}

bool read_svarint(std::span<const uint8_t> t, size_t& i, int64_t& v) {
    uint64_t u = 0;
    if (!read_varint(t, i, u))
        return false;
    v = (u & 1) ? -static_cast<int64_t>(u >> 1) : static_cast<int64_t>(u >> 1);
    return true;
}

} // namespace

int python_addr_to_line(std::span<const uint8_t> t, int firstlineno, int64_t addrq) {
    if (addrq < 0)
        return firstlineno;
    int64_t line = firstlineno;
    int64_t addr = 0;
    size_t i = 0;
    while (i < t.size()) {
        const uint8_t first = t[i++];
        if (!(first & 0x80))
            return 0; // not at an entry's start: corrupt
        const int code = (first >> 3) & 15;
        const int64_t len = (first & 7) + 1; // code units
        bool no_line = false;
        int64_t delta = 0;
        uint64_t u = 0;
        switch (code) {
        case 15: // no location
            no_line = true;
            break;
        case 14: // long form: line delta, end line delta, start column, end column
            if (!read_svarint(t, i, delta) || !read_varint(t, i, u) || !read_varint(t, i, u) ||
                !read_varint(t, i, u))
                return 0;
            break;
        case 13: // no columns: line delta
            if (!read_svarint(t, i, delta))
                return 0;
            break;
        case 10:
        case 11:
        case 12: // one line: delta = code - 10, then start and end columns
            delta = code - 10;
            if (i + 2 > t.size())
                return 0;
            i += 2;
            break;
        default: // 0-9 short form: same line, one column byte
            if (i + 1 > t.size())
                return 0;
            i += 1;
            break;
        }
        line += delta;
        const int64_t end = addr + len * 2;
        if (addrq >= addr && addrq < end) {
            if (no_line || line < 0 || line > INT32_MAX)
                return 0;
            return static_cast<int>(line);
        }
        addr = end;
    }
    return 0;
}

// ---- process memory ------------------------------------------------------------------------

bool ProcessVmMemory::read(uint64_t addr, void* buf, size_t size) {
    if (size == 0)
        return true;
    iovec local{buf, size};
    iovec remote{reinterpret_cast<void*>(addr), size};
    const ssize_t n = process_vm_readv(pid_, &local, 1, &remote, 1, 0);
    return n == static_cast<ssize_t>(size);
}

Result<uint64_t> python_bias(const PythonRuntime& runtime, int pid, const std::string& path,
                             const std::string& proc_root) {
    const std::string maps_path = proc_root + "/" + std::to_string(pid) + "/maps";
    std::ifstream in(maps_path);
    if (!in)
        return errno_error("open " + maps_path);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    const sym::MapsParse maps = sym::parse_maps(text);
    for (const sym::MapEntry& e : maps.entries) {
        if (e.path != path)
            continue;
        uint64_t bias = 0;
        if (runtime.bias_for(e.start, e.offset, bias))
            return bias;
    }
    return Error{ENOENT, maps_path + ": no mapping of " + path};
}

// ---- reader --------------------------------------------------------------------------------

PythonReader::PythonReader(PythonRuntime runtime, uint64_t bias, ProcessMemory& mem,
                           PythonReaderOptions opt)
    : runtime_(std::move(runtime)), bias_(bias), mem_(mem), opt_(opt) {}

bool PythonReader::read_u64(uint64_t addr, uint64_t& v) {
    return mem_.read(addr, &v, 8);
}

Result<std::vector<PythonThread>> PythonReader::threads() {
    const PythonOffsets& o = runtime_.offsets;
    std::vector<PythonThread> out;
    uint64_t interp = 0;
    if (!read_u64(runtime_address() + o.runtime_interpreters_head, interp))
        return Error{EIO, "read _PyRuntime.interpreters.head"};
    size_t seen = 0;
    while (interp != 0) {
        uint64_t ts = 0;
        if (!read_u64(interp + o.interp_threads_head, ts))
            return Error{EIO, "read PyInterpreterState.threads.head"};
        while (ts != 0) {
            if (++seen > opt_.max_threads)
                return Error{ELOOP,
                             "more than " + std::to_string(opt_.max_threads) + " thread states"};
            PythonThread t;
            t.tstate = ts;
            uint64_t cframe = 0, next = 0;
            if (!read_u64(ts + o.tstate_thread_id, t.thread_id) ||
                !read_u64(ts + o.tstate_native_thread_id, t.native_thread_id) ||
                !read_u64(ts + o.tstate_cframe, cframe) || !read_u64(ts + o.tstate_next, next))
                return Error{EIO, "read PyThreadState"};
            if (cframe != 0 && !read_u64(cframe + o.cframe_current_frame, t.current_frame))
                return Error{EIO, "read _PyCFrame.current_frame"};
            out.push_back(t);
            ts = next;
        }
        if (!read_u64(interp + o.interp_next, interp))
            return Error{EIO, "read PyInterpreterState.next"};
        if (++seen > opt_.max_threads)
            return Error{ELOOP, "too many interpreters"};
    }
    return out;
}

Result<uint64_t> PythonReader::gil_holder() {
    uint64_t ts = 0;
    if (!read_u64(runtime_address() + runtime_.offsets.runtime_tstate_current, ts))
        return Error{EIO, "read _PyRuntime.gilstate.tstate_current"};
    return ts;
}

Result<std::vector<PythonFrame>> PythonReader::frames(uint64_t first) {
    const PythonOffsets& o = runtime_.offsets;
    std::vector<PythonFrame> out;
    for (uint64_t f = first; f != 0;) {
        if (out.size() >= opt_.max_frames)
            return Error{ELOOP, "more than " + std::to_string(opt_.max_frames) + " frames"};
        // One read of the frame's head: f_code .. owner.
        uint8_t buf[128];
        const size_t need = std::max<size_t>(std::initializer_list<size_t>{
            o.frame_code + 8u, o.frame_previous + 8u, o.frame_prev_instr + 8u, o.frame_owner + 1u,
            o.frame_is_entry + 1u});
        if (need > sizeof(buf) || !mem_.read(f, buf, need))
            return Error{EIO, "read _PyInterpreterFrame"};
        PythonFrame pf;
        pf.frame = f;
        uint64_t prev_instr = 0, previous = 0;
        std::memcpy(&pf.code, buf + o.frame_code, 8);
        std::memcpy(&previous, buf + o.frame_previous, 8);
        std::memcpy(&prev_instr, buf + o.frame_prev_instr, 8);
        pf.owner = buf[o.frame_owner];
        pf.is_entry = buf[o.frame_is_entry] != 0;
        // prev_instr - _PyCode_CODE(co), in bytes (_PyInterpreterFrame_LASTI * 2).
        const uint64_t code_start = pf.code + o.code_code;
        pf.instr = static_cast<int64_t>(prev_instr - code_start);
        out.push_back(pf);
        f = previous;
    }
    return out;
}

Result<std::string> PythonReader::read_unicode(uint64_t addr) {
    const PythonOffsets& o = runtime_.offsets;
    if (addr == 0)
        return std::string();
    int64_t length = 0;
    uint32_t state = 0;
    if (!mem_.read(addr + o.unicode_length, &length, 8) ||
        !mem_.read(addr + o.unicode_state, &state, 4))
        return Error{EIO, "read str header"};
    // 3.11 state: interned:2 kind:3 compact:1 ascii:1 ready:1.
    const unsigned kind = (state >> 2) & 7;
    const bool compact = (state >> 5) & 1;
    const bool ascii = (state >> 6) & 1;
    if (!compact || length < 0 || (kind != 1 && kind != 2 && kind != 4))
        return Error{EINVAL, "str object not compact or corrupt"};
    const uint64_t data = addr + (ascii ? o.unicode_ascii_data : o.unicode_compact_data);
    const size_t max_chars = opt_.max_string;
    const size_t n = std::min<uint64_t>(static_cast<uint64_t>(length), max_chars);
    std::vector<uint8_t> raw(n * kind);
    if (!raw.empty() && !mem_.read(data, raw.data(), raw.size()))
        return Error{EIO, "read str data"};
    std::string s;
    s.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        uint32_t c = 0;
        if (kind == 1)
            c = raw[i];
        else if (kind == 2)
            c = static_cast<uint32_t>(raw[2 * i] | (raw[2 * i + 1] << 8));
        else
            std::memcpy(&c, &raw[4 * i], 4);
        if (c < 0x80) {
            s += static_cast<char>(c);
        } else if (c < 0x800) {
            s += static_cast<char>(0xc0 | (c >> 6));
            s += static_cast<char>(0x80 | (c & 63));
        } else if (c < 0x10000) {
            s += static_cast<char>(0xe0 | (c >> 12));
            s += static_cast<char>(0x80 | ((c >> 6) & 63));
            s += static_cast<char>(0x80 | (c & 63));
        } else if (c < 0x110000) {
            s += static_cast<char>(0xf0 | (c >> 18));
            s += static_cast<char>(0x80 | ((c >> 12) & 63));
            s += static_cast<char>(0x80 | ((c >> 6) & 63));
            s += static_cast<char>(0x80 | (c & 63));
        } else {
            s += '?';
        }
        if (s.size() >= opt_.max_string)
            break;
    }
    return s;
}

Result<PythonCode> PythonReader::read_code(uint64_t addr) {
    const PythonOffsets& o = runtime_.offsets;
    PythonCode c;
    uint64_t qual = 0, name = 0, file = 0, lt = 0;
    int32_t first = 0;
    if (!read_u64(addr + o.code_qualname, qual) || !read_u64(addr + o.code_name, name) ||
        !read_u64(addr + o.code_filename, file) || !read_u64(addr + o.code_linetable, lt) ||
        !mem_.read(addr + o.code_firstlineno, &first, 4))
        return Error{EIO, "read PyCodeObject"};
    auto q = read_unicode(qual);
    if (!q)
        return Error{q.error().err, "co_qualname: " + q.error().context};
    auto n = read_unicode(name);
    if (!n)
        return Error{n.error().err, "co_name: " + n.error().context};
    auto f = read_unicode(file);
    if (!f)
        return Error{f.error().err, "co_filename: " + f.error().context};
    c.qualname = std::move(*q);
    c.name = std::move(*n);
    c.filename = std::move(*f);
    c.firstlineno = first;
    if (lt != 0) {
        int64_t size = 0;
        if (!mem_.read(lt + o.varobject_size, &size, 8))
            return Error{EIO, "read co_linetable"};
        if (size > 0 && static_cast<uint64_t>(size) <= opt_.max_linetable) {
            c.linetable.resize(static_cast<size_t>(size));
            if (!mem_.read(lt + o.bytes_data, c.linetable.data(), c.linetable.size()))
                return Error{EIO, "read co_linetable data"};
        }
    }
    return c;
}

Result<PythonCode> PythonReader::code(uint64_t addr) {
    auto it = index_.find(addr);
    if (it != index_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second);
        return it->second->second;
    }
    ++code_reads_;
    auto c = read_code(addr);
    if (!c)
        return c.error();
    lru_.emplace_front(addr, *c);
    index_[addr] = lru_.begin();
    while (lru_.size() > opt_.max_cached_codes && !lru_.empty()) {
        index_.erase(lru_.back().first);
        lru_.pop_back();
    }
    return c;
}

Result<int> PythonReader::line(const PythonFrame& f) {
    auto c = code(f.code);
    if (!c)
        return c.error();
    return python_addr_to_line(c->linetable, c->firstlineno, f.instr);
}

} // namespace hostprof::unwind
