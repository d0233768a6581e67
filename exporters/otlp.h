// OTLP profiles encoder: hostprof::Profile windows -> an ExportProfilesServiceRequest of
// opentelemetry.proto.profiles.v1development, in the layout of OTLP proto 1.10 and 1.11
// (one ProfilesDictionary shared by every profile of the request, each table starting
// with its zero entry, samples pointing at a stack_table entry). What the OpenTelemetry
// eBPF profiler sends, and what Pyroscope (1.20+), Parca and the OpenTelemetry Collector
// (profiles feature gate) ingest on POST /v1development/profiles.
// exporters/otlp_profiles.proto is the schema, written from the published field numbers.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/profile.h"

namespace hostprof {

// The OTLP proto release whose profiles layout the encoder writes.
inline constexpr const char* kOtlpProtoVersion = "1.11.0";

struct OtlpOptions {
    std::string scope_name = "hostprof";
    std::string scope_version;
    std::string host_name; // resource attribute host.name, left out when empty
};

// The request for a set of windows (e.g. the on-CPU and the off-CPU one of an interval).
// Samples are grouped into one ResourceProfiles per process, from the sample labels:
// service.name (service_name), process.pid (pid), process.executable.name (comm),
// process.executable.path (exe), process.executable.build_id.gnu (the build id of the
// mapping of that file), container.id, k8s.pod.uid and host.name. Each process gets one
// Profile per window kind: an on-CPU window (period type cpu/nanoseconds) as
// samples/count, any other window as its weight (off_cpu/nanoseconds,
// syscall_latency/nanoseconds). A sample's thread id is its thread.id attribute. Locations
// carry profile.frame.type ("kernel" or "native"); mappings the build id of their file.
// Profile ids are 16 random bytes. Locations out of range are dropped, as in encode_pprof.
std::string encode_otlp_profiles(std::span<const Profile> windows, const OtlpOptions& options);

} // namespace hostprof
