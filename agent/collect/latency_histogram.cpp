#include "agent/collect/latency_histogram.h"

#include <cmath>

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

} // namespace hostprof
