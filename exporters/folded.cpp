#include "exporters/folded.h"

#include <algorithm>
#include <unordered_map>

#include "exporters/output.h"
#include "exporters/stacks.h"

namespace hostprof {

namespace {

void append_frame(std::string& stack, const std::string& name) {
    if (!stack.empty())
        stack += ';';
    for (char c : name)
        stack += (c == ';' || c == '\n' || c == '\r') ? '_' : c;
}

} // namespace

std::string render_folded(const Profile& p, size_t value_index,
                          const std::vector<std::string>& root_labels) {
    // Each location's frames, escaped and joined caller first, computed once: a host
    // profile has far fewer locations than (sample, frame) pairs.
    std::vector<std::string> segments(p.locations.size());
    std::vector<bool> ready(p.locations.size(), false);
    std::vector<Frame> frames;
    std::unordered_map<std::string, int64_t> stacks;
    std::string stack;
    for (const Sample& s : p.samples) {
        if (value_index >= s.values.size() || s.values[value_index] == 0)
            continue;
        stack.clear();
        for (const std::string& label : root_labels)
            if (const std::string* v = find_label(s, label))
                append_frame(stack, *v);
        for (auto it = s.locations.rbegin(); it != s.locations.rend(); ++it) {
            if (*it >= p.locations.size())
                continue;
            if (!ready[*it]) {
                frames.clear();
                append_location_frames(p, p.locations[*it], frames);
                for (const Frame& f : frames)
                    append_frame(segments[*it], f.name);
                ready[*it] = true;
            }
            if (!stack.empty())
                stack += ';';
            stack += segments[*it];
        }
        if (stack.empty())
            continue;
        stacks[stack] += s.values[value_index];
    }
    std::vector<std::pair<std::string_view, int64_t>> lines;
    lines.reserve(stacks.size());
    size_t bytes = 0;
    for (const auto& [frames_text, value] : stacks) {
        if (value == 0)
            continue;
        lines.emplace_back(frames_text, value);
        bytes += frames_text.size() + 22;
    }
    std::sort(lines.begin(), lines.end());
    std::string out;
    reserve_prefaulted(out, bytes);
    for (const auto& [frames_text, value] : lines) {
        out += frames_text;
        out += ' ';
        out += std::to_string(value);
        out += '\n';
    }
    return out;
}

} // namespace hostprof
