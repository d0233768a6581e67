#include "agent/collect/runqueue_collector.h"

#include <linux/types.h>

#include <cerrno>

#include "agent/collect/latency_bpf_util.h"
#include "runqueue.h"
#include "runqueue.skel.h"

namespace hostprof {

Result<std::unique_ptr<RunQueueCollector>>
RunQueueCollector::start(const RunQueueOptions& options) {
    if (options.tgid != 0 && options.mode == compat::AttachMode::Tracepoint)
        return Error{EINVAL, "runqueue: a process filter needs tp_btf or raw_tp (classic "
                             "sched_wakeup records carry no tgid)"};
    std::unique_ptr<RunQueueCollector> c(new RunQueueCollector());
    auto skel = Skeleton<runqueue_bpf>::open();
    if (!skel)
        return skel.error();
    c->skel_ = std::move(skel.value());
    runqueue_bpf* s = c->skel_.get();
    s->rodata->cfg_filter_tgid = options.tgid;
    if (Status st =
            latency::configure_native(s->maps.hp_native, s->rodata->cfg_native_buckets,
                                      s->rodata->cfg_native_bounds, options.native_schema, 1);
        !st)
        return st.error();
    c->native_schema_ = options.native_schema;

    latency::choose_variant(s->progs.hp_rqwake_btf, s->progs.hp_rqwake_raw, s->progs.hp_rqwake_tp,
                            true, options.mode);
    latency::choose_variant(s->progs.hp_rqwnew_btf, s->progs.hp_rqwnew_raw, s->progs.hp_rqwnew_tp,
                            true, options.mode);
    latency::choose_variant(s->progs.hp_rqswitch_btf, s->progs.hp_rqswitch_raw,
                            s->progs.hp_rqswitch_tp, true, options.mode);
    if (Status st = c->skel_.load(); !st)
        return st.error();

    // sched_switch first: it consumes what the wakeup hooks record.
    if (Status st = latency::attach_chosen(s->progs.hp_rqswitch_btf, s->progs.hp_rqswitch_raw,
                                           s->progs.hp_rqswitch_tp, "sched/sched_switch",
                                           options.mode, c->links_, c->attached_);
        !st)
        return st.error();
    if (Status st = latency::attach_chosen(s->progs.hp_rqwake_btf, s->progs.hp_rqwake_raw,
                                           s->progs.hp_rqwake_tp, "sched/sched_wakeup",
                                           options.mode, c->links_, c->attached_);
        !st)
        return st.error();
    if (Status st = latency::attach_chosen(s->progs.hp_rqwnew_btf, s->progs.hp_rqwnew_raw,
                                           s->progs.hp_rqwnew_tp, "sched/sched_wakeup_new",
                                           options.mode, c->links_, c->attached_);
        !st)
        return st.error();
    return c;
}

RunQueueCollector::~RunQueueCollector() {
    links_.clear();
    skel_.reset();
}

RunQueueSnapshot RunQueueCollector::snapshot() const {
    RunQueueSnapshot out;
    out.latency.slots.assign(HP_RQ_SLOTS, 0);
    std::vector<hp_rq_hist> per_cpu(latency::possible_cpus());
    uint32_t zero = 0;
    if (bpf_map__lookup_elem(skel_->maps.hp_rq_hist, &zero, sizeof(zero), per_cpu.data(),
                             per_cpu.size() * sizeof(hp_rq_hist), 0) == 0) {
        for (const hp_rq_hist& h : per_cpu) {
            for (size_t i = 0; i < HP_RQ_SLOTS; ++i)
                out.latency.slots[i] += h.slots[i];
            out.latency.sum += h.sum_ns;
        }
    }
    if (native_schema_ >= 0)
        out.latency.native = latency::read_native(skel_->maps.hp_native, 0, native_schema_);
    out.kernel_stats.assign(HP_RQ_STAT_MAX, 0);
    latency::sum_percpu_counters(skel_->maps.hp_rq_stats, out.kernel_stats);
    return out;
}

std::vector<ProgramFd> RunQueueCollector::programs() const {
    return loaded_programs(skel_->obj);
}

} // namespace hostprof
