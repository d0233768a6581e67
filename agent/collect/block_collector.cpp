#include "agent/collect/block_collector.h"

#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>

#include "agent/collect/latency_bpf_util.h"
#include "block.skel.h"
#include "kernel-compat/features.h"

namespace hostprof {

std::string_view block_op_name(uint32_t op) {
    switch (op) {
    case HP_BLK_OP_READ:
        return "read";
    case HP_BLK_OP_WRITE:
        return "write";
    case HP_BLK_OP_FLUSH:
        return "flush";
    case HP_BLK_OP_DISCARD:
        return "discard";
    default:
        return "other";
    }
}

std::optional<SlowIo> decode_slow_io(std::span<const std::byte> data) {
    if (data.size() < sizeof(hp_blk_event) ||
        reinterpret_cast<uintptr_t>(data.data()) % alignof(uint64_t) != 0)
        return std::nullopt;
    const auto* r = reinterpret_cast<const hp_blk_event*>(data.data());
    return SlowIo{
        .timestamp_ns = r->timestamp_ns,
        .service_ns = r->service_ns,
        .queue_ns = r->queue_ns,
        .sector = r->sector,
        .major = r->major,
        .minor = r->minor,
        .op = block_op_name(r->op),
        .bytes = r->bytes,
        .pid = r->pid,
        .error = r->error,
        .comm = std::string_view(r->comm, strnlen(r->comm, HP_BLK_COMM_LEN)),
    };
}

std::map<std::pair<uint32_t, uint32_t>, std::string>
block_device_names(const std::string& sys_root) {
    std::map<std::pair<uint32_t, uint32_t>, std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(sys_root + "/block", ec)) {
        std::ifstream in(e.path() / "dev");
        uint32_t major = 0, minor = 0;
        char colon = 0;
        if (in >> major >> colon >> minor && colon == ':')
            out[{major, minor}] = e.path().filename().string();
    }
    return out;
}

const BlockStats* BlockSnapshot::find(std::string_view device, std::string_view op) const {
    for (const BlockStats& b : devices)
        if (b.device == device && b.op == op)
            return &b;
    return nullptr;
}

Result<std::unique_ptr<BlockCollector>> BlockCollector::start(const BlockOptions& options,
                                                              SlowHandler on_slow) {
    if (options.mode != compat::AttachMode::TpBtf && options.mode != compat::AttachMode::RawTp)
        return Error{EINVAL, "block: needs tp_btf or raw_tp (requests are keyed by their "
                             "pointer, which classic tracepoint records do not carry)"};
    std::unique_ptr<BlockCollector> c(new BlockCollector());
    c->on_slow_ = std::move(on_slow);
    c->sys_root_ = options.sys_root;
    auto skel = Skeleton<block_bpf>::open();
    if (!skel)
        return skel.error();
    c->skel_ = std::move(skel.value());
    block_bpf* s = c->skel_.get();
    s->rodata->cfg_slow_ns = options.slow_threshold_ns;
    if (Status st = latency::configure_native(s->maps.hp_native, s->rodata->cfg_native_buckets,
                                              s->rodata->cfg_native_bounds, options.native_schema,
                                              HP_BLK_NATIVE_HISTS);
        !st)
        return st.error();
    c->native_schema_ = options.native_schema;
    s->rodata->cfg_task_btf = compat::probe_task_btf().available;
    // Insert and issue claim array slots with compare-and-swap (Linux 5.12+); before,
    // their _nocas programs keep every request in the hash map.
    const bool cas = options.inflight_slots && compat::probe_bpf_atomics().available;
    s->rodata->cfg_cmpxchg = cas;
    const bool btf = options.mode == compat::AttachMode::TpBtf;
    bpf_program* ins_btf = cas ? s->progs.hp_blkins_btf : s->progs.hp_blkins_btf_nocas;
    bpf_program* ins_raw = cas ? s->progs.hp_blkins_raw : s->progs.hp_blkins_raw_nocas;
    bpf_program* issue_btf = cas ? s->progs.hp_blkissue_btf : s->progs.hp_blkissue_btf_nocas;
    bpf_program* issue_raw = cas ? s->progs.hp_blkissue_raw : s->progs.hp_blkissue_raw_nocas;
    for (bpf_program* p :
         {s->progs.hp_blkins_btf, s->progs.hp_blkins_raw, s->progs.hp_blkissue_btf,
          s->progs.hp_blkissue_raw, s->progs.hp_blkins_btf_nocas, s->progs.hp_blkins_raw_nocas,
          s->progs.hp_blkissue_btf_nocas, s->progs.hp_blkissue_raw_nocas})
        bpf_program__set_autoload(p, false);
    for (auto [b, r] : {std::pair{ins_btf, ins_raw}, std::pair{issue_btf, issue_raw},
                        std::pair{s->progs.hp_blkdone_btf, s->progs.hp_blkdone_raw}}) {
        bpf_program__set_autoload(b, btf);
        bpf_program__set_autoload(r, !btf);
    }
    if (Status st = c->skel_.load(); !st)
        return st.error();
    ring_buffer* rb = ring_buffer__new(bpf_map__fd(s->maps.hp_blk_events),
                                       &BlockCollector::on_record, c.get(), nullptr);
    if (rb == nullptr)
        return errno_error("block: create ring buffer consumer");
    c->ring_.reset(rb);

    struct Hook {
        bpf_program* btf;
        bpf_program* raw;
        const char* name;
    };
    // Completion first, then issue, then insert: each consumes what the next records.
    const Hook hooks[] = {
        {s->progs.hp_blkdone_btf, s->progs.hp_blkdone_raw, "block/block_rq_complete"},
        {issue_btf, issue_raw, "block/block_rq_issue"},
        {ins_btf, ins_raw, "block/block_rq_insert"},
    };
    for (const Hook& h : hooks)
        if (Status st = latency::attach_chosen(h.btf, h.raw, h.raw, h.name, options.mode, c->links_,
                                               c->attached_);
            !st)
            return st.error();
    return c;
}

