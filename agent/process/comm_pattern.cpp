#include "agent/process/comm_pattern.h"

#include <regex.h>

namespace hostprof {

struct CommPattern::Compiled {
    regex_t re{};
    bool ok = false;
    ~Compiled() {
        if (ok)
            ::regfree(&re);
    }
};

Result<CommPattern> CommPattern::compile(std::string_view pattern) {
    if (pattern.size() > kMaxCommPatternBytes)
        return Error{0,
                     "comm pattern longer than " + std::to_string(kMaxCommPatternBytes) + " bytes"};
    int depth = 0;
    bool in_bracket = false;
    for (size_t i = 0; i < pattern.size(); ++i) {
        char c = pattern[i];
        if (c == '\0')
            return Error{0, "comm pattern contains a NUL byte"};
        if (in_bracket) { // [...]: only ']' ends it (a leading ']' or '^]' is literal)
            if (c == ']' && pattern[i - 1] != '[' &&
                !(pattern[i - 1] == '^' && pattern[i - 2] == '['))
                in_bracket = false;
            continue;
        }
        if (c == '\\') {
            if (i + 1 < pattern.size() && pattern[i + 1] >= '0' && pattern[i + 1] <= '9')
                return Error{0, "comm pattern: back-references are not supported"};
            ++i;
        } else if (c == '[') {
            in_bracket = true;
        } else if (c == '{') {
            return Error{0, "comm pattern: {m,n} intervals are not supported"};
        } else if (c == '(') {
            if (++depth > kMaxCommPatternDepth)
                return Error{0, "comm pattern nested deeper than " +
                                    std::to_string(kMaxCommPatternDepth)};
        } else if (c == ')') {
            --depth;
        }
    }
    auto compiled = std::make_shared<Compiled>();
    std::string p(pattern);
    int rc = ::regcomp(&compiled->re, p.c_str(), REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[128];
        ::regerror(rc, &compiled->re, msg, sizeof(msg));
        return Error{0, std::string("comm pattern: ") + msg};
    }
    compiled->ok = true;
    CommPattern out;
    out.re_ = std::move(compiled);
    out.pattern_ = std::move(p);
    return out;
}

bool CommPattern::matches(const std::string& comm) const {
    return re_ && ::regexec(&re_->re, comm.c_str(), 0, nullptr, 0) == 0;
}

} // namespace hostprof
