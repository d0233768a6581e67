#include "agent/collect/latency_histogram.h"

#include <cmath>
#include <limits>

namespace hostprof {

uint64_t LatencyHistogram::count() const {
    uint64_t n = 0;
    for (uint64_t v : slots)
        n += v;
    return n;
}

void LatencyHistogram::merge(const LatencyHistogram& o) {
    if (o.slots.size() > slots.size())
        slots.resize(o.slots.size(), 0);
    for (size_t i = 0; i < o.slots.size(); ++i)
        slots[i] += o.slots[i];
    sum += o.sum;
}

double log2_slot_upper_bound(size_t slot) {
    return std::ldexp(1.0, static_cast<int>(slot) + 1);
}

prometheus::ClientMetric::Histogram to_prometheus_histogram(const LatencyHistogram& h,
                                                            double unit_to_base) {
    prometheus::ClientMetric::Histogram out;
    uint64_t cumulative = 0;
    for (size_t i = 0; i + 1 < h.slots.size(); ++i) {
        cumulative += h.slots[i];
        out.bucket.push_back({cumulative, log2_slot_upper_bound(i) * unit_to_base});
    }
    if (!h.slots.empty())
        cumulative += h.slots.back();
    out.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
    out.sample_count = cumulative;
    out.sample_sum = static_cast<double>(h.sum) * unit_to_base;
    return out;
}

prometheus::MetricFamily lost_by_reason(std::string name, std::string help,
                                        std::span<const std::pair<size_t, const char*>> reasons,
                                        const std::vector<uint64_t>& kernel_stats) {
    prometheus::MetricFamily f{
        std::move(name), std::move(help), prometheus::MetricType::Counter, {}};
    for (const auto& [i, reason] : reasons) {
        prometheus::ClientMetric m;
        m.label = {{"reason", reason}};
        m.counter.value = i < kernel_stats.size() ? static_cast<double>(kernel_stats[i]) : 0.0;
        f.metric.push_back(std::move(m));
    }
    return f;
}

} // namespace hostprof
