// Symbolizer: kernel and user addresses -> frames.
//
//   Symbolizer s(SymbolizerOptions{});
//   s.process_seen(pid);               // when a process is first sampled (or execs)
//   FrameResult r = s.user(pid, addr); // also after the process exited
//   FrameResult k = s.kernel(kaddr);
//   s.process_exited(pid);             // frees its per-process state
//
// ELF objects are read once and shared across processes by identity (build-id, else
// device/inode/size/mtime), in an LRU cache bounded by SymbolizerOptions::cache_bytes.
// A process's mappings and perf map are captured in process_seen() (or on first use), so
// short-lived processes symbolize after they exit. A process's files (binaries, perf map,
// debug files) are opened inside its root, PROC/PID/root, through SafeOpener
// (symbolizer/safe_open.h: openat2 RESOLVE_IN_ROOT, regular files only, size caps), falling
// back to PROC/PID/map_files/ for deleted or replaced files. Thread-safe (one mutex).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "symbolizer/debuginfod.h"
#include "symbolizer/elf_image.h"
#include "symbolizer/parsers.h"

namespace hostprof::sym {

enum class MissReason {
    None,
    NoMapping,  // no mapping (or perf map entry) holds the address
    Stripped,   // the object has no symbol table at all
    NoSymbol,   // the object has symbols, none covers the address
    Unreadable, // the file could not be opened or read
    NotElf,     // not an ELF file, or a malformed one
    NoKallsyms, // kernel: kallsyms empty or unreadable (unprivileged)
    Evicted,    // the object left the cache and its process is gone
    Refused,    // the file is not a regular file, too large, or a symlink out (safe_open.h)
};
inline constexpr int kMissReasonCount = 9;
const char* miss_reason_name(MissReason r);

struct FrameResult {
    std::vector<SymbolizedFrame> frames; // innermost first; empty when unknown
    std::string module;   // file path, "[kernel.kallsyms]", "[vdso]", "[jit]", "[bpf]", ...
    std::string build_id; // hex, may be empty
    uint64_t map_start = 0, map_limit = 0, map_offset = 0;
    uint64_t elf_address = 0; // the address in the object's ELF virtual address space
    MissReason miss = MissReason::None;
};

struct SymbolizerOptions {
    std::string proc_root = "/proc";
    std::string kallsyms_path = "/proc/kallsyms";
    bool demangle = true;
    bool dwarf = true;   // file:line from DWARF when present
    bool inlines = true; // inline frames (needs dwarf)
    size_t cache_bytes = 256u << 20;
    // Bound on what the lookups of a user_batch accumulate on top of the cache
    // (ElfImage::transient_bytes: line tables, touched debug data): past it, the objects
    // release it at once. 300 lookups in our own 25 MB .debug_info held ~65 MB.
    size_t lookup_memory_bytes = 4u << 20;
    std::vector<std::string> debug_dirs = {"/usr/lib/debug"};
    uint64_t max_file_bytes = 4ull << 30;      // ELF objects and debug files larger are refused
    uint64_t max_perf_map_bytes = 64ull << 20; // perf maps larger are refused
    bool force_open_fallback = false;          // tests: the manual walk instead of openat2
    // Debug files by build-id from debuginfod servers, for objects without DWARF or a
    // full .symtab; off when debuginfod.urls is empty. Looked up on a thread of the
    // symbolizer's own: frames symbolized before the download completes lack what it adds.
    DebuginfodOptions debuginfod;
};

struct SymbolizerStats {
    size_t cache_bytes = 0;       // bytes held by cached ELF objects
    size_t cache_limit_bytes = 0; // SymbolizerOptions::cache_bytes
    size_t cache_objects = 0;     // ELF objects cached
    uint64_t cache_hits = 0;      // object lookups served from the cache
    uint64_t cache_misses = 0;    // objects read from disk
    uint64_t cache_evictions = 0;
    uint64_t lookup_memory_releases = 0; // lookup_memory_bytes reached during a batch
    uint64_t kallsyms_loads = 0;         // /proc/kallsyms read (first use, misses >10 s apart)
    uint64_t frames = 0;                 // frames asked for (kernel + user + elf)
    uint64_t kernel_frames = 0;          // of which kernel()
    uint64_t user_frames = 0;            // of which user()
    uint64_t unsymbolized[kMissReasonCount] = {}; // by MissReason (index 0 unused)
    uint64_t perf_map_malformed_lines = 0;
    uint64_t minidebuginfo_loaded = 0; // objects whose .gnu_debugdata gave symbols
    uint64_t minidebuginfo_errors = 0; // objects whose .gnu_debugdata was unusable
    size_t processes = 0;              // processes with captured state
    // Files opened on behalf of processes (safe_open.h): opened, and not opened by reason
    // (OpenRefusal; "missing" is not a refusal, symlink/escape/not_regular/too_large are).
    uint64_t files_opened = 0;
    uint64_t open_failures[kOpenRefusalCount] = {};
    uint64_t open_fallback_walks = 0; // opens without openat2 (Linux < 5.6)
    bool debuginfod_enabled = false;
    uint64_t debuginfod_lookups = 0;     // build-ids asked for
    uint64_t debuginfod_hits = 0;        // debug files obtained (cache or server)
    uint64_t debuginfod_failures = 0;    // not found, timed out, refused, unusable
    uint64_t debuginfod_queue_drops = 0; // build-ids not queued (queue full)
};

class Symbolizer {
  public:
    explicit Symbolizer(SymbolizerOptions options);
    ~Symbolizer();
    Symbolizer(const Symbolizer&) = delete;
    Symbolizer& operator=(const Symbolizer&) = delete;

