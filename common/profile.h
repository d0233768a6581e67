// The symbolized profile: what the pipeline hands to the exporters (pprof, folded
// stacks, flame graphs). It mirrors pprof's model (profile.proto) without its string
// table, so each renderer is a pure function of this struct.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace hostprof {

struct ValueType {
    std::string type; // "samples", "cpu", "off_cpu"
    std::string unit; // "count", "nanoseconds"
};

struct Mapping {
    uint64_t start = 0;   // process address where the mapping starts (0 for kernel)
    uint64_t limit = 0;   // one past the end
    uint64_t offset = 0;  // file offset of `start`
    std::string file;     // path, "[kernel.kallsyms]", "[vdso]", "[jit]"
    std::string build_id; // hex, may be empty
};

struct Line {
    std::string function; // demangled name; empty when unknown
    std::string file;     // source file; empty without DWARF
    int64_t line = 0;     // 0 when unknown
};

struct Location {
    uint64_t address = 0;
    int32_t mapping = -1;    // index into Profile::mappings, -1 when none
    std::vector<Line> lines; // innermost first: inlined callees before their caller
};

struct Sample {
    std::vector<uint32_t> locations; // indexes into Profile::locations, leaf first
    std::vector<int64_t> values;     // one per Profile::sample_types
    std::vector<std::pair<std::string, std::string>> labels; // pid, comm, service, ...
};

struct Profile {
    std::vector<ValueType> sample_types; // e.g. {samples,count}, {cpu,nanoseconds}
    ValueType period_type;               // e.g. {cpu,nanoseconds}
    int64_t period = 0;                  // e.g. 1e9 / frequency
    int64_t time_nanos = 0;              // wall-clock start of the window
    int64_t duration_nanos = 0;
    std::vector<Mapping> mappings;
    std::vector<Location> locations;
    std::vector<Sample> samples;
};

} // namespace hostprof
