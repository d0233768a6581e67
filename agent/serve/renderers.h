// The agent's one seam to exporters/: which renderer serves which output.
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <utility>
#include <vector>

#include "common/profile.h"
#include "exporters/metrics.h"

namespace hostprof {

std::string render_pprof_bytes(const Profile& p);                               // gzipped pprof
std::string render_flamegraph_page(const Profile& p, const std::string& title); // HTML
std::string render_folded_text(const Profile& p);                               // folded stacks
// An OTLP profiles export request (protobuf; exporters/otlp.h), host.name this host's.
std::string render_otlp_bytes(const Profile& p);
// Content negotiation on Accept: Prometheus text 0.0.4, OpenMetrics 1.0 or protobuf.
// Returns {content type, body}. Exemplars are shown in OpenMetrics and protobuf, the
// exact native buckets in protobuf.
std::pair<std::string, std::string>
render_metrics(const std::vector<prometheus::MetricFamily>& families, const std::string& accept,
               const ExemplarSet& exemplars, const NativeHistogramSet& natives = {});

} // namespace hostprof
