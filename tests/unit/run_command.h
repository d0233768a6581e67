// Unit-test helper: the standard output of a shell command (popen), whole.
#pragma once

#include <array>
#include <cstdio>
#include <memory>
#include <string>

namespace hostprof::test {

inline std::string run_command(const std::string& cmd) {
    std::string out;
    std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(cmd.c_str(), "r"), ::pclose);
    if (!p)
        return out;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p.get())) > 0)
        out.append(buf.data(), n);
    return out;
}

} // namespace hostprof::test
