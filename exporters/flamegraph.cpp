#include "exporters/flamegraph.h"

#include <map>
#include <nlohmann/json.hpp>
#include <string_view>
#include <unordered_map>

#include "exporters/flamegraph_page.h"
#include "exporters/output.h"
#include "exporters/stacks.h"

namespace hostprof {

namespace {

std::string html_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&#39;";
            break;
        default:
            out += c;
        }
    }
    return out;
}

// Appends JSON that is safe inside <script>: ASCII only (so U+2028 and invalid UTF-8
// cannot break anything) and no "</" that would close the element. `reserve_more` is
// what the caller appends after it.
void append_script_safe_json(std::string& out, const nlohmann::json& j, size_t reserve_more) {
    const std::string dumped = j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
    reserve_prefaulted(out, out.size() + dumped.size() + dumped.size() / 64 + reserve_more);
    for (size_t i = 0; i < dumped.size(); ++i) {
        if (dumped[i] == '<' && i + 1 < dumped.size() && dumped[i + 1] == '/') {
            out += "<\\/";
            ++i;
        } else {
            out += dumped[i];
        }
    }
}

void replace_all(std::string& s, std::string_view from, const std::string& to) {
    for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
        s.replace(pos, from.size(), to);
}

} // namespace

std::string render_flamegraph_html(const Profile& p, const FlameGraphOptions& options) {
    const size_t n_types = p.sample_types.size();
    const size_t value_index = options.value_index >= 0 ? static_cast<size_t>(options.value_index)
                               : n_types > 0            ? n_types - 1
                                                        : 0;
    const ValueType type = value_index < n_types ? p.sample_types[value_index] : ValueType{};

    // Intern frame names (with their kind) and group values; merge identical stacks.
    // Each location's name indexes are computed once (caller first).
    std::map<std::pair<std::string, FrameKind>, int> name_index;
    std::vector<std::pair<std::string, FrameKind>> names;
    std::vector<std::vector<int>> location_names(p.locations.size());
    std::vector<bool> ready(p.locations.size(), false);
    std::vector<Frame> frames;
    std::map<std::string, int> group_index;
    std::map<std::vector<int>, int64_t> stacks; // [group, frame...] -> value
    std::vector<int> key;
    for (const Sample& s : p.samples) {
        if (value_index >= s.values.size() || s.values[value_index] == 0)
            continue;
        key.clear();
        const std::string* group =
            options.group_label.empty() ? nullptr : find_label(s, options.group_label);
        key.push_back(group == nullptr
                          ? -1
                          : group_index.try_emplace(*group, static_cast<int>(group_index.size()))
                                .first->second);
        for (auto loc = s.locations.rbegin(); loc != s.locations.rend(); ++loc) {
            if (*loc >= p.locations.size())
                continue;
            if (!ready[*loc]) {
                frames.clear();
                append_location_frames(p, p.locations[*loc], frames);
                for (Frame& f : frames) {
                    auto [it, inserted] =
                        name_index.try_emplace({f.name, f.kind}, static_cast<int>(names.size()));
                    if (inserted)
                        names.emplace_back(std::move(f.name), f.kind);
                    location_names[*loc].push_back(it->second);
                }
                ready[*loc] = true;
            }
            key.insert(key.end(), location_names[*loc].begin(), location_names[*loc].end());
        }
        stacks[key] += s.values[value_index];
    }

    nlohmann::json j;
    j["title"] = options.title;
    j["sample_type"] = type.type;
    j["unit"] = type.unit;
    j["group_label"] = options.group_label;
    auto& jnames = j["names"] = nlohmann::json::array();
    for (const auto& [name, kind] : names)
        jnames.push_back({name, static_cast<int>(kind)});
    auto& jgroups = j["groups"] = nlohmann::json::array();
    std::vector<std::string> groups(group_index.size());
    for (const auto& [g, i] : group_index)
        groups[static_cast<size_t>(i)] = g;
    for (const std::string& g : groups)
        jgroups.push_back(g);
    auto& jstacks = j["stacks"] = nlohmann::json::array();
    for (const auto& [k, value] : stacks) {
        if (value == 0)
            continue;
        nlohmann::json row = nlohmann::json::array();
        row.push_back(k[0]);
        row.push_back(value);
        for (size_t i = 1; i < k.size(); ++i)
            row.push_back(k[i]);
        jstacks.push_back(std::move(row));
    }

    // The title only appears before the data, so a title containing a placeholder
    // cannot move the data.
    const std::string_view tmpl = detail::kFlameGraphPage;
    const size_t data_pos = tmpl.find("@DATA@");
    std::string page(tmpl.substr(0, data_pos));
    replace_all(page, "@TITLE@", html_escape(options.title));
    append_script_safe_json(page, j, tmpl.size() - data_pos - 6);
    page += tmpl.substr(data_pos + 6);
    return page;
}

} // namespace hostprof
