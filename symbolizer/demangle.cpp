#include "symbolizer/demangle.h"

#include <cxxabi.h>
#include <libiberty/demangle.h>

#include <cstdlib>
#include <memory>

namespace hostprof::sym {
namespace {

bool is_rust_hash(std::string_view s) {
    // "::h" + 16 hex digits at the end
    if (s.size() < 19 || s.substr(s.size() - 19, 3) != "::h")
        return false;
    for (char c : s.substr(s.size() - 16))
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    return true;
}

std::string rust_unescape(std::string_view s) {
    static constexpr std::pair<std::string_view, std::string_view> kEscapes[] = {
        {"$SP$", "@"},  {"$BP$", "*"},  {"$RF$", "&"},  {"$LT$", "<"},  {"$GT$", ">"},
        {"$LP$", "("},  {"$RP$", ")"},  {"$C$", ","},   {"..", "::"},   {"$u20$", " "},
        {"$u27$", "'"}, {"$u5b$", "["}, {"$u5d$", "]"}, {"$u7b$", "{"}, {"$u7d$", "}"},
        {"$u7e$", "~"}, {"$u3b$", ";"}, {"$u2b$", "+"}, {"$u22$", "\""}};
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        bool matched = false;
        for (const auto& [from, to] : kEscapes) {
            if (s.substr(i, from.size()) == from) {
                out += to;
                i += from.size();
                matched = true;
                break;
            }
        }
        if (!matched)
            out.push_back(s[i++]);
    }
    return out;
}

} // namespace

std::string demangle(std::string_view mangled) {
    if (mangled.size() > 2 && mangled.substr(0, 2) == "_R") {
        // Rust v0: libiberty's demangler (binutils'), recursion-limited; options 0 leaves
        // out the crate disambiguator hashes, as the legacy path drops "::h<hash>".
        std::string in(mangled);
        std::unique_ptr<char, decltype(&std::free)> out(rust_demangle(in.c_str(), 0), &std::free);
        return out ? std::string(out.get()) : in;
    }
    if (mangled.size() < 3 || mangled.substr(0, 2) != "_Z")
        return std::string(mangled);
    std::string in(mangled);
    int status = 0;
    std::unique_ptr<char, decltype(&std::free)> out(
        abi::__cxa_demangle(in.c_str(), nullptr, nullptr, &status), &std::free);
    if (status != 0 || !out)
        return in;
    std::string_view d = out.get();
    if (in.rfind("_ZN", 0) == 0 && is_rust_hash(d)) {
        // Rust legacy: components joined by "::"; a component starting with "_$" drops the
        // underscore (it only made the identifier valid), then the $..$ escapes decode.
        std::string_view path = d.substr(0, d.size() - 19);
        std::string out;
        while (true) {
            size_t sep = path.find("::");
            std::string_view comp = path.substr(0, sep);
            if (comp.size() > 1 && comp[0] == '_' && comp[1] == '$')
                comp.remove_prefix(1);
            out += rust_unescape(comp);
            if (sep == std::string_view::npos)
                break;
            out += "::";
            path.remove_prefix(sep + 2);
        }
        return out;
    }
    return std::string(d);
}

} // namespace hostprof::sym
