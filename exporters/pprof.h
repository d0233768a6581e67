// pprof encoder: hostprof::Profile -> gzipped profile.proto bytes, as served by
// /debug/pprof/profile and read by `go tool pprof`, Pyroscope, Parca and Grafana Alloy.
#pragma once

#include <cstdint>
#include <string>

#include "common/profile.h"
#include "exporters/profile.pb.h"

namespace hostprof {

// Sets sample types {samples,count} + {cpu,nanoseconds}, period type {cpu,nanoseconds}
// and period 1e9/frequency_hz: what Pyroscope reads as
// process_cpu:cpu:nanoseconds:cpu:nanoseconds.
void set_cpu_profile_types(Profile& p, int frequency_hz);

// Sets sample types {samples,count} + {off_cpu,nanoseconds}, period type
// {off_cpu,nanoseconds}, period 1 (values are measured blocked time, not sampled).
void set_off_cpu_profile_types(Profile& p);

// The uncompressed profile.proto bytes, written directly by a wire-format encoder (no
// message objects). Strings are interned (string_table[0] == ""), functions deduplicated
// by (name, file), ids are 1-based indexes. Locations keep their inline lines innermost
// first; a line without a function name is dropped (pprof then shows the address).
// Sample location indexes out of range are dropped, and values are padded with zeros /
// cut to the number of sample types, so the output always decodes. The bytes are the
// canonical encoding: parsing and re-serializing them with the generated classes gives
// the same bytes.
std::string encode_pprof(const Profile& p);

// encode_pprof decoded into the generated message (tests, text dumps).
pprof::Profile to_pprof_message(const Profile& p);

// encode_pprof gzipped: the body of /debug/pprof/profile and of Pyroscope pushes.
std::string render_pprof(const Profile& p);

} // namespace hostprof
