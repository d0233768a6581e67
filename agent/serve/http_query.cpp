#include "agent/serve/http_query.h"

#include <array>
#include <charconv>

namespace hostprof {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

std::string printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 64))
        out += (c >= 0x20 && c < 0x7f) ? c : '?';
    return s.size() > 64 ? out + "..." : out;
}

} // namespace

std::optional<std::string> url_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '+') {
            out += ' ';
        } else if (c == '%') {
            int hi = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
            int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return std::nullopt;
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

std::optional<std::string> query_param(std::string_view query, std::string_view key) {
    size_t start = 0;
    while (start <= query.size()) {
        size_t end = query.find('&', start);
        if (end == std::string_view::npos)
            end = query.size();
        std::string_view pair = query.substr(start, end - start);
        size_t eq = pair.find('=');
        if (pair.substr(0, eq) == key)
            return eq == std::string_view::npos ? std::optional<std::string>("")
                                                : url_decode(pair.substr(eq + 1));
        start = end + 1;
    }
    return std::nullopt;
}

Result<ProfileRequest> parse_profile_request(std::string_view query, const EndpointLimits& limits) {
    if (query.size() > kMaxQueryBytes)
        return Error{0, "query string longer than " + std::to_string(kMaxQueryBytes) + " bytes"};
    static constexpr std::array<std::string_view, 6> kKeys = {"seconds",   "pid",     "cgroup",
                                                              "container", "service", "comm"};
    std::array<std::optional<std::string>, kKeys.size()> values;
    size_t start = 0;
    while (start <= query.size()) {
        size_t end = query.find('&', start);
        if (end == std::string_view::npos)
            end = query.size();
        std::string_view pair = query.substr(start, end - start);
        start = end + 1;
        size_t eq = pair.find('=');
        std::string_view key = pair.substr(0, eq);
        for (size_t i = 0; i < kKeys.size(); ++i) {
            if (key != kKeys[i])
                continue;
            if (values[i])
                return Error{0, "parameter '" + std::string(key) + "' given twice"};
            std::string_view raw = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
            if (raw.size() > kMaxQueryValueBytes)
                return Error{0, "parameter '" + std::string(key) + "' longer than " +
                                    std::to_string(kMaxQueryValueBytes) + " bytes"};
            values[i] = url_decode(raw);
            if (!values[i])
                return Error{0, "parameter '" + std::string(key) + "': bad %-escape in '" +
                                    printable(raw) + "'"};
        }
    }
    const std::optional<std::string>& seconds = values[0];
    const std::optional<std::string>& pid = values[1];
    const std::optional<std::string>& cgroup = values[2];
    const std::optional<std::string>& container = values[3];
    const std::optional<std::string>& service = values[4];
    const std::optional<std::string>& comm = values[5];

    ProfileRequest r;
    r.seconds = limits.default_seconds;
    if (seconds) {
        int v = 0;
        auto [p, ec] = std::from_chars(seconds->data(), seconds->data() + seconds->size(), v);
        if (ec != std::errc() || p != seconds->data() + seconds->size() || v < 1 ||
            v > limits.max_seconds)
            return Error{0, "bad seconds '" + printable(*seconds) +
                                "': must be an integer from 1 to " +
                                std::to_string(limits.max_seconds)};
        r.seconds = v;
    }
    if (pid) {
        uint32_t v = 0;
        auto [p, ec] = std::from_chars(pid->data(), pid->data() + pid->size(), v);
        if (ec != std::errc() || p != pid->data() + pid->size() || v == 0)
            return Error{0, "bad pid '" + printable(*pid) + "'"};
        r.filter.pid = v;
    }
    if (cgroup)
        r.filter.cgroup_prefix = *cgroup;
    if (container) {
        if (container->size() < 12 || container->size() > 64 ||
            container->find_first_not_of("0123456789abcdef") != std::string::npos)
            return Error{0, "bad container '" + printable(*container) +
                                "': 12 to 64 lower-case hex digits"};
        r.filter.container_id = *container;
    }
    if (service)
        r.filter.service = *service;
    if (comm) {
        auto pattern = CommPattern::compile(*comm);
        if (!pattern)
            return Error{0, "bad comm '" + printable(*comm) + "': " + pattern.error().message()};
        r.filter.comm = std::move(pattern).value();
    }
    return r;
}

} // namespace hostprof
