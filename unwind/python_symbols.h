// Names and lines of the Python frames in stacks (unwind/python_frames.h). A frame names
// its code object by address; the object's strings are read from the live process when a
// record arrives (the process, or the function, may be gone by the time a profile is
// built), kept per process (PythonReader's bounded LRU) until the process is released.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>

#include "unwind/python.h"
#include "unwind/store.h"

namespace hostprof::unwind {

struct PythonSymbolsOptions {
    // The CPython a process runs (the store's answer: Store::python).
    std::function<PythonProcess(uint32_t pid)> lookup;
    // The process's memory (default: process_vm_readv).
    std::function<std::unique_ptr<ProcessMemory>(uint32_t pid)> memory;
    size_t max_processes = 4096;
    PythonReaderOptions reader = {.max_threads = 0,
                                  .max_frames = 0,
                                  .max_string = 1024,
                                  .max_linetable = 64 * 1024,
                                  .max_cached_codes = 4096};
};

struct PythonSymbol {
    std::string function; // co_qualname ("Class.method"), else co_name
    std::string file;     // co_filename
    int line = 0;         // 0: unknown
};

struct PythonSymbolsStats {
    uint64_t processes = 0;   // with a reader now
    uint64_t code_reads = 0;  // code objects read from processes
    uint64_t read_errors = 0; // a code object that could not be read (the process exited)
};

class PythonSymbols {
  public:
    explicit PythonSymbols(PythonSymbolsOptions options);

    // Reads the code objects of the Python frames among `frames` that are not known yet.
    void note(uint32_t pid, std::span<const uint64_t> frames);
    // A Python frame's function, file and line; nullopt when its code object is unknown
    // and cannot be read (any more).
    std::optional<PythonSymbol> resolve(uint32_t pid, uint64_t frame);
    // The process exited (or exec'd) and its windows are symbolized: its codes go.
    void remove_process(uint32_t pid);
    PythonSymbolsStats stats() const;

  private:
    struct Proc {
        std::unique_ptr<ProcessMemory> mem;
        std::unique_ptr<PythonReader> reader;
    };
    Proc* proc_locked(uint32_t pid); // nullptr: not a known Python process

    PythonSymbolsOptions options_;
    mutable std::mutex mu_;
    std::unordered_map<uint32_t, Proc> procs_;
    PythonSymbolsStats stats_;
};

} // namespace hostprof::unwind