BlockCollector::~BlockCollector() {
    ring_.reset();
    links_.clear();
    skel_.reset();
}

int BlockCollector::on_record(void* ctx, void* data, size_t size) {
    auto* self = static_cast<BlockCollector*>(ctx);
    ++self->records_;
    auto rec = decode_slow_io({static_cast<const std::byte*>(data), size});
    if (!rec) {
        ++self->decode_errors_;
        return 0;
    }
    if (self->on_slow_)
        self->on_slow_(*rec);
    return 0;
}

int BlockCollector::poll(int timeout_ms) {
    int n = ring_buffer__poll(ring_.get(), timeout_ms);
    if (n < 0)
        return n;
    int m = consume();
    return m < 0 ? m : n + m;
}

int BlockCollector::consume() {
    return ring_buffer__consume(ring_.get());
}

int BlockCollector::ring_fd() const {
    return ring_buffer__epoll_fd(ring_.get());
}

namespace {

LatencyHistogram slots_of(const __u64* s) {
    LatencyHistogram h;
    h.slots.assign(s, s + HP_BLK_SLOTS);
    return h;
}

void add_stats(hp_blk_stats& sum, const hp_blk_stats& v) {
    for (size_t i = 0; i < HP_BLK_SLOTS; ++i) {
        sum.service[i] += v.service[i];
        sum.queue[i] += v.queue[i];
        sum.size[i] += v.size[i];
    }
    sum.service_sum_ns += v.service_sum_ns;
    sum.queue_sum_ns += v.queue_sum_ns;
    sum.bytes += v.bytes;
    sum.requests += v.requests;
}

} // namespace

