// Stack walking shared by the text and HTML renderers: a sample's frames, root first,
// with inline frames expanded.
#pragma once

#include <string>
#include <vector>

#include "common/profile.h"

namespace hostprof {

enum class FrameKind : uint8_t { kUser = 0, kKernel = 1, kUnknown = 2 };

struct Frame {
    std::string name;
    FrameKind kind = FrameKind::kUnknown;
};

// Frames of one location, caller first (the reverse of Location::lines). A location
// without a named line gives one frame: "[<mapping file basename>]" or "[unknown]".
void append_location_frames(const Profile& p, const Location& loc, std::vector<Frame>& out);

// The frames of `s`, root first. Location indexes out of range are skipped.
std::vector<Frame> sample_frames(const Profile& p, const Sample& s);

// The value of `label` on `s`, or nullptr.
const std::string* find_label(const Sample& s, const std::string& label);

} // namespace hostprof
