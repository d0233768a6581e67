#include "exporters/folded.h"

#include <map>

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
    std::map<std::string, int64_t> stacks;
    std::string stack;
    for (const Sample& s : p.samples) {
        if (value_index >= s.values.size() || s.values[value_index] == 0)
            continue;
        stack.clear();
        for (const std::string& label : root_labels)
            if (const std::string* v = find_label(s, label))
                append_frame(stack, *v);
        for (const Frame& f : sample_frames(p, s))
            append_frame(stack, f.name);
        if (stack.empty())
            continue;
        stacks[stack] += s.values[value_index];
    }
    std::string out;
    for (const auto& [frames, value] : stacks) {
        if (value == 0)
            continue;
        out += frames;
        out += ' ';
        out += std::to_string(value);
        out += '\n';
    }
    return out;
}

} // namespace hostprof
