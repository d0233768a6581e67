#include "agent/app/cmd_symbolize.h"

#include <cstdio>

#include "symbolizer/symbolizer.h"

namespace hostprof {

int run_symbolize(const SymbolizeArgs& args) {
    int modes = (args.pid != 0) + !args.elf.empty() + args.kernel;
    if (modes != 1 || args.addresses.empty()) {
        std::fprintf(stderr,
                     "hostprof symbolize: give exactly one of --pid, --elf, --kernel and at "
                     "least one address\n");
        return 2;
    }
    sym::SymbolizerOptions o;
    o.proc_root = args.proc_root;
    o.demangle = !args.no_demangle;
    o.inlines = !args.no_inlines;
    o.dwarf = !args.no_dwarf;
    o.debuginfod.urls = args.debuginfod_urls;
    o.debuginfod.cache_dir = args.debuginfod_cache_dir;
    sym::Symbolizer s(o);
    if (!s.debuginfod_error().empty()) {
        std::fprintf(stderr, "hostprof symbolize: %s\n", s.debuginfod_error().c_str());
        return 2;
    }
    if (args.pid != 0)
        s.process_seen(args.pid);
    std::vector<uint64_t> addrs;
    for (const std::string& a : args.addresses) {
        uint64_t addr = 0;
        if (!sym::parse_hex(a, addr)) {
            std::fprintf(stderr, "hostprof symbolize: not a hex address: %s\n", a.c_str());
            return 2;
        }
        addrs.push_back(addr);
    }
    auto one = [&](uint64_t addr) {
        return args.pid != 0 ? s.user(args.pid, addr)
               : args.kernel ? s.kernel(addr)
                             : s.elf(args.elf, addr);
    };
    if (!args.debuginfod_urls.empty()) {
        // A first pass finds the objects and queues their lookups; print after they end.
        for (uint64_t addr : addrs)
            (void)one(addr);
        if (!s.wait_debuginfod_idle(static_cast<int>(o.debuginfod.timeout_ms) * 4 + 1000))
            std::fprintf(stderr, "hostprof symbolize: debuginfod lookups still running\n");
    }
    // A process's addresses go as one batch, as the agent's profiles do (ordered lookups,
    // bounded lookup memory: symbolizer/README.md).
    std::vector<sym::FrameResult> batch;
    if (args.pid != 0) {
        std::vector<sym::Symbolizer::UserAddress> in;
        for (uint64_t addr : addrs)
            in.push_back({args.pid, addr});
        batch = s.user_batch(in);
    }
    int rc = 0;
    for (size_t i = 0; i < addrs.size(); ++i) {
        const uint64_t addr = addrs[i];
        sym::FrameResult r = i < batch.size() ? std::move(batch[i]) : one(addr);
        std::printf("0x%llx", static_cast<unsigned long long>(addr));
        if (!r.module.empty())
            std::printf(" %s", r.module.c_str());
        if (args.pid != 0 && r.miss != sym::MissReason::NoMapping)
            std::printf(" +0x%llx", static_cast<unsigned long long>(r.elf_address));
        if (!r.build_id.empty())
            std::printf(" build-id %s", r.build_id.c_str());
        std::printf("\n");
        if (r.frames.empty()) {
            std::printf("    ?? (%s)\n", sym::miss_reason_name(r.miss));
            rc = 1;
        }
        for (const auto& f : r.frames) {
            std::printf("    %s%s", f.function.empty() ? "??" : f.function.c_str(),
                        f.inlined ? " (inlined)" : "");
            if (!f.file.empty())
                std::printf(" at %s:%d", f.file.c_str(), f.line);
            std::printf("\n");
        }
    }
    return rc;
}

} // namespace hostprof
