#include "agent/pipeline/symbolizer_resolver.h"

#include <spdlog/spdlog.h>

#include "agent/config/config.h"
#include "symbolizer/symbolizer.h"

namespace hostprof {
namespace {

// The symbolizer behind the profile builder's interface: frames become Lines (innermost
// first), the module and its build-id become the Mapping.
class SymbolizerResolver final : public FrameResolver {
  public:
    explicit SymbolizerResolver(sym::SymbolizerOptions options) : sym_(std::move(options)) {}
    const sym::Symbolizer& symbolizer() const { return sym_; }

    ResolvedFrame kernel(uint64_t address) override { return convert(sym_.kernel(address)); }
    ResolvedFrame user(uint32_t pid, uint64_t address) override {
        return convert(sym_.user(pid, address));
    }
    std::vector<ResolvedFrame> user_batch(const std::vector<UserFrame>& frames,
                                          const std::function<void()>& each) override {
        std::vector<sym::Symbolizer::UserAddress> in;
        in.reserve(frames.size());
        for (const UserFrame& f : frames)
            in.push_back({f.pid, f.address});
        std::vector<ResolvedFrame> out;
        out.reserve(frames.size());
        for (const sym::FrameResult& r : sym_.user_batch(in, each))
            out.push_back(convert(r));
        return out;
    }
    bool process_seen(uint32_t pid) override { return sym_.process_seen(pid); }
    bool process_refresh(uint32_t pid) override { return sym_.process_refresh(pid); }
    void process_exited(uint32_t pid) override { sym_.process_exited(pid); }
    bool symbolizer_stats(sym::SymbolizerStats& out) const override {
        out = sym_.stats_nowait(); // the symbolizer's lock, not the resolver's
        return true;
    }
    void release_memory() override { sym_.release_memory(); }

  private:
    static sym::SymbolizerOptions options(size_t cache_bytes) {
        sym::SymbolizerOptions o;
        o.cache_bytes = cache_bytes;
        return o;
    }
    static ResolvedFrame convert(const sym::FrameResult& r) {
        ResolvedFrame f;
        for (const auto& fr : r.frames)
            f.lines.push_back(Line{fr.function, fr.file, fr.line});
        f.mapping.file = r.module;
        f.mapping.build_id = r.build_id;
        f.mapping.start = r.map_start;
        f.mapping.limit = r.map_limit;
        f.mapping.offset = r.map_offset;
        return f;
    }

    sym::Symbolizer sym_;
};

} // namespace

sym::SymbolizerOptions symbolizer_options(const Config& config) {
    sym::SymbolizerOptions o;
    o.cache_bytes = config.symbol_cache_bytes;
    o.max_perf_map_bytes = config.perf_map_max_bytes;
    o.debuginfod.urls = config.debuginfod_urls;
    o.debuginfod.cache_dir = config.debuginfod_cache_dir;
    o.debuginfod.timeout_ms = config.debuginfod_timeout_ns / 1'000'000;
    return o;
}

std::unique_ptr<FrameResolver> make_symbolizer_resolver(sym::SymbolizerOptions options) {
    const std::string cache = options.debuginfod.cache_dir;
    auto r = std::make_unique<SymbolizerResolver>(std::move(options));
    if (!r->symbolizer().debuginfod_error().empty())
        spdlog::warn("debuginfod off: {}", r->symbolizer().debuginfod_error());
    else if (r->symbolizer().stats().debuginfod_enabled)
        spdlog::info("debuginfod on (cache {})", cache);
    return r;
}

} // namespace hostprof
