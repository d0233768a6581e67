// Metric names referenced by PromQL expressions (dashboards, alert rules), for the tests
// that check them against the agent. Header-only: used by tests/unit/deploy_*_test.cpp
// and tests/bpf/deploy_metrics_bpf_test.cpp.
#pragma once

#include <regex>
#include <set>
#include <string>
#include <string_view>

namespace hostprof::deploytest {

// Every metric name an expression selects, as written (foo_bucket stays foo_bucket).
// Removes strings, label matchers {...}, ranges [...], grouping clauses (by/without/on/
// ignoring/group_left/group_right (...)), offset/@ modifiers and Grafana variables ($x, ${x},
// $__interval), then keeps identifiers that are neither function calls, keywords nor numbers.
inline std::set<std::string> promql_metric_names(std::string_view expr_in) {
    std::string e(expr_in);
    // Strings first: they may hold any character, braces included.
    e = std::regex_replace(e, std::regex(R"("(\\.|[^"\\])*"|'(\\.|[^'\\])*'|`[^`]*`)"), " ");
    e = std::regex_replace(e, std::regex(R"(\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*)"), " 1 ");
    e = std::regex_replace(e, std::regex(R"(\{[^}]*\})"), " ");
    e = std::regex_replace(e, std::regex(R"(\[[^\]]*\])"), " ");
    e = std::regex_replace(
        e, std::regex(R"(\boffset\s+-?[0-9A-Za-z]+|@\s*(start\(\)|end\(\)|[0-9.]+))"), " ");
    e = std::regex_replace(
        e, std::regex(R"(\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\))"), " ");
    static const std::set<std::string> keywords = {
        "and",      "or",         "unless",      "by",    "without", "on",
        "ignoring", "group_left", "group_right", "bool",  "offset",  "inf",
        "nan",      "Inf",        "NaN",         "atan2", "le"};
    std::set<std::string> names;
    std::regex token(R"(([0-9][0-9.]*([eE][+-]?[0-9]+)?)|([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?)");
    for (auto it = std::sregex_iterator(e.begin(), e.end(), token); it != std::sregex_iterator();
         ++it) {
        const std::smatch& m = *it;
        if (m[1].matched || !m[3].matched || m[4].matched) // number, or a function call
            continue;
        std::string id = m[3].str();
        if (!keywords.contains(id))
            names.insert(id);
    }
    return names;
}

// The family a sample name belongs to: foo_bucket/foo_count/foo_sum -> foo when `foo` is
// a histogram or summary in `histograms`; otherwise the name itself.
inline std::string family_of(const std::string& name, const std::set<std::string>& histograms) {
    for (std::string_view suffix : {"_bucket", "_count", "_sum"}) {
        if (name.size() > suffix.size() && name.ends_with(suffix)) {
            std::string base = name.substr(0, name.size() - suffix.size());
            if (histograms.contains(base))
                return base;
        }
    }
    return name;
}

} // namespace hostprof::deploytest
