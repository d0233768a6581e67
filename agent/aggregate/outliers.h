// Recent slow events (syscall outliers, slow block I/O), kept so that an OpenMetrics
// exemplar on a latency bucket can point at one of them and its stack can be fetched
// afterwards (/debug/outliers?id=N). Bounded: the oldest are evicted first.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "exporters/metrics.h"

namespace hostprof {

struct Outlier {
    uint64_t id = 0;      // assigned by OutlierStore::add, increasing from 1
    std::string family;   // the histogram it belongs to: "hostprof_syscall_latency_seconds"
    Labels series;        // that histogram's series labels: {syscall="read"}
    double bucket_le = 0; // the bucket it landed in (latency_bucket_le)
    std::string what;     // a short description: "read", "vda write"
    uint32_t pid = 0;     // 0 when unknown (I/O completed in interrupt context)
    uint32_t tid = 0;
    uint64_t start_time_ns = 0; // process identity with pid
    std::string comm;
    uint64_t duration_ns = 0;
    int64_t unix_ns = 0; // when it ended
    int64_t result = 0;  // syscall return value / I/O error
    uint16_t kernel_len = 0;
    std::vector<uint64_t> frames; // kernel frames then user frames, leaf first; may be empty
};

class OutlierStore {
  public:
    explicit OutlierStore(size_t capacity) : capacity_(capacity ? capacity : 1) {}

    // Stores o (its id is assigned) and returns the id; evicts the oldest when full.
    uint64_t add(Outlier o);
    std::optional<Outlier> find(uint64_t id) const;
    // Up to n of the newest, newest first.
    std::vector<Outlier> recent(size_t n) const;
    // One exemplar per histogram bucket: the newest outlier that landed in it, with labels
    // outlier_id, pid and comm.
    ExemplarSet exemplars() const;

    size_t size() const;
    size_t capacity() const { return capacity_; }
    uint64_t added() const;
    uint64_t evicted() const;

  private:
    const size_t capacity_;
    mutable std::mutex mu_;
    std::deque<Outlier> items_; // oldest first
    uint64_t next_id_ = 1;
    uint64_t evicted_ = 0;
};

// The `le` of the bucket a duration lands in, for a histogram of `slots` log2 slots of
// nanoseconds exported in seconds (to_prometheus_histogram): 2^(i+1) ns, or +Inf for the
// open last slot.
double latency_bucket_le(uint64_t duration_ns, size_t slots);

} // namespace hostprof
