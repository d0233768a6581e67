#include "symbolizer/line_table.h"

#include <dwarf.h>

#include <algorithm>
#include <limits>

#include "symbolizer/dwarf_reader.h"

namespace hostprof::sym {
namespace {

constexpr uint32_t kUnknownName = std::numeric_limits<uint32_t>::max();
constexpr uint32_t kMaxFileIndex = (1u << 31) - 1; // what fits the packed row field
constexpr size_t kMaxFiles = 1u << 24;

Error corrupt(const char* what) {
    return Error{0, std::string(".debug_line: ") + what};
}

// A string at `off` in a string section; false when out of range or unterminated.
bool string_at(std::span<const uint8_t> sec, uint64_t off, std::string_view& s) {
    if (off >= sec.size())
        return false;
    Reader r(sec.data() + off, sec.data() + sec.size(), false);
    return r.cstr(s);
}

// A directory or file name that may be unknown (absent DW_AT_comp_dir, strx forms).
struct Name {
    std::string_view s;
    bool known = false;
};

bool valid_entry_form(uint64_t form) {
    switch (form) {
    case DW_FORM_block:
    case DW_FORM_block1:
    case DW_FORM_block2:
    case DW_FORM_block4:
    case DW_FORM_data1:
    case DW_FORM_data2:
    case DW_FORM_data4:
    case DW_FORM_data8:
    case DW_FORM_data16:
    case DW_FORM_flag:
    case DW_FORM_line_strp:
    case DW_FORM_sdata:
    case DW_FORM_sec_offset:
    case DW_FORM_string:
    case DW_FORM_strp:
    case DW_FORM_strp_sup:
    case DW_FORM_strx:
    case DW_FORM_strx1:
    case DW_FORM_strx2:
    case DW_FORM_strx3:
    case DW_FORM_strx4:
    case DW_FORM_udata:
        return true;
    default:
        return false;
    }
}

struct EntryFormat {
    uint64_t content = 0;
    uint64_t form = 0;
};

// Reads one attribute value of a v5 directory/file entry. `want_string`: decode a name
// (DW_LNCT_path); `want_index`: decode an unsigned constant (DW_LNCT_directory_index).
// Everything else is skipped by its form's size.
Status read_entry_value(Reader& r, const LineSections& s, uint64_t form, size_t offset_size,
                        Name* name, uint64_t* index) {
    uint64_t v = 0;
    switch (form) {
    case DW_FORM_string: {
        std::string_view str;
        if (!r.cstr(str))
            return corrupt("unterminated entry string");
        if (name != nullptr)
            *name = {str, true};
        return {};
    }
    case DW_FORM_line_strp:
    case DW_FORM_strp: {
        if (!r.uint(offset_size, v))
            return corrupt("truncated string offset");
        if (name != nullptr) {
            std::string_view str;
            if (!string_at(form == DW_FORM_strp ? s.debug_str : s.debug_line_str, v, str))
                return corrupt("string offset out of range");
            *name = {str, true};
        }
        return {};
    }
    case DW_FORM_strp_sup:
    case DW_FORM_sec_offset:
        if (!r.uint(offset_size, v))
            return corrupt("truncated offset");
        return {}; // a name in a supplementary file: unknown here
    case DW_FORM_strx:
        if (!r.uleb(v))
            return corrupt("truncated strx");
        return {}; // needs .debug_str_offsets and the CU's base: unknown
    case DW_FORM_strx1:
    case DW_FORM_strx2:
    case DW_FORM_strx3:
    case DW_FORM_strx4:
        if (!r.uint(form - DW_FORM_strx1 + 1, v))
            return corrupt("truncated strx");
        return {};
    case DW_FORM_udata:
        if (!r.uleb(v))
            return corrupt("truncated udata");
        break;
    case DW_FORM_sdata: {
        int64_t sv = 0;
        if (!r.sleb(sv))
            return corrupt("truncated sdata");
        v = static_cast<uint64_t>(sv);
        break;
    }
    case DW_FORM_data1:
    case DW_FORM_flag:
        if (!r.uint(1, v))
            return corrupt("truncated data");
        break;
    case DW_FORM_data2:
        if (!r.uint(2, v))
            return corrupt("truncated data");
        break;
    case DW_FORM_data4:
        if (!r.uint(4, v))
            return corrupt("truncated data");
        break;
    case DW_FORM_data8:
        if (!r.uint(8, v))
            return corrupt("truncated data");
        break;
    case DW_FORM_data16:
        if (!r.skip(16))
            return corrupt("truncated data16");
        if (index != nullptr)
            return corrupt("directory index in data16");
        return {};
    case DW_FORM_block:
    case DW_FORM_block1:
    case DW_FORM_block2:
    case DW_FORM_block4: {
        bool ok = false;
        if (form == DW_FORM_block)
            ok = r.uleb(v);
        else
            ok = r.uint(form == DW_FORM_block1 ? 1 : form == DW_FORM_block2 ? 2 : 4, v);
        if (!ok || !r.skip(v))
            return corrupt("truncated block");
        if (index != nullptr)
            return corrupt("directory index in a block");
        return {};
    }
    default:
        return corrupt("unsupported entry form");
    }
    if (index != nullptr)
        *index = v;
    return {};
}

Status read_entry_formats(Reader& r, std::vector<EntryFormat>& formats) {
    uint8_t count = 0;
    if (!r.u8(count))
        return corrupt("truncated entry format count");
    formats.resize(count);
    for (EntryFormat& f : formats) {
        if (!r.uleb(f.content) || !r.uleb(f.form))
            return corrupt("truncated entry format");
        if (!valid_entry_form(f.form))
            return corrupt("invalid entry form");
    }
    return {};
}

// The header fields the line-number program needs.
struct Header {
    uint16_t version = 0;
    size_t offset_size = 4;
    uint8_t address_size = 0; // 0: from each DW_LNE_set_address's length
    uint8_t min_inst_length = 1;
    uint8_t max_ops = 1;
    bool default_is_stmt = true;
    int8_t line_base = 0;
    uint8_t line_range = 0;
    uint8_t opcode_base = 0;
    const uint8_t* std_lengths = nullptr; // [opcode - 1] for 1 <= opcode < opcode_base
    std::vector<Name> dirs;
};

// The number of operands each known standard opcode takes (DWARF 5, 6.2.5.2).
constexpr uint8_t kStdOperands[] = {0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1};

} // namespace

Result<LineTable> LineTable::parse(const LineSections& s, uint64_t stmt_list_offset,
                                   std::string_view comp_dir, uint8_t address_size_hint) {
    const std::span<const uint8_t> sec = s.debug_line;
    if (stmt_list_offset >= sec.size())
        return corrupt("stmt_list offset out of range");
    Reader r(sec.data() + stmt_list_offset, sec.data() + sec.size(), s.big_endian);

    // Unit header.
    Header h;
    uint64_t unit_length = 0;
    if (!r.uint(4, unit_length))
        return corrupt("truncated unit length");
    if (unit_length == 0xffffffff) {
        h.offset_size = 8;
        if (!r.uint(8, unit_length))
            return corrupt("truncated unit length");
    } else if (unit_length >= 0xfffffff0) {
        return corrupt("reserved unit length");
    }
    if (unit_length > r.left())
        return corrupt("unit length beyond the section");
    r.set_end(r.pos() + unit_length);

    uint64_t v = 0;
    if (!r.uint(2, v))
        return corrupt("truncated version");
    h.version = static_cast<uint16_t>(v);
    if (h.version < 2 || h.version > 5)
        return corrupt("unsupported version");
    h.address_size = address_size_hint;
    if (h.version >= 5) {
        uint8_t asz = 0;
        uint8_t seg = 0;
        if (!r.u8(asz) || !r.u8(seg))
            return corrupt("truncated header");
        if (seg != 0 || asz == 0 || asz > 8 || (address_size_hint != 0 && asz != address_size_hint))
            return corrupt("unsupported address or segment selector size");
        h.address_size = asz;
    }
    if (h.address_size > 8)
        return corrupt("unsupported address size");
    uint64_t header_length = 0;
    if (!r.uint(h.offset_size, header_length))
        return corrupt("truncated header length");
    if (header_length > r.left())
        return corrupt("header length beyond the unit");
    const uint8_t* program = r.pos() + header_length;

    uint8_t b = 0;
    if (!r.u8(h.min_inst_length))
        return corrupt("truncated header");
    if (h.version >= 4) {
        if (!r.u8(h.max_ops))
            return corrupt("truncated header");
        if (h.max_ops == 0)
            return corrupt("maximum_operations_per_instruction is 0");
    }
    if (!r.u8(b))
        return corrupt("truncated header");
    h.default_is_stmt = b != 0;
    if (!r.u8(b))
        return corrupt("truncated header");
    h.line_base = static_cast<int8_t>(b);
    if (!r.u8(h.line_range) || !r.u8(h.opcode_base))
        return corrupt("truncated header");
    if (h.opcode_base == 0)
        return corrupt("opcode_base is 0");
    h.std_lengths = r.pos();
    if (!r.skip(h.opcode_base - 1u))
        return corrupt("truncated standard_opcode_lengths");

    LineTable t;
    // Names as libdw composes them: absolute names as they are, relative ones joined to
    // their directory with '/', or left relative when the directory is unknown.
    auto add_file = [&t, &h](Name name, uint64_t dir) -> Status {
        if (t.file_offsets_.size() >= kMaxFiles)
            return corrupt("too many files");
        if (dir >= h.dirs.size())
            return corrupt("directory index out of range");
        if (!name.known) {
            t.file_offsets_.push_back(kUnknownName);
            return {};
        }
        t.file_offsets_.push_back(static_cast<uint32_t>(t.names_.size()));
        if ((name.s.empty() || name.s.front() != '/') && h.dirs[dir].known) {
            t.names_.append(h.dirs[dir].s);
            t.names_.push_back('/');
        }
        t.names_.append(name.s);
        t.names_.push_back('\0');
        if (t.names_.size() >= kUnknownName)
            return corrupt("file names too long");
        return {};
    };

    if (h.version < 5) {
        // Directory 0 is the compilation directory, absent when the CU has none.
        h.dirs.push_back({comp_dir, comp_dir.data() != nullptr});
        for (;;) {
            std::string_view dir;
            if (!r.cstr(dir))
                return corrupt("unterminated include_directories");
            if (dir.empty())
                break;
            if (h.dirs.size() >= kMaxFiles)
                return corrupt("too many directories");
            h.dirs.push_back({dir, true});
        }
        // File 0 does not exist before DWARF 5: libdw names it "???".
        t.names_ = "???";
        t.names_.push_back('\0');
        t.file_offsets_.push_back(0);
        for (;;) {
            std::string_view name;
            if (!r.cstr(name))
                return corrupt("unterminated file_names");
            if (name.empty())
                break;
            uint64_t dir = 0;
            uint64_t ignored = 0;
            if (!r.uleb(dir) || !r.uleb(ignored) || !r.uleb(ignored))
                return corrupt("truncated file entry");
            if (Status st = add_file({name, true}, dir); !st)
                return st.error();
        }
    } else {
        std::vector<EntryFormat> formats;
        if (Status st = read_entry_formats(r, formats); !st)
            return st.error();
        size_t path_form = formats.size();
        for (size_t i = 0; i < formats.size(); ++i)
            if (formats[i].content == DW_LNCT_path)
                path_form = i;
        if (!formats.empty() && path_form == formats.size())
            return corrupt("directory entries without DW_LNCT_path");
        uint64_t count = 0;
        if (!r.uleb(count))
            return corrupt("truncated directories_count");
        if ((formats.empty() && count != 0) ||
            (!formats.empty() && count > r.left() / formats.size()))
            return corrupt("directories_count too large");
        for (uint64_t n = 0; n < count; ++n) {
            Name dir;
            for (size_t m = 0; m < formats.size(); ++m)
                if (Status st = read_entry_value(r, s, formats[m].form, h.offset_size,
                                                 m == path_form ? &dir : nullptr, nullptr);
                    !st)
                    return st.error();
            h.dirs.push_back(dir);
        }

        if (Status st = read_entry_formats(r, formats); !st)
            return st.error();
        path_form = formats.size();
        size_t index_form = formats.size();
        for (size_t i = 0; i < formats.size(); ++i) {
            if (formats[i].content == DW_LNCT_path)
                path_form = i;
            else if (formats[i].content == DW_LNCT_directory_index)
                index_form = i;
        }
        if (!formats.empty() && (path_form == formats.size() || index_form == formats.size()))
            return corrupt("file entries without DW_LNCT_path or DW_LNCT_directory_index");
        if (!r.uleb(count))
            return corrupt("truncated file_names_count");
        if ((formats.empty() && count != 0) ||
            (!formats.empty() && count > r.left() / formats.size()))
            return corrupt("file_names_count too large");
        for (uint64_t n = 0; n < count; ++n) {
            Name name;
            uint64_t dir = 0;
            for (size_t m = 0; m < formats.size(); ++m)
                if (Status st = read_entry_value(r, s, formats[m].form, h.offset_size,
                                                 m == path_form ? &name : nullptr,
                                                 m == index_form ? &dir : nullptr);
                    !st)
                    return st.error();
            if (Status st = add_file(name, dir); !st)
                return st.error();
        }
        if (count == 0) { // libdw's placeholder for file 0
            t.file_offsets_.push_back(static_cast<uint32_t>(t.names_.size()));
            t.names_.append("???");
            t.names_.push_back('\0');
        }
    }

    // NVIDIA CUBINs put a 4-byte .debug_str offset at the end of the header; vendor
    // extensions may leave bytes we do not know: the program starts at header_length.
    if (r.pos() > program)
        return corrupt("header entries overrun header_length");
    r.seek(program);

    // The line-number program, run twice: once to count the rows, then to store them in
    // a vector of exactly that size (no growth slack, no reallocation copies).
    const uint8_t* const program_end = r.end();
    size_t count = 0;
    for (int pass = 0; pass < 2; ++pass) {
        const bool fill = pass == 1;
        if (fill)
            t.rows_.reserve(count);
        r.seek(program);

        uint64_t addr = 0;
        uint64_t op_index = 0;
        uint64_t file = 1;
        uint64_t line = 1; // modulo 2^64: libdw's int line is its low 32 bits
        const auto reset = [&] {
            addr = 0;
            op_index = 0;
            file = 1;
            line = 1;
        };
        const auto advance = [&](uint64_t op_advance) {
            if (h.max_ops == 1) {
                addr += h.min_inst_length * op_advance;
            } else {
                addr += h.min_inst_length * ((op_index + op_advance) / h.max_ops);
                op_index = (op_index + op_advance) % h.max_ops;
            }
        };
        size_t rows = 0;
        const auto emit = [&](bool end_sequence) -> bool {
            if (++rows > kMaxRows)
                return false;
            if (fill) {
                const uint32_t f = static_cast<uint32_t>(std::min<uint64_t>(file, kMaxFileIndex));
                t.rows_.push_back(
                    Row{addr, static_cast<uint32_t>(line), (f << 1) | (end_sequence ? 1u : 0u)});
            }
            return true;
        };

        while (r.pos() < program_end) {
            uint8_t op = 0;
            (void)r.u8(op);
            if (op >= h.opcode_base) { // special opcode
                if (h.line_range == 0)
                    return corrupt("special opcode with line_range 0");
                const unsigned adj = op - h.opcode_base;
                line += static_cast<uint64_t>(h.line_base + static_cast<int>(adj % h.line_range));
                advance(adj / h.line_range);
                if (!emit(false))
                    return corrupt("too many rows");
                continue;
            }
            if (op == 0) { // extended opcode
                uint64_t len = 0;
                if (!r.uleb(len) || len == 0 || len > r.left())
                    return corrupt("bad extended opcode length");
                const uint8_t* ext_end = r.pos() + len;
                uint8_t sub = 0;
                (void)r.u8(sub);
                Reader operands(r.pos(), ext_end, s.big_endian);
                switch (sub) {
                case DW_LNE_end_sequence:
                    if (!emit(true))
                        return corrupt("too many rows");
                    reset();
                    break;
                case DW_LNE_set_address: {
                    const size_t size = h.address_size != 0 ? h.address_size : len - 1;
                    if (!operands.uint(size, addr))
                        return corrupt("bad DW_LNE_set_address");
                    op_index = 0;
                    break;
                }
                case DW_LNE_define_file: {
                    if (h.version >= 5)
                        break; // reserved in DWARF 5
                    std::string_view name;
                    uint64_t dir = 0;
                    uint64_t ignored = 0;
                    if (!operands.cstr(name) || !operands.uleb(dir) || !operands.uleb(ignored) ||
                        !operands.uleb(ignored))
                        return corrupt("bad DW_LNE_define_file");
                    if (dir >= h.dirs.size())
                        return corrupt("directory index out of range");
                    if (fill)
                        if (Status st = add_file({name, true}, dir); !st)
                            return st.error();
                    break;
                }
                default: // DW_LNE_set_discriminator and unknown ones: nothing we keep
                    break;
                }
                r.seek(ext_end);
                continue;
            }
            if (op < sizeof kStdOperands) {
                // Like libdw: a known opcode declared with other operands is corrupt.
                if (h.std_lengths[op - 1] != kStdOperands[op])
                    return corrupt("unexpected operand count of a standard opcode");
                switch (op) {
                case DW_LNS_copy:
                    if (!emit(false))
                        return corrupt("too many rows");
                    break;
                case DW_LNS_advance_pc:
                    if (!r.uleb(v))
                        return corrupt("truncated DW_LNS_advance_pc");
                    advance(v);
                    break;
                case DW_LNS_advance_line: {
                    int64_t d = 0;
                    if (!r.sleb(d))
                        return corrupt("truncated DW_LNS_advance_line");
                    line += static_cast<uint64_t>(d);
                    break;
                }
                case DW_LNS_set_file:
                    if (!r.uleb(file))
                        return corrupt("truncated DW_LNS_set_file");
                    break;
                case DW_LNS_set_column:
                case DW_LNS_set_isa:
                    if (!r.uleb(v))
                        return corrupt("truncated operand");
                    break;
                case DW_LNS_const_add_pc:
                    if (h.line_range == 0)
                        return corrupt("DW_LNS_const_add_pc with line_range 0");
                    advance((255u - h.opcode_base) / h.line_range);
                    break;
                case DW_LNS_fixed_advance_pc:
                    if (!r.uint(2, v))
                        return corrupt("truncated DW_LNS_fixed_advance_pc");
                    addr += v;
                    op_index = 0;
                    break;
                default: // negate_stmt, set_basic_block, prologue_end, epilogue_begin
                    break;
                }
                continue;
            }
            // A standard opcode we do not know: skip its ULEB128 operands.
            for (unsigned n = h.std_lengths[op - 1]; n > 0; --n)
                if (!r.uleb(v))
                    return corrupt("truncated operand of an unknown standard opcode");
        }
        count = rows;
    }

    // libdw's order (dwarf_getsrclines.c, compare_lines): by address, an end_sequence row
    // before the other rows at its address, otherwise in the order the program emitted them.
    const auto before = [](const Row& a, const Row& b) {
        if (a.addr != b.addr)
            return a.addr < b.addr;
        return (a.file_end & 1) > (b.file_end & 1);
    };
    if (!std::is_sorted(t.rows_.begin(), t.rows_.end(), before))
        std::stable_sort(t.rows_.begin(), t.rows_.end(), before);
    // libdw marks the highest row as an end_sequence even when the program did not.
    if (!t.rows_.empty())
        t.rows_.back().file_end |= 1;
    t.names_.shrink_to_fit();
    t.file_offsets_.shrink_to_fit();
    return t;
}

std::optional<LineTable::Line> LineTable::find(uint64_t addr) const {
    auto it = std::upper_bound(rows_.begin(), rows_.end(), addr,
                               [](uint64_t a, const Row& r) { return a < r.addr; });
    if (it == rows_.begin())
        return std::nullopt;
    --it;
    if ((it->file_end & 1) != 0)
        return std::nullopt;
    const uint32_t file = it->file_end >> 1;
    return Line{file_name(file), file, it->line};
}

std::string_view LineTable::file_name(size_t index) const {
    if (index >= file_offsets_.size() || file_offsets_[index] == kUnknownName)
        return {};
    return std::string_view(names_.c_str() + file_offsets_[index]);
}

size_t LineTable::bytes() const {
    size_t n = rows_.capacity() * sizeof(Row) + file_offsets_.capacity() * sizeof(uint32_t);
    // The characters are on the heap unless they fit the string's own (small-string) buffer.
    const auto data = reinterpret_cast<uintptr_t>(names_.data());
    const auto self = reinterpret_cast<uintptr_t>(&names_);
    if (data < self || data >= self + sizeof(std::string))
        n += names_.capacity() + 1;
    return n;
}

LineTable::RowView LineTable::row(size_t i) const {
    const Row& r = rows_[i];
    return {r.addr, r.line, r.file_end >> 1, (r.file_end & 1) != 0};
}

} // namespace hostprof::sym
