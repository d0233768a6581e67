#include "agent/serve/renderers.h"

#include <unistd.h>

#include "exporters/flamegraph.h"
#include "exporters/folded.h"
#include "exporters/metrics.h"
#include "exporters/otlp.h"
#include "exporters/pprof.h"

namespace hostprof {
namespace {

// Folded stacks and flame graphs weigh on-CPU profiles by samples, off-CPU and
// latency-attributed ones by time (blocked, or waited in slow syscalls).
size_t weight_index(const Profile& p) {
    return p.sample_types.size() > 1 && p.sample_types[1].type != "cpu" ? 1 : 0;
}

} // namespace

std::string render_pprof_bytes(const Profile& p) {
    return render_pprof(p);
}

std::string render_flamegraph_page(const Profile& p, const std::string& title) {
    FlameGraphOptions o;
    o.title = title;
    o.value_index = static_cast<int>(weight_index(p));
    o.group_label = "service_name";
    return render_flamegraph_html(p, o);
}

std::string render_folded_text(const Profile& p) {
    return render_folded(p, weight_index(p));
}

std::string render_otlp_bytes(const Profile& p) {
    OtlpOptions o;
    o.scope_version = HOSTPROF_VERSION;
    char host[256] = {};
    if (::gethostname(host, sizeof(host) - 1) == 0)
        o.host_name = host;
    return encode_otlp_profiles(std::span<const Profile>(&p, 1), o);
}

std::pair<std::string, std::string>
render_metrics(const std::vector<prometheus::MetricFamily>& families, const std::string& accept,
               const ExemplarSet& exemplars, const NativeHistogramSet& natives) {
    return render_metrics_negotiated(families, accept, exemplars, natives);
}

} // namespace hostprof
