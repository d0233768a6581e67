// The block-I/O collector: owns the `block` BPF skeleton (block_rq_insert / issue /
// complete), its links and its slow-I/O ring-buffer consumer. Per disk and op, service
// time, queue time, request size, bytes and requests are aggregated in kernel maps and
// read by snapshot(); slow requests arrive through poll() and the callback.
#pragma once

#include <linux/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "agent/collect/latency_histogram.h"
#include "block.h"
#include "common/bpf_handles.h"
#include "common/result.h"
#include "kernel-compat/planner.h"

struct block_bpf;

namespace hostprof {

struct BlockOptions {
    // tp_btf or raw_tp: the request pointer is the key, and classic tracepoint records do
    // not carry it, so start() refuses AttachMode::Tracepoint.
    compat::AttachMode mode = compat::AttachMode::TpBtf;
    uint64_t slow_threshold_ns = 100'000'000; // slow-I/O records; 0: none
    std::string sys_root = "/sys";            // where /sys/block/*/dev names the disks
    // Requests in flight take a direct-mapped array slot where BPF compare-and-exchange
    // works (5.12+, probed); false: the hash map alone, as on older kernels (tests).
    bool inflight_slots = true;
    // Exact native-histogram buckets at this schema (0..3) for the service and queue
    // times; -1: none (bpf/native.h).
    int native_schema = -1;
};

struct BlockStats {
    uint32_t major = 0;
    uint32_t minor = 0;
    std::string device;       // "vda"; "major:minor" when /sys/block does not name it
    std::string op;           // "read", "write", "flush", "discard", "other"
    LatencyHistogram service; // ns
    LatencyHistogram queue;   // ns, requests whose insert was seen
    LatencyHistogram size;    // bytes
    uint64_t bytes = 0;
    uint64_t requests = 0;
};

struct BlockSnapshot {
    std::vector<BlockStats> devices;    // by (major, minor, op)
    std::vector<uint64_t> kernel_stats; // hp_blk_counters summed, HP_BLK_STAT_MAX entries
    uint64_t slow_records = 0;
    uint64_t decode_errors = 0;

    const BlockStats* find(std::string_view device, std::string_view op) const;
};

struct SlowIo {
    uint64_t timestamp_ns;
    uint64_t service_ns;
    uint64_t queue_ns; // 0 when the insert was not seen
    uint64_t sector;
    uint32_t major;
    uint32_t minor;
    std::string_view op;
    uint32_t bytes;
    uint32_t pid;
    int32_t error;
    std::string_view comm;
};

// Decodes a slow-I/O record (size checked).
std::optional<SlowIo> decode_slow_io(std::span<const std::byte> data);
// "read", "write", "flush", "discard", "other".
std::string_view block_op_name(uint32_t op);
// Whole disks from <sys_root>/block/*/dev: (major, minor) -> name.
std::map<std::pair<uint32_t, uint32_t>, std::string>
block_device_names(const std::string& sys_root);

class BlockCollector {
  public:
    using SlowHandler = std::function<void(const SlowIo&)>;

    static Result<std::unique_ptr<BlockCollector>> start(const BlockOptions& options,
                                                         SlowHandler on_slow);
    ~BlockCollector();
    BlockCollector(const BlockCollector&) = delete;
    BlockCollector& operator=(const BlockCollector&) = delete;

    int poll(int timeout_ms);
    // Drains the ring without waiting (for a consumer that waits on ring_fd() itself).
    int consume();
    int ring_fd() const;
    BlockSnapshot snapshot() const; // cumulative since start; disk names re-read each time
    const std::vector<std::string>& attached() const { return attached_; }
    // Every loaded program, for run-time statistics (descriptors stay owned here).
    std::vector<ProgramFd> programs() const;

  private:
    BlockCollector() = default;
    static int on_record(void* ctx, void* data, size_t size);

    Skeleton<block_bpf> skel_;
    std::vector<BpfLink> links_;
    RingBuffer ring_;
    SlowHandler on_slow_;
    std::string sys_root_;
    int native_schema_ = -1;
    std::atomic<uint64_t> records_{0};
    std::atomic<uint64_t> decode_errors_{0};
    std::vector<std::string> attached_;
};

} // namespace hostprof
