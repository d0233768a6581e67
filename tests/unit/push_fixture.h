// Shared by the push tests (pyroscope_push_test.cpp, otlp_push_test.cpp): a PushSource of
// synthetic windows symbolized through a fixed table, and a polling wait.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "agent/pipeline/profile_builder.h"
#include "agent/push/profile_pusher.h"

namespace hostprof::testing {

using namespace std::chrono_literals;

// Addresses 0x401000.. resolve to spin (leaf) and main; kernel ones to kfunc.
class TableResolver : public FrameResolver {
  public:
    ResolvedFrame kernel(uint64_t) override {
        ResolvedFrame f;
        f.lines.push_back({"kfunc", "", 0});
        f.mapping.file = "[kernel.kallsyms]";
        return f;
    }
    ResolvedFrame user(uint32_t, uint64_t a) override {
        ResolvedFrame f;
        if (a >= 0x401000 && a < 0x401100)
            f.lines = {{"spin", "app.c", 3}};
        else
            f.lines = {{"main", "app.c", 20}};
        f.mapping.file = "/usr/bin/app";
        f.mapping.start = 0x400000;
        f.mapping.limit = 0x500000;
        return f;
    }
};

inline constexpr int kHz = 99;
inline constexpr int64_t kPeriod = 1'000'000'000 / kHz;

// Every collect() returns the same window: on-CPU, checkout (pids 100 and 101, the same
// stack: 30 + 5 samples) and search (pid 200, 20 samples); off-CPU, checkout blocked
// 1.5 s in 3 intervals.
class SyntheticSource : public PushSource {
  public:
    uint64_t subscribe(hp_prof_kind kind) override {
        std::lock_guard lock(mu_);
        active_[next_] = kind;
        return next_++;
    }
    ProfileWindow collect(uint64_t id) override {
        std::lock_guard lock(mu_);
        auto it = active_.find(id);
        if (it == active_.end())
            return {};
        const hp_prof_kind kind = it->second;
        active_.erase(it);
        ProfileWindow w;
        w.kind = kind;
        w.start_unix_ns = 1'700'000'000'000'000'000;
        w.end_unix_ns = w.start_unix_ns + 2'000'000'000;
        auto proc = [&](uint32_t pid, const char* service) {
            ProcessInfo p;
            p.pid = pid;
            p.start_time_ns = pid * 10;
            p.comm = service;
            p.service_name = service;
            w.processes[{pid, pid * 10ULL}] = p;
        };
        auto stack = [&](uint32_t pid, std::vector<uint64_t> frames, uint16_t klen, uint64_t count,
                         uint64_t weight) {
            StackKey k;
            k.pid = pid;
            k.start_time_ns = pid * 10ULL;
            k.kernel_len = klen;
            k.frames = std::move(frames);
            w.stacks.add(k, {count, weight});
        };
        proc(100, "checkout");
        proc(101, "checkout");
        proc(200, "search");
        if (kind == HP_PROF_ON_CPU) {
            stack(100, {0x401010, 0x401150}, 0, 30, 0);
            stack(101, {0x401010, 0x401150}, 0, 5, 0);
            stack(200, {0xffffffff81000010, 0x401150}, 1, 20, 0);
        } else {
            stack(100, {0x401150}, 0, 3, 1'500'000'000);
        }
        return w;
    }
    Profile symbolize(const ProfileWindow& w) override {
        BuildOptions o;
        o.frequency_hz = kHz;
        return build_profile(w, resolver_, o);
    }
    size_t active() const {
        std::lock_guard lock(mu_);
        return active_.size();
    }

  private:
    mutable std::mutex mu_;
    std::map<uint64_t, hp_prof_kind> active_;
    uint64_t next_ = 1;
    TableResolver resolver_;
};

template <class F> bool wait_for(F done, std::chrono::milliseconds limit = 20s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > end)
            return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

} // namespace hostprof::testing
