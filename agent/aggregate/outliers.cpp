#include "agent/aggregate/outliers.h"

#include <limits>

#include "agent/collect/latency_histogram.h"

namespace hostprof {

double latency_bucket_le(uint64_t duration_ns, size_t slots) {
    size_t slot = 0;
    for (uint64_t v = duration_ns; v > 1; v >>= 1)
        ++slot;
    if (slots == 0 || slot >= slots - 1)
        return std::numeric_limits<double>::infinity();
    // The same expression as to_prometheus_histogram, so ExemplarSet keys compare equal.
    return log2_slot_upper_bound(slot) * 1e-9;
}

uint64_t OutlierStore::add(Outlier o) {
    std::lock_guard lock(mu_);
    o.id = next_id_++;
    if (items_.size() >= capacity_) {
        items_.pop_front();
        ++evicted_;
    }
    items_.push_back(std::move(o));
    return items_.back().id;
}

std::optional<Outlier> OutlierStore::find(uint64_t id) const {
    std::lock_guard lock(mu_);
    // Ids increase along the deque: the position is the distance from the oldest.
    if (items_.empty() || id < items_.front().id || id > items_.back().id)
        return std::nullopt;
    return items_[id - items_.front().id];
}

std::vector<Outlier> OutlierStore::recent(size_t n) const {
    std::lock_guard lock(mu_);
    std::vector<Outlier> out;
    for (auto it = items_.rbegin(); it != items_.rend() && out.size() < n; ++it)
        out.push_back(*it);
    return out;
}

ExemplarSet OutlierStore::exemplars() const {
    std::lock_guard lock(mu_);
    ExemplarSet set;
    for (const Outlier& o : items_) { // oldest first: the newest per bucket wins
        Exemplar e;
        e.labels = {
            {"outlier_id", std::to_string(o.id)}, {"pid", std::to_string(o.pid)}, {"comm", o.comm}};
        e.value = static_cast<double>(o.duration_ns) * 1e-9;
        e.timestamp_seconds = static_cast<double>(o.unix_ns) * 1e-9;
        set.set(o.family, o.series, o.bucket_le, std::move(e));
    }
    return set;
}

size_t OutlierStore::size() const {
    std::lock_guard lock(mu_);
    return items_.size();
}

uint64_t OutlierStore::added() const {
    std::lock_guard lock(mu_);
    return next_id_ - 1;
}

uint64_t OutlierStore::evicted() const {
    std::lock_guard lock(mu_);
    return evicted_;
}

} // namespace hostprof
