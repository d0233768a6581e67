#include "exporters/stacks.h"

namespace hostprof {

namespace {

bool is_kernel_mapping(const std::string& file) {
    return file.starts_with("[kernel") || file == "[vmlinux]";
}

std::string basename(const std::string& path) {
    const size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

} // namespace

void append_location_frames(const Profile& p, const Location& loc, std::vector<Frame>& out) {
    const Mapping* m = loc.mapping >= 0 && static_cast<size_t>(loc.mapping) < p.mappings.size()
                           ? &p.mappings[static_cast<size_t>(loc.mapping)]
                           : nullptr;
    const FrameKind kind = m == nullptr                 ? FrameKind::kUnknown
                           : is_kernel_mapping(m->file) ? FrameKind::kKernel
                                                        : FrameKind::kUser;
    bool named = false;
    for (auto it = loc.lines.rbegin(); it != loc.lines.rend(); ++it) {
        if (it->function.empty())
            continue;
        out.push_back({it->function, kind});
        named = true;
    }
    if (named)
        return;
    if (m != nullptr && !m->file.empty()) {
        const std::string base = basename(m->file);
        out.push_back({base.starts_with('[') ? base : "[" + base + "]", kind});
    } else {
        out.push_back({"[unknown]", FrameKind::kUnknown});
    }
}

std::vector<Frame> sample_frames(const Profile& p, const Sample& s) {
    std::vector<Frame> frames;
    frames.reserve(s.locations.size());
    for (auto it = s.locations.rbegin(); it != s.locations.rend(); ++it)
        if (*it < p.locations.size())
            append_location_frames(p, p.locations[*it], frames);
    return frames;
}

const std::string* find_label(const Sample& s, const std::string& label) {
    for (const auto& [key, value] : s.labels)
        if (key == label)
            return &value;
    return nullptr;
}

} // namespace hostprof
