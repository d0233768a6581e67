// The unwind-table store: which processes map which files, one table per file shared by
// every process that maps it, built off the sampling path and written to the BPF maps of
// bpf/unwind.h that the walker (bpf/lib/hp_unwind.h) reads.
//
//   add_process(pid) --/proc/PID/maps--> per executable file mapping: its table (known,
//     or queued for the worker) and LPM entries {pid, range} -> {table, bias}
//   worker: build rows (Builder) --pack()--> rows + pages into the maps --> the mappings
//     that wait for it switch from PENDING to TABLE
//   remove_process(pid): entries deleted, tables unreferenced; unused tables are evicted
//     when the row budget is short (LRU) or after `unused_ttl_ns`.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <linux/types.h>

#include "bpf/python.h"
#include "bpf/unwind.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "symbolizer/safe_open.h"
#include "unwind/python.h"
#include "unwind/table.h"

namespace hostprof::unwind {

// The unwind maps of a loaded skeleton (bpf/lib/hp_unwind.h), shared with the programs of
// other skeletons (bpf_map__reuse_fd before their load) so one store serves every stack.
struct MapFds {
    int mappings = -1, pages = -1, rows = -1, stats = -1;
    uint32_t row_count = 0;
    // Python frames (bpf/lib/hp_python.h): -1 when the walk is off.
    int py_procs = -1, py_threads = -1, py_stats = -1;
    bool valid() const { return mappings >= 0 && pages >= 0 && rows >= 0 && stats >= 0; }
    bool python() const { return py_procs >= 0 && py_threads >= 0 && py_stats >= 0; }
};

// The kernel side, behind an interface so the store's logic tests without root.
class TableMaps {
  public:
    virtual ~TableMaps() = default;
    virtual bool set_mapping(const hp_unw_mapping_key& key, const hp_unw_mapping& value) = 0;
    virtual bool delete_mapping(const hp_unw_mapping_key& key) = 0;
    virtual bool set_page(const hp_unw_page_key& key, const hp_unw_page& value) = 0;
    virtual bool delete_page(const hp_unw_page_key& key) = 0;
    virtual bool write_rows(uint32_t first, const hp_unw_row* rows, size_t n) = 0;
    virtual uint32_t row_capacity() const = 0;
    // hp_py_procs: the process runs a supported CPython (bpf/python.h).
    virtual bool set_python(uint32_t pid, const hp_py_proc& value) = 0;
    virtual bool delete_python(uint32_t pid) = 0;
};

// The real maps (fds from a loaded skeleton, which outlives this; rows are written through
// a mapping of the array made for each write).
class BpfTableMaps final : public TableMaps {
  public:
    // python_fd: hp_py_procs, or -1 (no Python frames).
    static Result<std::unique_ptr<BpfTableMaps>> open(int mappings_fd, int pages_fd, int rows_fd,
                                                      uint32_t rows, int python_fd = -1);
    ~BpfTableMaps() override;
    bool set_mapping(const hp_unw_mapping_key& key, const hp_unw_mapping& value) override;
    bool delete_mapping(const hp_unw_mapping_key& key) override;
    bool set_page(const hp_unw_page_key& key, const hp_unw_page& value) override;
    bool delete_page(const hp_unw_page_key& key) override;
    bool write_rows(uint32_t first, const hp_unw_row* rows, size_t n) override;
    uint32_t row_capacity() const override { return rows_; }
    bool set_python(uint32_t pid, const hp_py_proc& value) override;
    bool delete_python(uint32_t pid) override;

