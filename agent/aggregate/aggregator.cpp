#include "agent/aggregate/aggregator.h"

#include <chrono>

namespace hostprof {

int64_t unix_now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

bool ProfileFilter::matches(const ProcessInfo& p) const {
    if (pid && *pid != p.pid)
        return false;
    if (!cgroup_prefix.empty() && p.cgroup.rfind(cgroup_prefix, 0) != 0)
        return false;
    if (!container_id.empty() && p.container.container_id.rfind(container_id, 0) != 0)
        return false;
    if (!service.empty() && p.service_name != service)
        return false;
    if (comm && !comm->matches(p.comm))
        return false;
    return true;
}

ProfileAggregator::ProfileAggregator(hp_prof_kind kind, ProfileFilter filter, bool per_thread,
                                     size_t max_stacks)
    : kind_(kind), filter_(std::move(filter)), per_thread_(per_thread), max_stacks_(max_stacks) {
    window_.kind = kind_;
    window_.start_unix_ns = unix_now_ns();
}

bool ProfileAggregator::add(const StackRecordView& r, ProcessTable& meta) {
    if (r.kind != kind_)
        return false;
    ++window_.records;
    std::pair<uint32_t, uint64_t> proc{r.pid, r.start_time_ns};
    if (!last_admitted_ || last_admitted_->first != proc) {
        auto adm = admitted_.find(proc);
        if (adm == admitted_.end()) {
            const ProcessInfo& info = meta.get(r.pid, r.start_time_ns, r.comm);
            bool ok = filter_.matches(info);
            adm = admitted_.emplace(proc, ok).first;
            if (ok) // after an exec: the new image's metadata replaces the old one's
                window_.processes.insert_or_assign(proc, info);
        }
        last_admitted_.emplace(proc, adm->second);
    }
    if (!last_admitted_->second) {
        ++window_.filtered;
        return false;
    }

    if (!window_.stacks.add(r.pid, per_thread_ ? r.tid : 0, r.start_time_ns, r.kernel_frames,
                            r.user_frames, StackValue{1, r.weight_ns}, max_stacks_))
        ++dropped_;
    return true;
}

void ProfileAggregator::on_exec(uint32_t pid) {
    admitted_.erase(admitted_.lower_bound({pid, 0}), admitted_.lower_bound({pid + 1ULL, 0}));
    last_admitted_.reset();
}

ProfileWindow ProfileAggregator::take() {
    ProfileWindow out = std::move(window_);
    out.end_unix_ns = unix_now_ns();
    window_ = ProfileWindow{};
    window_.kind = kind_;
    window_.start_unix_ns = out.end_unix_ns;
    admitted_.clear();
    last_admitted_.reset();
    return out;
}

} // namespace hostprof
