#include "symbolizer/parsers.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <unordered_map>

namespace hostprof::sym {
namespace {

constexpr size_t kMaxLine = 64 * 1024;

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

// Reads one line, at most kMaxLine bytes kept; false at end of input.
bool read_line(std::istream& in, std::string& line, bool& too_long) {
    line.clear();
    too_long = false;
    if (!in.good())
        return false;
    char c;
    bool any = false;
    while (in.get(c)) {
        any = true;
        if (c == '\n')
            return true;
        if (line.size() < kMaxLine)
            line.push_back(c);
        else
            too_long = true;
    }
    return any;
}

} // namespace

// ---- kallsyms ------------------------------------------------------------------------------

Kallsyms Kallsyms::parse(std::istream& in) {
    Kallsyms k;
    std::string line;
    bool too_long = false;
    bool any_nonzero = false;
    std::unordered_map<std::string, uint16_t> module_index;
    while (read_line(in, line, too_long)) {
        std::string_view s = line;
        if (trim(s).empty())
            continue;
        std::string_view addr = next_field(s), type = next_field(s), name = next_field(s);
        uint64_t a = 0;
        if (too_long || !parse_hex(addr, a) || type.size() != 1 || name.empty() ||
            name.size() > UINT16_MAX) {
            ++k.malformed_;
            continue;
        }
        std::string_view rest = trim(s);
        uint16_t module = 0;
        if (!rest.empty()) {
            if (rest.size() < 2 || rest.front() != '[' || rest.back() != ']') {
                ++k.malformed_;
                continue;
            }
            std::string m(rest.substr(1, rest.size() - 2));
            auto [it, fresh] = module_index.try_emplace(m, 0);
            if (fresh) {
                if (k.modules_.size() > UINT16_MAX) {
                    module_index.erase(it);
                    ++k.malformed_;
                    continue;
                }
                it->second = static_cast<uint16_t>(k.modules_.size());
                k.modules_.push_back(std::move(m));
            }
            module = it->second;
        }
        char t = type[0];
        if (t != 't' && t != 'T' && t != 'w' && t != 'W')
            continue;
        std::optional<uint32_t> at = k.store_name(name);
        if (!at) {
            ++k.malformed_;
            continue;
        }
        if (a != 0)
            any_nonzero = true;
        k.symbols_.push_back(Entry{a, *at, static_cast<uint16_t>(name.size()), module});
    }
    if (!any_nonzero) {
        k.symbols_.clear();
        k.symbols_.shrink_to_fit();
        k.name_blocks_.clear();
        return k;
    }
    // Sorted in place (a stable sort takes a buffer as large as the index): name offsets grow
    // in listing order, so ties keep the order they were listed in.
    std::sort(k.symbols_.begin(), k.symbols_.end(), [](const Entry& x, const Entry& y) {
        return x.address != y.address ? x.address < y.address : x.name_offset < y.name_offset;
    });
    // Aliases at one address: keep the first listed (kallsyms lists the primary name first).
    k.symbols_.erase(
        std::unique(k.symbols_.begin(), k.symbols_.end(),
                    [](const Entry& x, const Entry& y) { return x.address == y.address; }),
        k.symbols_.end());
    // The names stay where they were stored, aliases' names included (~230 of 121,000 here):
    // a compacted copy would hold two copies of megabytes at once, at the agent's peak.
    return k;
}

std::optional<uint32_t> Kallsyms::store_name(std::string_view name) {
    if (name.size() > kNameBlock)
        return std::nullopt;
    if (kNameBlock - last_block_used_ < name.size()) {
        if ((name_blocks_.size() + 1) * kNameBlock > UINT32_MAX)
            return std::nullopt;
        name_blocks_.push_back(std::make_unique_for_overwrite<char[]>(kNameBlock));
        last_block_used_ = 0;
    }
    const size_t at = (name_blocks_.size() - 1) * kNameBlock + last_block_used_;
    std::memcpy(name_blocks_.back().get() + last_block_used_, name.data(), name.size());
    last_block_used_ += name.size();
    return static_cast<uint32_t>(at);
}

std::string_view Kallsyms::name_of(const Entry& e) const {
    return {name_blocks_[e.name_offset / kNameBlock].get() + e.name_offset % kNameBlock,
            e.name_length};
}

std::optional<KernelSymbol> Kallsyms::lookup(uint64_t address) const {
    auto it = std::upper_bound(symbols_.begin(), symbols_.end(), address,
                               [](uint64_t a, const Entry& s) { return a < s.address; });
    if (it == symbols_.begin())
        return std::nullopt;
    const Entry& s = *std::prev(it);
    // The last symbol has no known end: accept at most 1 MiB past it.
    if (it == symbols_.end() && address - s.address > (1u << 20))
        return std::nullopt;
    return KernelSymbol{s.address, name_of(s), modules_[s.module]};
}

size_t Kallsyms::bytes() const {
    size_t b = symbols_.capacity() * sizeof(Entry) + name_blocks_.size() * kNameBlock;
    for (const std::string& m : modules_)
        b += sizeof(std::string) + m.capacity();
    return b;
}

// ---- maps ----------------------------------------------------------------------------------

MapsParse parse_maps(std::string_view text) {
    MapsParse out;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (trim(line).empty())
            continue;
        std::string_view s = line;
        std::string_view range = next_field(s), perms = next_field(s), off = next_field(s),
                         dev = next_field(s), ino = next_field(s);
        MapEntry e;
        size_t dash = range.find('-');
        size_t colon = dev.find(':');
        uint64_t maj = 0, min = 0;
        bool ok = dash != std::string_view::npos && parse_hex(range.substr(0, dash), e.start) &&
                  parse_hex(range.substr(dash + 1), e.end) && e.end >= e.start &&
                  perms.size() == 4 && parse_hex(off, e.offset) &&
                  colon != std::string_view::npos && parse_hex(dev.substr(0, colon), maj) &&
                  parse_hex(dev.substr(colon + 1), min) && !ino.empty() && ino.size() <= 20;
        if (ok)
            for (char c : ino)
                if (c < '0' || c > '9')
                    ok = false;
        if (!ok) {
            ++out.malformed;
            continue;
        }
        e.inode = 0;
        for (char c : ino)
            e.inode = e.inode * 10 + static_cast<uint64_t>(c - '0');
        e.dev_major = static_cast<uint32_t>(maj);
        e.dev_minor = static_cast<uint32_t>(min);
        e.readable = perms[0] == 'r';
        e.writable = perms[1] == 'w';
        e.executable = perms[2] == 'x';
        e.shared = perms[3] == 's';
        // The path is the rest of the line after the padding; it may contain spaces.
        size_t b = s.find_first_not_of(" \t");
        std::string_view path = b == std::string_view::npos ? std::string_view{} : s.substr(b);
        while (!path.empty() && (path.back() == '\r'))
            path.remove_suffix(1);
        constexpr std::string_view kDeleted = " (deleted)";
        if (path.size() > kDeleted.size() &&
            path.substr(path.size() - kDeleted.size()) == kDeleted) {
            path.remove_suffix(kDeleted.size());
            e.deleted = true;
        }
        e.path = std::string(path);
        out.entries.push_back(std::move(e));
    }
    return out;
}