  private:
    BpfTableMaps() = default;
    int mappings_fd_ = -1, pages_fd_ = -1, rows_fd_ = -1, python_fd_ = -1;
    uint32_t rows_ = 0;
};

// Rows of one file, read from an open descriptor (`name` for messages). An empty vector:
// the file has no unwind information (its mappings get frame-pointer steps).
using Builder = std::function<Result<std::vector<Row>>(int fd, const std::string& name)>;

struct StoreOptions {
    std::string proc_root = "/proc";
    Builder builder;
    uint64_t unused_ttl_ns = 300'000'000'000ULL; // an unused table stays 5 min
    uint64_t retry_failed_ns = 90'000'000'000ULL;
    bool worker = true; // false: builds run inside add_process (tests)
    // Look for a CPython interpreter in each file (unwind/python.h) and point the Python
    // walk (hp_py_procs) at the processes that run a supported one.
    bool python = false;
};

struct StoreStats {
    uint64_t tables = 0;         // in the store (ready, pending, failed)
    uint64_t tables_ready = 0;   // rows in the maps
    uint64_t builds = 0;         // finished builds
    uint64_t build_failures = 0; // the builder failed (corrupt CFI, unreadable file)
    uint64_t build_ns = 0;       // time spent building, summed
    uint64_t no_fit = 0;         // tables larger than the free budget after evictions
    uint64_t evictions = 0;
    uint64_t rows_used = 0;
    uint64_t row_capacity = 0;
    uint64_t processes = 0;
    uint64_t mapping_entries = 0;  // LPM entries
    uint64_t map_errors = 0;       // a map update failed (full: entries dropped)
    uint64_t process_errors = 0;   // maps of a process unreadable (it exited)
    uint64_t python_processes = 0; // processes whose Python frames are walked, now
    // Processes seen running an interpreter that is refused, by "runtime version" (e.g.
    // "cpython 3.12"): a version not in the offsets table, or another build's layout.
    std::map<std::string, uint64_t> interpreter_unsupported;
};

// A process's CPython: the interpreter found in one of its files, and that file's bias.
struct PythonProcess {
    std::shared_ptr<const PythonRuntime> runtime;
    uint64_t bias = 0; // process address = file address + bias
};

class Store {
  public:
    Store(std::unique_ptr<TableMaps> maps, StoreOptions options);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // Reads the process's executable mappings (again: after an exec, or when a library
    // was loaded since) and points the walker at their tables.
    bool add_process(uint32_t pid);
    void remove_process(uint32_t pid);
    // Forgets the processes gone from /proc whose exit was never reported (a ring-buffer
    // overflow loses exit records). Returns how many.
    size_t remove_vanished();
    StoreStats stats() const;
    // The supported CPython a process runs (runtime null when none, or not known yet).
    PythonProcess python(uint32_t pid) const;
    // Waits until no build is queued or running (tests, `hostprof record`).
    bool wait_idle(int timeout_ms);

  private:
    struct Table;
    struct MappingEntry {
        hp_unw_mapping_key key;
        uint32_t table; // 0: no table (FP)
        uint64_t bias;
        uint64_t start, end; // the whole mapping
    };
    struct Process {
        std::vector<MappingEntry> entries;
        std::vector<uint32_t> tables; // referenced (one per distinct file)
        // Python: the table of the interpreter's file (0: none found yet), whether
        // hp_py_procs has the process, whether a refused interpreter was counted.
        uint32_t python_table = 0;
        uint64_t python_bias = 0;
        bool python_set = false;
        bool unsupported_counted = false;
    };
    struct Job {
        uint32_t table;
        UniqueFd fd;
    };

    UniqueFd vdso_fd(); // a descriptor of a copy of the vDSO (shared by every process)
    void worker_loop();
    void build(Job job);
    void set_entries_locked(uint32_t table);
    void unref_locked(uint32_t table, uint32_t pid, uint64_t now);
    void evict_expired_locked(uint64_t now);
    bool allocate_locked(uint32_t rows, uint32_t& first);
    void free_locked(uint32_t first, uint32_t rows);
    void drop_rows_locked(Table& t);
    void clear_process_locked(uint32_t pid);
    void update_python_locked(uint32_t pid, Process& proc);

    std::unique_ptr<TableMaps> maps_;
    StoreOptions options_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::unordered_map<uint32_t, std::unique_ptr<Table>> tables_;
    std::unordered_map<std::string, uint32_t> by_file_;
    uint32_t next_table_ = 1;
    std::unordered_map<uint32_t, Process> processes_;
    std::map<uint32_t, uint32_t> free_; // first row -> rows, coalesced
    std::deque<Job> queue_;
    bool building_ = false;
    bool stop_ = false;
    StoreStats stats_;
    std::thread worker_;
    UniqueFd vdso_;
    bool vdso_tried_ = false;
    sym::SafeOpener opener_;
};

// The LPM prefixes that cover [start, end) for a pid (exported for tests).
std::vector<hp_unw_mapping_key> mapping_keys(uint32_t pid, uint64_t start, uint64_t end);

} // namespace hostprof::unwind
