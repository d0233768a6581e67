// Turns an aggregated window (addresses) into a symbolized Profile (common/profile.h)
// through a FrameResolver, deduplicating mappings and locations.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "agent/aggregate/aggregator.h"
#include "common/profile.h"

namespace hostprof {
namespace sym {
struct SymbolizerStats;
}

struct ResolvedFrame {
    std::vector<Line> lines; // innermost first; empty when the address is unknown
    Mapping mapping;         // file empty when no mapping is known
};

// Address -> frames. The symbolizer implements it; tests use a table.
class FrameResolver {
  public:
    virtual ~FrameResolver() = default;
    virtual ResolvedFrame kernel(uint64_t address) = 0;
    // `address` is already adjusted for return addresses (caller frames: pc - 1).
    virtual ResolvedFrame user(uint32_t pid, uint64_t address) = 0;
    // All the user frames of a profile at once, results in request order. The symbolizer
    // orders the lookups by object and address (each DWARF unit read once, its memory
    // bounded); this default resolves them one by one. `each` runs before every lookup.
    struct UserFrame {
        uint32_t pid;
        uint64_t address; // adjusted, as for user()
    };
    // A Python frame of a user stack (unwind/python_frames.h): its function, file and line
    // (no mapping); lines empty when unknown.
    virtual ResolvedFrame python(uint32_t /*pid*/, uint64_t /*frame*/) { return {}; }
    virtual std::vector<ResolvedFrame> user_batch(const std::vector<UserFrame>& frames,
                                                  const std::function<void()>& each) {
        std::vector<ResolvedFrame> out;
        out.reserve(frames.size());
        for (const UserFrame& f : frames) {
            if (each)
                each();
            out.push_back(user(f.pid, f.address));
        }
        return out;
    }
    // A process was sampled for the first time: capture what symbolizing it needs
    // (mappings, build-ids) now, so its frames still resolve after it exits. False when
    // it was too late (the process exited before its mappings were read).
    virtual bool process_seen(uint32_t /*pid*/) { return true; }
    // Its mappings again, a few ms after the first sample (shared libraries mapped since).
    virtual bool process_refresh(uint32_t /*pid*/) { return true; }
    virtual void process_exited(uint32_t /*pid*/) {}
    // The symbolizer's counters (cache, misses by reason, file refusals, debuginfod), for
    // /metrics; false when the resolver has none. Unlike the calls above, safe to call
    // while another thread resolves frames.
    virtual bool symbolizer_stats(sym::SymbolizerStats& /*out*/) const { return false; }
    // A batch of lookups (one profile) is done: memory kept only to speed up lookups may
    // go back.
    virtual void release_memory() {}
};

struct BuildOptions {
    int frequency_hz = 19;           // on-CPU: period = 1e9 / frequency
    bool kernel_frames = true;       // include kernel frames
    bool process_root_frame = false; // add the process name as the root frame (flame graphs)
};

// On-CPU windows give sample types samples/count + cpu/nanoseconds (period
// cpu/nanoseconds); off-CPU windows give samples/count + off_cpu/nanoseconds.
Profile build_profile(const ProfileWindow& window, FrameResolver& resolver,
                      const BuildOptions& options);

} // namespace hostprof