// ---- perf maps -----------------------------------------------------------------------------

PerfMap PerfMap::parse(std::istream& in) {
    PerfMap m;
    std::string line;
    bool too_long = false;
    std::vector<PerfMapSymbol> raw;
    while (read_line(in, line, too_long)) {
        std::string_view s = line;
        if (trim(s).empty())
            continue;
        std::string_view start = next_field(s), size = next_field(s);
        std::string_view name = trim(s);
        PerfMapSymbol sym;
        if (too_long || !parse_hex(start, sym.start) || !parse_hex(size, sym.size) ||
            sym.size == 0 || name.empty() || sym.start + sym.size < sym.start) {
            ++m.malformed_;
            continue;
        }
        sym.name = std::string(name);
        raw.push_back(std::move(sym));
    }
    // Newer entries replace older ones over the bytes they cover: insert in reverse order,
    // keeping only the parts not yet claimed.
    std::map<uint64_t, PerfMapSymbol> claimed; // start -> symbol (non-overlapping)
    for (auto it = raw.rbegin(); it != raw.rend(); ++it) {
        auto next = claimed.lower_bound(it->start);
        bool overlaps = false;
        if (next != claimed.end() && next->first < it->start + it->size)
            overlaps = true;
        if (next != claimed.begin()) {
            auto prev = std::prev(next);
            if (prev->second.start + prev->second.size > it->start)
                overlaps = true;
        }
        if (!overlaps)
            claimed.emplace(it->start, std::move(*it));
    }
    m.symbols_.reserve(claimed.size());
    for (auto& [start, sym] : claimed)
        m.symbols_.push_back(std::move(sym));
    return m;
}

const PerfMapSymbol* PerfMap::lookup(uint64_t address) const {
    auto it = std::upper_bound(symbols_.begin(), symbols_.end(), address,
                               [](uint64_t a, const PerfMapSymbol& s) { return a < s.start; });
    if (it == symbols_.begin())
        return nullptr;
    const PerfMapSymbol& s = *std::prev(it);
    return address - s.start < s.size ? &s : nullptr;
}

size_t PerfMap::bytes() const {
    size_t b = symbols_.capacity() * sizeof(PerfMapSymbol);
    for (const auto& s : symbols_)
        b += s.name.capacity();
    return b;
}

} // namespace hostprof::sym
