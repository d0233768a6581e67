// Folded profiles (`hostprof record --format folded`: "root;...;leaf N" per line) as the
// privileged stack tests read them: parse, look for chains, count shares of samples.
#pragma once

#include <sstream>
#include <string>
#include <vector>

namespace hostprof::bpftest {

struct Stack {
    std::vector<std::string> frames; // root first
    long count = 0;
};

inline std::vector<Stack> parse_folded(const std::string& text) {
    std::vector<Stack> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        const auto sp = line.rfind(' ');
        if (sp == std::string::npos)
            continue;
        Stack s;
        s.count = std::stol(line.substr(sp + 1));
        std::istringstream fs(line.substr(0, sp));
        std::string f;
        while (std::getline(fs, f, ';'))
            s.frames.push_back(f);
        out.push_back(std::move(s));
    }
    return out;
}

// Index of the first frame `name` at or after `from` (npos when none).
inline size_t find_frame(const Stack& s, const std::string& name, size_t from = 0) {
    for (size_t i = from; i < s.frames.size(); ++i)
        if (s.frames[i] == name)
            return i;
    return std::string::npos;
}

inline bool has_frame(const Stack& s, const std::string& name) {
    return find_frame(s, name) != std::string::npos;
}

// `want` appears in order, root first (not necessarily adjacent).
inline bool has_chain(const Stack& s, const std::vector<std::string>& want) {
    size_t at = 0;
    for (const auto& w : want) {
        at = find_frame(s, w, at);
        if (at == std::string::npos)
            return false;
        ++at;
    }
    return true;
}

struct Share {
    long with = 0, total = 0;
    double ratio() const { return total == 0 ? 0 : static_cast<double>(with) / total; }
};

// The samples of `stacks` for which pred(stack) holds, of all.
template <class Pred> Share share(const std::vector<Stack>& stacks, Pred pred) {
    Share s;
    for (const Stack& st : stacks) {
        s.total += st.count;
        if (pred(st))
            s.with += st.count;
    }
    return s;
}

// The first stacks, for failure messages.
inline std::string dump(const std::vector<Stack>& stacks, size_t max = 12) {
    std::string s;
    for (size_t i = 0; i < stacks.size() && i < max; ++i) {
        for (const auto& f : stacks[i].frames)
            s += f + ";";
        s += " " + std::to_string(stacks[i].count) + "\n";
    }
    return s;
}

// `go tool pprof -traces` output: one block per stack (leaf first), separated by lines of
// dashes. Of the blocks containing `marker` (a stack, not the header), how many contain
// every one of `want` as a substring.
struct TraceCount {
    int blocks = 0, with_all = 0;
};
inline TraceCount count_traces(const std::string& traces, const std::string& marker,
                               const std::vector<std::string>& want) {
    TraceCount c;
    std::istringstream in(traces);
    std::string line, block;
    auto close = [&] {
        if (block.find(marker) != std::string::npos) {
            ++c.blocks;
            bool all = true;
            for (const auto& w : want)
                all = all && block.find(w) != std::string::npos;
            c.with_all += all ? 1 : 0;
        }
        block.clear();
    };
    while (std::getline(in, line)) {
        if (line.rfind("-----", 0) == 0)
            close();
        else
            block += line + "\n";
    }
    close();
    return c;
}

} // namespace hostprof::bpftest
