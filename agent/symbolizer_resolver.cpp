#include "agent/symbolizer_resolver.h"

#include "symbolizer/symbolizer.h"

namespace hostprof {
namespace {

// The symbolizer behind the profile builder's interface: frames become Lines (innermost
// first), the module and its build-id become the Mapping.
class SymbolizerResolver final : public FrameResolver {
  public:
    explicit SymbolizerResolver(size_t cache_bytes) : sym_(options(cache_bytes)) {}

    ResolvedFrame kernel(uint64_t address) override { return convert(sym_.kernel(address)); }
    ResolvedFrame user(uint32_t pid, uint64_t address) override {
        return convert(sym_.user(pid, address));
    }
    void process_seen(uint32_t pid) override { sym_.process_seen(pid); }
    void process_exited(uint32_t pid) override { sym_.process_exited(pid); }

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

std::unique_ptr<FrameResolver> make_symbolizer_resolver(size_t cache_bytes) {
    return std::make_unique<SymbolizerResolver>(cache_bytes);
}

} // namespace hostprof
