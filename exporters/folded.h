// Folded stacks ("root;caller;leaf value" per line), the input format of flamegraph.pl,
// speedscope, inferno and Pyroscope's ingest of collapsed stacks.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/profile.h"

namespace hostprof {

// One line per distinct stack: frames root first joined by ';', a space, the sum of
// Sample::values[value_index] over the samples with that stack. Inline frames are
// expanded (caller before callee). For each name in `root_labels` (e.g. {"service"} or
// {"comm"}) the sample's value of that label is prepended as a root frame; a sample
// without the label gets no frame for it. Lines are sorted; stacks whose value is 0 are
// left out. ';' and line breaks inside frame names become '_' so every line parses.
std::string render_folded(const Profile& p, size_t value_index,
                          const std::vector<std::string>& root_labels = {});

} // namespace hostprof
