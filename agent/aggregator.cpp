#include "agent/aggregator.h"

#include <chrono>

namespace hostprof {

int64_t unix_now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

size_t StackKeyHash::operator()(const StackKey& k) const {
    // FNV-1a over the fields: fast, and good enough for return addresses.
    uint64_t h = 1469598103934665603ULL;
    auto mix = [&h](uint64_t v) {
        h ^= v;
        h *= 1099511628211ULL;
    };
    mix(k.pid);
    mix(k.tid);
    mix(k.start_time_ns);
    mix(k.kernel_len);
    for (uint64_t f : k.frames)
        mix(f);
    return static_cast<size_t>(h);
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
            if (ok)
                window_.processes.emplace(proc, info);
        }
        last_admitted_.emplace(proc, adm->second);
    }
    if (!last_admitted_->second) {
        ++window_.filtered;
        return false;
    }

    scratch_.pid = r.pid;
    scratch_.tid = per_thread_ ? r.tid : 0;
    scratch_.start_time_ns = r.start_time_ns;
    scratch_.kernel_len = static_cast<uint16_t>(r.kernel_frames.size());
    scratch_.frames.assign(r.kernel_frames.begin(), r.kernel_frames.end());
    scratch_.frames.insert(scratch_.frames.end(), r.user_frames.begin(), r.user_frames.end());
    auto it = window_.stacks.find(scratch_);
    if (it == window_.stacks.end()) {
        if (window_.stacks.size() >= max_stacks_) {
            ++dropped_;
            return true;
        }
        it = window_.stacks.emplace(scratch_, StackValue{}).first;
    }
    ++it->second.count;
    it->second.weight_ns += r.weight_ns;
    return true;
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
