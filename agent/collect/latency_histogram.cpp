#include "agent/collect/latency_histogram.h"

#include <algorithm>
#include <cmath>

#include "bpf/native.h"

namespace hostprof {

uint64_t LatencyHistogram::count() const {
    uint64_t n = 0;
    for (uint64_t v : slots)
        n += v;
    return n;
}

void LatencyHistogram::merge(const LatencyHistogram& o) {
    if (count() == 0 && native.count() == 0) {
        native = o.native;
    } else if (o.count() == 0) {
        // nothing of o's to add to the native buckets
    } else if (native.schema >= 0 && native.schema == o.native.schema &&
               native.buckets.size() == o.native.buckets.size()) {
        for (size_t k = 0; k < native.buckets.size(); ++k)
            native.buckets[k] += o.native.buckets[k];
    } else {
        native = {};
    }
    if (o.slots.size() > slots.size())
        slots.resize(o.slots.size(), 0);
    for (size_t i = 0; i < o.slots.size(); ++i)
        slots[i] += o.slots[i];
    sum += o.sum;
}

uint64_t NativeHistogram::count() const {
    uint64_t n = 0;
    for (uint64_t v : buckets)
        n += v;
    return n;
}

uint32_t native_bucket_count(int schema) {
    if (schema < 0 || schema > HP_NATIVE_MAX_SCHEMA)
        return 0;
    return ((HP_NATIVE_HIGH_EXP - HP_NATIVE_LOW_EXP) << schema) + 2;
}

std::vector<uint64_t> native_bounds_ns(int schema) {
    std::vector<uint64_t> out;
    const uint32_t n = native_bucket_count(schema);
    if (n == 0)
        return out;
    const double per_octave = std::ldexp(1.0, schema);
    for (uint32_t k = 0; k + 1 < n; ++k) {
        const double exponent = HP_NATIVE_LOW_EXP + static_cast<double>(k) / per_octave;
        out.push_back(static_cast<uint64_t>(std::floor(1e9 * std::exp2(exponent))));
    }
    return out;
}

int32_t native_first_index(int schema) {
    return HP_NATIVE_LOW_EXP * (1 << schema) + 1;
}

uint32_t native_bucket_of(const std::vector<uint64_t>& bounds_ns, uint64_t duration_ns) {
    return static_cast<uint32_t>(std::lower_bound(bounds_ns.begin(), bounds_ns.end(), duration_ns) -
                                 bounds_ns.begin());
}

double log2_slot_upper_bound(size_t slot) {
    return std::ldexp(1.0, static_cast<int>(slot) + 1);
}

} // namespace hostprof
