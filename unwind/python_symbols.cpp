#include "unwind/python_symbols.h"

#include "unwind/python_frames.h"

namespace hostprof::unwind {

PythonSymbols::PythonSymbols(PythonSymbolsOptions options) : options_(std::move(options)) {
    if (!options_.memory)
        options_.memory = [](uint32_t pid) {
            return std::make_unique<ProcessVmMemory>(static_cast<int>(pid));
        };
}

PythonSymbols::Proc* PythonSymbols::proc_locked(uint32_t pid) {
    if (auto it = procs_.find(pid); it != procs_.end())
        return &it->second;
    if (!options_.lookup)
        return nullptr;
    PythonProcess pp = options_.lookup(pid);
    if (!pp.runtime)
        return nullptr; // not (or no longer) known: asked again next time
    if (procs_.size() >= options_.max_processes)
        procs_.erase(procs_.begin()); // bounded: one process's codes are read again
    Proc p;
    p.mem = options_.memory(pid);
    p.reader = std::make_unique<PythonReader>(*pp.runtime, pp.bias, *p.mem, options_.reader);
    Proc& out = procs_[pid] = std::move(p);
    stats_.processes = procs_.size();
    return &out;
}

void PythonSymbols::note(uint32_t pid, std::span<const uint64_t> frames) {
    std::lock_guard lock(mu_);
    Proc* p = nullptr;
    for (uint64_t f : frames) {
        if (!is_python_frame(f))
            continue;
        if (p == nullptr)
            p = proc_locked(pid);
        if (p == nullptr)
            return;
        const size_t reads = p->reader->code_reads();
        if (!p->reader->code(python_frame_code(f)))
            ++stats_.read_errors;
        stats_.code_reads += p->reader->code_reads() - reads;
    }
}

std::optional<PythonSymbol> PythonSymbols::resolve(uint32_t pid, uint64_t frame) {
    std::lock_guard lock(mu_);
    Proc* p = proc_locked(pid);
    if (p == nullptr)
        return std::nullopt;
    const size_t reads = p->reader->code_reads();
    auto c = p->reader->code(python_frame_code(frame));
    stats_.code_reads += p->reader->code_reads() - reads;
    if (!c) {
        ++stats_.read_errors;
        return std::nullopt;
    }
    PythonSymbol s;
    s.function = !c->qualname.empty() ? c->qualname : c->name;
    s.file = c->filename;
    s.line = python_addr_to_line(c->linetable, c->firstlineno, python_frame_instr_bytes(frame));
    return s;
}

void PythonSymbols::remove_process(uint32_t pid) {
    std::lock_guard lock(mu_);
    procs_.erase(pid);
    stats_.processes = procs_.size();
}

PythonSymbolsStats PythonSymbols::stats() const {
    std::lock_guard lock(mu_);
    return stats_;
}

} // namespace hostprof::unwind