BlockSnapshot BlockCollector::snapshot() const {
    BlockSnapshot out;
    const size_t ncpu = latency::possible_cpus();
    // (disk, op) -> its stats over every CPU, from both maps: each CPU keeps a (disk, op)
    // in its own copy of an array slot, or in the hash where that slot was taken.
    using Key = std::tuple<uint32_t, uint32_t, uint32_t>;
    std::map<Key, hp_blk_stats> sums;
    // The native buckets of a (disk, op), from the CPUs whose array slot holds it; a
    // (disk, op) in the hash on any CPU has none (the hash keeps no native buckets).
    struct Natives {
        NativeHistogram service, queue;
    };
    std::map<Key, Natives> natives;
    const uint32_t buckets = native_bucket_count(native_schema_);
    auto add_cpu = [&](NativeHistogram& to, const std::vector<std::vector<uint64_t>>& from,
                       size_t cpu) {
        if (to.schema < 0) {
            to.schema = native_schema_;
            to.buckets.assign(buckets, 0);
        }
        if (cpu < from.size())
            for (size_t k = 0; k < buckets; ++k)
                to.buckets[k] += from[cpu][k];
    };
    std::vector<hp_blk_dev_slot> slots(ncpu);
    std::vector<std::vector<uint64_t>> service, queue;
    for (uint32_t i = 0; i < HP_BLK_DEV_SLOTS; ++i) {
        if (bpf_map__lookup_elem(skel_->maps.hp_blk_dev_stats, &i, sizeof(i), slots.data(),
                                 slots.size() * sizeof(hp_blk_dev_slot), 0) != 0)
            continue;
        service.clear();
        queue.clear();
        if (buckets != 0) {
            latency::read_native_percpu(skel_->maps.hp_native,
                                        i * HP_BLK_NATIVE_KINDS + HP_BLK_NATIVE_SERVICE, buckets,
                                        service);
            latency::read_native_percpu(skel_->maps.hp_native,
                                        i * HP_BLK_NATIVE_KINDS + HP_BLK_NATIVE_QUEUE, buckets,
                                        queue);
        }
        for (size_t cpu = 0; cpu < slots.size(); ++cpu) {
            const hp_blk_dev_slot& v = slots[cpu];
            if (!v.used)
                continue;
            const Key k{v.key.major, v.key.minor, v.key.op};
            add_stats(sums[k], v.stats);
            if (buckets == 0)
                continue;
            Natives& n = natives[k];
            add_cpu(n.service, service, cpu);
            add_cpu(n.queue, queue, cpu);
        }
    }
    std::vector<hp_blk_stats> per_cpu(ncpu);
    hp_blk_key key{}, next{};
    const void* prev = nullptr;
    while (bpf_map__get_next_key(skel_->maps.hp_blk_stats, prev, &next, sizeof(next)) == 0) {
        key = next;
        prev = &key;
        if (bpf_map__lookup_elem(skel_->maps.hp_blk_stats, &key, sizeof(key), per_cpu.data(),
                                 per_cpu.size() * sizeof(hp_blk_stats), 0) != 0)
            continue;
        hp_blk_stats& sum = sums[{key.major, key.minor, key.op}];
        for (const hp_blk_stats& v : per_cpu)
            add_stats(sum, v);
        natives.erase({key.major, key.minor, key.op});
    }
    auto names = block_device_names(sys_root_);
    for (const auto& [k, sum] : sums) {
        const auto [major, minor, op] = k;
        BlockStats b;
        b.major = major;
        b.minor = minor;
        auto it = names.find({major, minor});
        b.device =
            it != names.end() ? it->second : std::to_string(major) + ":" + std::to_string(minor);
        b.op = std::string(block_op_name(op));
        b.service = slots_of(sum.service);
        b.service.sum = sum.service_sum_ns;
        b.queue = slots_of(sum.queue);
        b.queue.sum = sum.queue_sum_ns;
        if (auto n = natives.find(k); n != natives.end()) {
            b.service.native = std::move(n->second.service);
            b.queue.native = std::move(n->second.queue);
        }
        b.size = slots_of(sum.size);
        b.size.sum = sum.bytes;
        b.bytes = sum.bytes;
        b.requests = sum.requests;
        out.devices.push_back(std::move(b));
    }
    std::sort(out.devices.begin(), out.devices.end(), [](const BlockStats& a, const BlockStats& b) {
        return std::tie(a.major, a.minor, a.op) < std::tie(b.major, b.minor, b.op);
    });
    out.kernel_stats.assign(HP_BLK_STAT_MAX, 0);
    latency::sum_percpu_counters(skel_->maps.hp_blk_counters, out.kernel_stats);
    out.slow_records = records_.load(std::memory_order_relaxed);
    out.decode_errors = decode_errors_.load(std::memory_order_relaxed);
    return out;
}

std::vector<ProgramFd> BlockCollector::programs() const {
    return loaded_programs(skel_->obj);
}

} // namespace hostprof
