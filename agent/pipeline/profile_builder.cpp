#include "agent/pipeline/profile_builder.h"

#include <map>
#include <tuple>
#include <unordered_map>

#include "unwind/python_frames.h"

namespace hostprof {
namespace {

class Builder {
  public:
    Builder(Profile& p, FrameResolver& r) : p_(p), r_(r) {}

    uint32_t kernel_location(uint64_t address, bool leaf) {
        auto key = std::make_tuple(uint32_t{0}, address, true);
        if (auto it = locs_.find(key); it != locs_.end())
            return it->second;
        return add_location(key, address, r_.kernel(leaf ? address : address - 1));
    }

    uint32_t user_location(uint32_t pid, uint64_t address, bool leaf) {
        auto key = std::make_tuple(pid, address, false);
        if (auto it = locs_.find(key); it != locs_.end())
            return it->second;
        if (unwind::is_python_frame(address)) // no address: a code object and instruction
            return add_location(key, 0, r_.python(pid, address));
        if (auto it = resolved_.find(key); it != resolved_.end()) {
            ResolvedFrame f = std::move(it->second);
            resolved_.erase(it);
            return add_location(key, address, std::move(f));
        }
        return add_location(key, address, r_.user(pid, leaf ? address : address - 1));
    }

    // Every user frame of the window in one batch, before the samples are built: the
    // symbolizer orders the lookups by object and address. The first occurrence of an
    // address decides its adjustment (leaf or return address), as in user_location.
    void resolve_user_frames(const ProfileWindow& w, bool kernel_frames) {
        std::vector<FrameResolver::UserFrame> frames;
        std::vector<std::map<LocKey, ResolvedFrame>::iterator> slots; // parallel to frames
        for (const auto& [key, value] : w.stacks) {
            const size_t n = key.frames.size();
            // The first user frame is the leaf when no kernel frame precedes it.
            const bool kernel_leaf = kernel_frames && key.kernel_len > 0 && n > 0;
            for (size_t i = key.kernel_len; i < n; ++i) {
                const bool leaf = i == key.kernel_len && !kernel_leaf;
                if (unwind::is_python_frame(key.frames[i]))
                    continue; // resolved apart, by the interpreter's reader
                auto [slot, added] = resolved_.try_emplace(LocKey{key.pid, key.frames[i], false});
                if (!added)
                    continue;
                slots.push_back(slot);
                frames.push_back({key.pid, leaf ? key.frames[i] : key.frames[i] - 1});
            }
        }
        std::vector<ResolvedFrame> out = r_.user_batch(frames, {});
        for (size_t i = 0; i < slots.size() && i < out.size(); ++i)
            slots[i]->second = std::move(out[i]);
    }

    uint32_t named_location(const std::string& name) {
        if (auto it = named_.find(name); it != named_.end())
            return it->second;
        Location loc;
        loc.lines.push_back(Line{name, {}, 0});
        p_.locations.push_back(std::move(loc));
        auto idx = static_cast<uint32_t>(p_.locations.size() - 1);
        named_.emplace(name, idx);
        return idx;
    }

  private:
    uint32_t add_location(const std::tuple<uint32_t, uint64_t, bool>& key, uint64_t address,
                          ResolvedFrame frame) {
        Location loc;
        loc.address = address;
        loc.lines = std::move(frame.lines);
        if (!frame.mapping.file.empty()) {
            auto mkey = std::make_tuple(frame.mapping.file, frame.mapping.build_id,
                                        frame.mapping.start, frame.mapping.limit);
            auto it = mappings_.find(mkey);
            if (it == mappings_.end()) {
                p_.mappings.push_back(frame.mapping);
                it = mappings_.emplace(mkey, static_cast<int32_t>(p_.mappings.size() - 1)).first;
            }
            loc.mapping = it->second;
        }
        p_.locations.push_back(std::move(loc));
        auto idx = static_cast<uint32_t>(p_.locations.size() - 1);
        locs_.emplace(key, idx);
        return idx;
    }

    Profile& p_;
    FrameResolver& r_;
    using LocKey = std::tuple<uint32_t, uint64_t, bool>;
    std::map<LocKey, uint32_t> locs_;
    std::map<LocKey, ResolvedFrame> resolved_; // by resolve_user_frames, not placed yet
    std::map<std::tuple<std::string, std::string, uint64_t, uint64_t>, int32_t> mappings_;
    std::unordered_map<std::string, uint32_t> named_;
};

// What a sample's second value measures, per profile kind.
ValueType weight_type(hp_prof_kind kind) {
    switch (kind) {
    case HP_PROF_ON_CPU:
        return {"cpu", "nanoseconds"};
    case HP_PROF_SYSCALL_LATENCY:
        return {"syscall_latency", "nanoseconds"};
    default:
        return {"off_cpu", "nanoseconds"};
    }
}

void add_label(Sample& s, const char* key, const std::string& value) {
    if (!value.empty())
        s.labels.emplace_back(key, value);
}

} // namespace

Profile build_profile(const ProfileWindow& w, FrameResolver& resolver, const BuildOptions& o) {
    Profile p;
    const bool on_cpu = w.kind == HP_PROF_ON_CPU;
    const int64_t period = 1'000'000'000LL / (o.frequency_hz > 0 ? o.frequency_hz : 1);
    p.sample_types = {{"samples", "count"}, weight_type(w.kind)};
    p.period_type = p.sample_types[1];
    p.period = on_cpu ? period : 1;
    p.time_nanos = w.start_unix_ns;
    p.duration_nanos = w.end_unix_ns > w.start_unix_ns ? w.end_unix_ns - w.start_unix_ns : 0;

    Builder b(p, resolver);
    b.resolve_user_frames(w, o.kernel_frames);
    for (const auto& [key, value] : w.stacks) {
        Sample s;
        const size_t n = key.frames.size();
        s.locations.reserve(n + 1);
        bool leaf = true;
        if (o.kernel_frames) {
            for (size_t i = 0; i < key.kernel_len && i < n; ++i) {
                s.locations.push_back(b.kernel_location(key.frames[i], leaf));
                leaf = false;
            }
        }
        for (size_t i = key.kernel_len; i < n; ++i) {
            s.locations.push_back(b.user_location(key.pid, key.frames[i], leaf));
            leaf = false;
        }
        auto meta = w.processes.find({key.pid, key.start_time_ns});
        const ProcessInfo* info = meta == w.processes.end() ? nullptr : &meta->second;
        if (o.process_root_frame && info != nullptr)
            s.locations.push_back(b.named_location(info->comm));
        if (s.locations.empty())
            continue;
        s.values = {static_cast<int64_t>(value.count),
                    on_cpu ? static_cast<int64_t>(value.count) * period
                           : static_cast<int64_t>(value.weight_ns)};
        s.labels.emplace_back("pid", std::to_string(key.pid));
        if (key.tid != 0)
            s.labels.emplace_back("tid", std::to_string(key.tid));
        if (info != nullptr) {
            add_label(s, "comm", info->comm);
            add_label(s, "exe", info->exe);
            add_label(s, "service_name", info->service_name);
            add_label(s, "container_id", info->container.container_id);
            add_label(s, "pod_uid", info->container.pod_uid);
            add_label(s, "cgroup", info->cgroup);
        }
        p.samples.push_back(std::move(s));
    }
    return p;
}

} // namespace hostprof