    FrameResult kernel(uint64_t address);
    // Reloads /proc/kallsyms (modules loaded or BPF programs changed).
    void reload_kallsyms();

    // Captures mappings, opens and indexes the process's ELF objects and perf map now.
    // False when its mappings could not be read (the process exited before the capture,
    // now or at an earlier call).
    bool process_seen(uint32_t pid);
    // Reads the mappings again (libraries mapped since process_seen); keeps the earlier
    // capture when the process is gone. False when it was gone.
    bool process_refresh(uint32_t pid);
    FrameResult user(uint32_t pid, uint64_t address);
    // Many user frames at once (one profile's), results in request order. The lookups run
    // ordered by object and address, so each DWARF unit is read once and what it cost can
    // go before the next (lookup_memory_bytes) instead of being read again. The lock is
    // taken per lookup, as user() does: captures of new processes are not held up.
    // `each` (optional) is called before every lookup.
    struct UserAddress {
        uint32_t pid;
        uint64_t address;
    };
    std::vector<FrameResult> user_batch(const std::vector<UserAddress>& frames,
                                        const std::function<void()>& each = {});
    void process_exited(uint32_t pid);
    // Between batches of lookups (after a profile is built): gives back what the lookups
    // accumulated in the cached objects (ElfImage::release_memory). Returns heap bytes
    // freed (estimated).
    size_t release_memory();

    // Symbolizes an ELF virtual address of a file (for `hostprof symbolize --elf`).
    FrameResult elf(const std::string& path, uint64_t elf_address);

    SymbolizerStats stats() const;
    // The same without waiting for a lookup in progress (a load may hold the lock for a
    // while): the last counts taken when the lock is busy (/metrics scrapes).
    SymbolizerStats stats_nowait() const;
    // Why debuginfod is off although URLs were configured ("" when on or not configured).
    const std::string& debuginfod_error() const { return debuginfod_error_; }
    // Waits until no debuginfod lookup is queued or running (tests, `hostprof symbolize`).
    bool wait_debuginfod_idle(int timeout_ms);

  private:
    struct CacheEntry;
    struct ProcessMapping;
    struct Process;

    std::shared_ptr<ElfImage> image_for(const std::string& key);
    struct ImageSource;
    std::shared_ptr<ElfImage> load_image(const ImageSource& src, std::string& key,
                                         MissReason& miss);
    std::shared_ptr<ElfImage> load_opened(OpenedFile& f, const std::string& name,
                                          const ElfOrigin& origin, std::string& key,
                                          MissReason& miss);
    void insert_image(const std::string& key, std::shared_ptr<ElfImage> img);
    void evict_locked();
    size_t release_memory_locked(bool only_with_lookup_state);
    // After a lookup in `img` that held `transient_before` bytes of lookup state.
    void count_lookup_memory_locked(const ElfImage& img, size_t transient_before);
    void release_before_lookup_locked(const ElfImage& img, uint64_t vaddr);
    Process& capture_locked(uint32_t pid);
    // `bounded`: within user_batch, where lookups run in address order and a release of
    // the lookup state costs little; single lookups (user(), elf()) come in any order and
    // would read units again after every release: their state goes at release_memory().
    FrameResult user_locked(uint32_t pid, uint64_t address, bool bounded);
    static ProcessMapping* find_mapping(Process& proc, uint64_t address);
    void load_kallsyms_locked();
    void count_miss(MissReason r);
    void want_debug_file_locked(const std::shared_ptr<ElfImage>& img);
    bool attach_debug_file_locked(const std::string& key, const std::shared_ptr<ElfImage>& img,
                                  const std::string& path);
    void debuginfod_loop();
    SymbolizerStats stats_locked() const;

    SymbolizerOptions options_;
    ElfLoadOptions load_options_;
    SafeOpener opener_;
    mutable std::mutex mu_;
    // LRU of ELF objects: front = most recently used.
    std::list<std::string> lru_;
    std::unordered_map<std::string, std::unique_ptr<CacheEntry>> cache_;
    std::unordered_map<std::string, std::string> file_keys_; // dev:ino:size:mtime -> key
    // The last vDSO image read from a process and its cache key: every process of one boot
    // maps the same vDSO, so a capture compares bytes instead of loading it again.
    std::string vdso_bytes_;
    std::string vdso_key_;
    std::unordered_map<uint32_t, std::unique_ptr<Process>> processes_;
    std::unique_ptr<Kallsyms> kallsyms_;
    int64_t kallsyms_loaded_ns_ = 0;
    SymbolizerStats stats_;
    size_t lookup_bytes_ = 0;              // ElfImage::transient_bytes summed since release_memory
    bool lookup_over_ = false;             // lookup_bytes_ past the bound: release at the next unit
    const ElfImage* last_image_ = nullptr; // of the last bounded lookup (compared only)
    uint64_t last_unit_ = 0;
    mutable std::mutex snapshot_mu_; // after mu_ when both are held
    mutable SymbolizerStats snapshot_;

    std::unique_ptr<DebuginfodClient> debuginfod_;
    std::string debuginfod_error_;
    std::thread debuginfod_thread_;
    std::condition_variable debuginfod_cv_; // with mu_: queue changes, idle, stop
    std::deque<std::string> debuginfod_queue_;
    bool debuginfod_busy_ = false;
    bool stopping_ = false;
    std::unordered_set<std::string> debuginfod_tried_;              // build-ids asked for
    std::unordered_map<std::string, std::string> debuginfod_found_; // build-id -> file
};

} // namespace hostprof::sym
