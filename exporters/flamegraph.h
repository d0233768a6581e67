// The flame graph page served at /flamegraph and written by `hostprof record`: one
// self-contained HTML document (inline CSS and JS, the data embedded as JSON, no network
// fetch) with click-to-zoom, search/highlight, reset, a per-service selector and tooltips.
#pragma once

#include <string>

#include "common/profile.h"

namespace hostprof {

struct FlameGraphOptions {
    std::string title = "hostprof flame graph";
    // Which Sample::values entry to draw; -1: the last sample type (pprof's default, the
    // cpu/off_cpu nanoseconds of our CPU profiles).
    int value_index = -1;
    // Label whose values fill the selector (one flame graph per value, plus "all");
    // empty: no selector.
    std::string group_label = "service";
};

// The data is embedded as <script type="application/json" id="hostprof-data">, an object
// {title, sample_type, unit, group_label, names: [[name, kind]], groups: [value],
// stacks: [[group index or -1, value, name index root first...]]} with identical stacks
// merged and sorted; kind is 0 user, 1 kernel, 2 unknown.
std::string render_flamegraph_html(const Profile& p, const FlameGraphOptions& options = {});

} // namespace hostprof
