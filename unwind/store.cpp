#include "unwind/store.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "symbolizer/parsers.h"
#include "symbolizer/safe_open.h"

namespace hostprof::unwind {

namespace {

// Larger files are not read for their tables (libLLVM, the largest seen here, is ~110 MiB).
constexpr uint64_t kMaxFile = 2ULL << 30;

uint64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

struct LoadSegment {
    uint64_t offset = 0, vaddr = 0, filesz = 0;
};

// The executable PT_LOAD segments of an ELF file (their file offsets and addresses give
// each mapping's bias). Empty for a file that is no ELF.
std::vector<LoadSegment> exec_segments(int fd) {
    std::vector<LoadSegment> out;
    elf_version(EV_CURRENT);
    Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
    if (!elf)
        return out;
    size_t n = 0;
    if (elf_kind(elf) == ELF_K_ELF && elf_getphdrnum(elf, &n) == 0) {
        for (size_t i = 0; i < n && i < 256; ++i) {
            GElf_Phdr ph;
            if (gelf_getphdr(elf, static_cast<int>(i), &ph) && ph.p_type == PT_LOAD &&
                (ph.p_flags & PF_X))
                out.push_back({ph.p_offset, ph.p_vaddr, ph.p_filesz});
        }
    }
    elf_end(elf);
    return out;
}

} // namespace

struct Store::Table {
    uint32_t id = 0;
    std::string key;  // dev:ino:size:mtime
    std::string name; // a path, for messages
    enum class State { Pending, Ready, NoCfi, Failed } state = State::Pending;
    std::vector<LoadSegment> segments;
    std::vector<uint32_t> pages;
    uint32_t first = 0, rows = 0;
    uint32_t refs = 0;
    uint64_t unused_since = 0; // refs == 0 since
    uint64_t failed_at = 0;
    std::vector<uint32_t> users; // pids whose entries point here (may hold stale pids)
    // A CPython interpreter in this file (set by the build): supported, or refused with
    // its "runtime version" (StoreStats::interpreter_unsupported).
    std::shared_ptr<const PythonRuntime> python;
    std::string python_refused;
};

// ---- BpfTableMaps ---------------------------------------------------------------------------

Result<std::unique_ptr<BpfTableMaps>> BpfTableMaps::open(int mappings_fd, int pages_fd, int rows_fd,
                                                         uint32_t rows, int python_fd) {
    std::unique_ptr<BpfTableMaps> m(new BpfTableMaps());
    m->python_fd_ = python_fd;
    m->mappings_fd_ = mappings_fd;
    m->pages_fd_ = pages_fd;
    m->rows_fd_ = rows_fd;
    m->rows_ = rows;
    // The rows are written through short-lived mappings of the array (write_rows): mapped
    // for good, every page written would count in the agent's RSS as well as in the
    // kernel's map memory. One test mapping now, so a kernel that refuses fails here.
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    void* mem = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_SHARED, rows_fd, 0);
    if (mem == MAP_FAILED)
        return errno_error("mmap the unwind rows map");
    ::munmap(mem, page);
    return m;
}

BpfTableMaps::~BpfTableMaps() = default;

bool BpfTableMaps::set_mapping(const hp_unw_mapping_key& key, const hp_unw_mapping& value) {
    return bpf_map_update_elem(mappings_fd_, &key, &value, BPF_ANY) == 0;
}
bool BpfTableMaps::delete_mapping(const hp_unw_mapping_key& key) {
    return bpf_map_delete_elem(mappings_fd_, &key) == 0;
}
bool BpfTableMaps::set_page(const hp_unw_page_key& key, const hp_unw_page& value) {
    return bpf_map_update_elem(pages_fd_, &key, &value, BPF_ANY) == 0;
}
bool BpfTableMaps::delete_page(const hp_unw_page_key& key) {
    return bpf_map_delete_elem(pages_fd_, &key) == 0;
}
bool BpfTableMaps::set_python(uint32_t pid, const hp_py_proc& value) {
    return python_fd_ >= 0 && bpf_map_update_elem(python_fd_, &pid, &value, BPF_ANY) == 0;
}
bool BpfTableMaps::delete_python(uint32_t pid) {
    return python_fd_ >= 0 && bpf_map_delete_elem(python_fd_, &pid) == 0;
}
bool BpfTableMaps::write_rows(uint32_t first, const hp_unw_row* rows, size_t n) {
    if (static_cast<uint64_t>(first) + n > rows_)
        return false;
    if (n == 0)
        return true;
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t begin = static_cast<size_t>(first) * sizeof(hp_unw_row);
    const size_t end = begin + n * sizeof(hp_unw_row);
    const size_t lo = begin / page * page;
    const size_t len = (end - lo + page - 1) / page * page;
    void* mem =
        ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, rows_fd_, static_cast<off_t>(lo));
    if (mem == MAP_FAILED)
        return false;
    std::memcpy(static_cast<char*>(mem) + (begin - lo), rows, n * sizeof(hp_unw_row));
    ::munmap(mem, len);
    return true;
}

// ---- keys -----------------------------------------------------------------------------------

std::vector<hp_unw_mapping_key> mapping_keys(uint32_t pid, uint64_t start, uint64_t end) {
    std::vector<hp_unw_mapping_key> keys;
    while (start < end && keys.size() < 256) {
        // The largest aligned power-of-two block at start that ends by `end`.
        int bits = start == 0 ? 63 : __builtin_ctzll(start);
        while (bits > 0 &&
               (bits >= 64 || start + (1ULL << bits) > end || start + (1ULL << bits) < start))
            --bits;
        hp_unw_mapping_key k{};
        k.prefixlen = 32 + 64 - static_cast<uint32_t>(bits);
        k.pid = __builtin_bswap32(pid);
        k.addr = __builtin_bswap64(start);
        keys.push_back(k);
        start += 1ULL << bits;
    }
    return keys;
}

// ---- Store ----------------------------------------------------------------------------------

Store::Store(std::unique_ptr<TableMaps> maps, StoreOptions options)
    : maps_(std::move(maps)), options_(std::move(options)) {
    stats_.row_capacity = maps_->row_capacity();
    if (maps_->row_capacity() > 0)
        free_[0] = maps_->row_capacity();
    if (options_.worker)
        worker_ = std::thread([this] { worker_loop(); });
}

Store::~Store() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable())
        worker_.join();
}

UniqueFd Store::vdso_fd() {
    if (!vdso_tried_) {
        vdso_tried_ = true;
        // This process's vDSO: where the aux vector says, as long as its maps entry.
        const auto base = static_cast<uint64_t>(::getauxval(AT_SYSINFO_EHDR));
        std::ifstream in("/proc/self/maps");
        std::ostringstream ss;
        ss << in.rdbuf();
        uint64_t size = 0;
        for (const sym::MapEntry& e : sym::parse_maps(ss.str()).entries)
            if (e.path == "[vdso]" && e.start == base)
                size = e.end - e.start;
        if (base != 0 && size > 0 && size <= (1u << 20)) {
            UniqueFd fd(static_cast<int>(::memfd_create("hostprof-vdso", MFD_CLOEXEC)));
            if (fd && ::write(fd.get(), reinterpret_cast<const void*>(base), size) ==
                          static_cast<ssize_t>(size))
                vdso_ = std::move(fd);
        }
    }
    if (!vdso_)
        return UniqueFd();
    return UniqueFd(::fcntl(vdso_.get(), F_DUPFD_CLOEXEC, 0));
}

bool Store::add_process(uint32_t pid) {
    const std::string dir = options_.proc_root + "/" + std::to_string(pid);
    std::string text;
    {
        std::ifstream in(dir + "/maps");
        if (!in) {
            std::lock_guard lock(mu_);
            ++stats_.process_errors;
            return false;
        }
        std::ostringstream ss;
        ss << in.rdbuf();
        text = ss.str();
    }
    const sym::MapsParse maps = sym::parse_maps(text);
    std::vector<Job> jobs;
    const uint64_t now = now_ns();
    {
        std::lock_guard lock(mu_);
        // A second read (a library loaded since, or an exec): the new entries overwrite
        // the old in place, and only the old ones not written again are deleted after,
        // so the walker never sees this process without entries.
        Process old;
        if (auto it = processes_.find(pid); it != processes_.end()) {
            old = std::move(it->second);
            processes_.erase(it);
        }
        Process& proc = processes_[pid];
        for (const sym::MapEntry& e : maps.entries) {
            if (!e.executable || e.end <= e.start)
                continue;
            MappingEntry base{};
            base.table = 0;
            // The file behind the mapping and its identity ("" when it has none).
            UniqueFd fd;
            std::string key;
            if (e.path == "[vdso]") {
                // Every process of this boot maps the same vDSO: this process's copy.
                fd = vdso_fd();
                if (fd)
                    key = "[vdso]";
            } else if (e.is_file()) {
                // The file as this process maps it (containers, deleted files).
                char range[64];
                std::snprintf(range, sizeof(range), "/map_files/%llx-%llx",
                              static_cast<unsigned long long>(e.start),
                              static_cast<unsigned long long>(e.end));
                fd.reset(::open((dir + range).c_str(), O_RDONLY | O_CLOEXEC));
                // map_files needs CAP_SYS_ADMIN (gone once the agent drops its
                // capabilities): then the path inside the process's root, resolved there
                // (a container's symlinks cannot lead out of it: symbolizer/safe_open.h).
                if (!fd && !e.deleted) {
                    UniqueFd root = sym::SafeOpener::open_root(dir + "/root");
                    if (root) {
                        sym::OpenedFile f = opener_.open_in_root(root.get(), e.path, kMaxFile);
                        fd = std::move(f.fd);
                    }
                }
                struct stat st {};
                if (fd && ::fstat(fd.get(), &st) == 0)
                    key = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
                          std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) +
                          "." + std::to_string(st.st_mtim.tv_nsec);
            }
            if (!key.empty()) {
                uint32_t id = 0;
                if (auto it = by_file_.find(key); it != by_file_.end()) {
                    id = it->second;
                    Table& t = *tables_[id];
                    if (t.state == Table::State::Failed &&
                        now - t.failed_at >= options_.retry_failed_ns && fd) {
                        t.state = Table::State::Pending;
                        jobs.push_back({id, std::move(fd)});
                    }
                } else {
                    auto t = std::make_unique<Table>();
                    t->id = id = next_table_++;
                    t->key = key;
                    t->name = e.path;
                    t->segments = exec_segments(fd.get());
                    by_file_[key] = id;
                    tables_[id] = std::move(t);
                    ++stats_.tables;
                    jobs.push_back({id, std::move(fd)});
                }
                Table& t = *tables_[id];
                // bias: file address = address - bias, through the segment that holds
                // this mapping's file offset.
                for (const LoadSegment& s : t.segments) {
                    const uint64_t seg_lo = s.offset & ~0xfffULL;
                    if (e.offset >= seg_lo && e.offset < s.offset + s.filesz) {
                        base.table = id;
                        base.bias = e.start - e.offset + s.offset - s.vaddr;
                        break;
                    }
                }
                if (base.table != 0) {
                    if (std::find(proc.tables.begin(), proc.tables.end(), id) ==
                        proc.tables.end()) {
                        proc.tables.push_back(id);
                        if (t.refs++ == 0)
                            t.unused_since = 0;
                        t.users.push_back(pid);
                    }
                }
            }
            hp_unw_mapping value{};
            value.kind = HP_UNW_MAP_FP;
            if (base.table != 0) {
                const Table& t = *tables_[base.table];
                value.kind = t.state == Table::State::Ready     ? HP_UNW_MAP_TABLE
                             : t.state == Table::State::Pending ? HP_UNW_MAP_PENDING
                                                                : HP_UNW_MAP_FP;
                value.table = base.table;
                value.bias = base.bias;
            }
            value.start = e.start;
            value.end = e.end;
            for (const hp_unw_mapping_key& k : mapping_keys(pid, e.start, e.end)) {
                if (!maps_->set_mapping(k, value)) {
                    ++stats_.map_errors;
                    continue;
                }
                proc.entries.push_back({k, base.table, base.bias, e.start, e.end});
                ++stats_.mapping_entries;
            }
        }
        proc.python_set = old.python_set;
        proc.unsupported_counted = old.unsupported_counted;
        update_python_locked(pid, proc);
        if (!old.entries.empty() || !old.tables.empty()) {
            std::vector<std::pair<uint32_t, uint64_t>> kept;
            for (const MappingEntry& e : proc.entries)
                kept.push_back({e.key.prefixlen, e.key.addr});
            std::sort(kept.begin(), kept.end());
            for (const MappingEntry& e : old.entries) {
                --stats_.mapping_entries;
                if (!std::binary_search(kept.begin(), kept.end(),
                                        std::pair<uint32_t, uint64_t>(e.key.prefixlen, e.key.addr)))
                    maps_->delete_mapping(e.key);
            }
            for (uint32_t id : old.tables)
                unref_locked(id, pid, now);
        }
        stats_.processes = processes_.size();
        evict_expired_locked(now);
        if (options_.worker) {
            for (Job& j : jobs)
                queue_.push_back(std::move(j));
            jobs.clear();
        }
    }
    if (options_.worker)
        cv_.notify_all();
    for (Job& j : jobs) // synchronous (tests)
        build(std::move(j));
    return true;
}

// hp_py_procs for a process from its tables: the first file with a supported CPython
// (once its build looked), or none; a refused one is counted once per process.
void Store::update_python_locked(uint32_t pid, Process& proc) {
    const Table* found = nullptr;
    uint64_t bias = 0;
    for (uint32_t id : proc.tables) {
        auto it = tables_.find(id);
        if (it == tables_.end())
            continue;
        const Table& t = *it->second;
        if (!t.python_refused.empty() && !proc.unsupported_counted) {
            proc.unsupported_counted = true;
            ++stats_.interpreter_unsupported[t.python_refused];
        }
        if (!t.python || found)
            continue;
        for (const MappingEntry& e : proc.entries)
            if (e.table == id) {
                found = &t;
                bias = e.bias;
                break;
            }
    }
    if (!found) {
        if (proc.python_set) {
            maps_->delete_python(pid);
            proc.python_set = false;
            --stats_.python_processes;
        }
        proc.python_table = 0;
        return;
    }
    if (proc.python_set && proc.python_table == found->id && proc.python_bias == bias)
        return;
    const PythonRuntime& rt = *found->python;
    const PythonOffsets& o = rt.offsets;
    hp_py_proc v{};
    v.runtime = rt.runtime_addr + bias;
    if (rt.eval_size > 0) {
        v.eval_lo = rt.eval_addr + bias;
        v.eval_hi = rt.eval_addr + rt.eval_size + bias;
    }
    v.version =
        static_cast<uint32_t>(rt.version.major << 16 | rt.version.minor << 8 | rt.version.micro);
    v.runtime_interpreters_head = o.runtime_interpreters_head;
    v.runtime_tstate_current = o.runtime_tstate_current;
    v.interp_threads_head = o.interp_threads_head;
    v.tstate_next = o.tstate_next;
    v.tstate_cframe = o.tstate_cframe;
    v.tstate_native_thread_id = o.tstate_native_thread_id;
    v.cframe_current_frame = o.cframe_current_frame;
    v.frame_code = o.frame_code;
    v.frame_previous = o.frame_previous;
    v.frame_prev_instr = o.frame_prev_instr;
    v.frame_is_entry = o.frame_is_entry;
    v.frame_owner = o.frame_owner;
    v.code_code = o.code_code;
    if (!maps_->set_python(pid, v)) {
        ++stats_.map_errors;
        return;
    }
    if (!proc.python_set)
        ++stats_.python_processes;
    proc.python_set = true;
    proc.python_table = found->id;
    proc.python_bias = bias;
}

PythonProcess Store::python(uint32_t pid) const {
    std::lock_guard lock(mu_);
    auto p = processes_.find(pid);
    if (p == processes_.end() || !p->second.python_set)
        return {};
    auto t = tables_.find(p->second.python_table);
    if (t == tables_.end())
        return {};
    return {t->second->python, p->second.python_bias};
}

void Store::clear_process_locked(uint32_t pid) {
    auto it = processes_.find(pid);
    if (it == processes_.end())
        return;
    if (it->second.python_set) {
        maps_->delete_python(pid);
        --stats_.python_processes;
    }
    for (const MappingEntry& e : it->second.entries) {
        maps_->delete_mapping(e.key);
        --stats_.mapping_entries;
    }
    const uint64_t now = now_ns();
    for (uint32_t id : it->second.tables)
        unref_locked(id, pid, now);
    processes_.erase(it);
}

void Store::remove_process(uint32_t pid) {
    std::lock_guard lock(mu_);
    clear_process_locked(pid);
    stats_.processes = processes_.size();
    evict_expired_locked(now_ns());
}

size_t Store::remove_vanished() {
    std::vector<uint32_t> pids;
    {
        std::lock_guard lock(mu_);
        for (const auto& [pid, proc] : processes_)
            pids.push_back(pid);
    }
    std::vector<uint32_t> gone;
    for (uint32_t pid : pids) {
        const std::string dir = options_.proc_root + "/" + std::to_string(pid);
        if (::access(dir.c_str(), F_OK) != 0 && errno == ENOENT)
            gone.push_back(pid);
    }
    if (gone.empty())
        return 0;
    std::lock_guard lock(mu_);
    for (uint32_t pid : gone)
        clear_process_locked(pid);
    stats_.processes = processes_.size();
    evict_expired_locked(now_ns());
    return gone.size();
}

void Store::unref_locked(uint32_t id, uint32_t pid, uint64_t now) {
    auto it = tables_.find(id);
    if (it == tables_.end() || it->second->refs == 0)
        return;
    Table& t = *it->second;
    // One reference of this pid goes (a re-read of its mappings added its new one first).
    if (auto u = std::find(t.users.begin(), t.users.end(), pid); u != t.users.end())
        t.users.erase(u);
    if (--t.refs == 0) {
        t.unused_since = now;
        t.users.clear();
    }
}

void Store::drop_rows_locked(Table& t) {
    for (uint32_t p : t.pages) {
        hp_unw_page_key k{t.id, p};
        maps_->delete_page(k);
    }
    t.pages.clear();
    if (t.rows > 0) {
        free_locked(t.first, t.rows);
        stats_.rows_used -= t.rows;
    }
    t.rows = 0;
}

void Store::evict_expired_locked(uint64_t now) {
    std::vector<uint32_t> gone;
    for (auto& [id, t] : tables_)
        if (t->refs == 0 && t->state != Table::State::Pending && t->unused_since != 0 &&
            now - t->unused_since >= options_.unused_ttl_ns)
            gone.push_back(id);
    for (uint32_t id : gone) {
        Table& t = *tables_[id];
        if (t.state == Table::State::Ready)
            --stats_.tables_ready;
        drop_rows_locked(t);
        by_file_.erase(t.key);
        tables_.erase(id);
        --stats_.tables;
        ++stats_.evictions;
    }
}

bool Store::allocate_locked(uint32_t rows, uint32_t& first) {
    for (int round = 0; round < 2; ++round) {
        for (auto it = free_.begin(); it != free_.end(); ++it) {
            if (it->second < rows)
                continue;
            first = it->first;
            const uint32_t left = it->second - rows;
            free_.erase(it);
            if (left > 0)
                free_[first + rows] = left;
            return true;
        }
        if (round > 0)
            break;
        // Short of rows: evict every unused table, oldest first, until one fits.
        std::vector<std::pair<uint64_t, uint32_t>> unused;
        for (auto& [id, t] : tables_)
            if (t->refs == 0 && t->state == Table::State::Ready)
                unused.push_back({t->unused_since, id});
        std::sort(unused.begin(), unused.end());
        for (auto [since, id] : unused) {
            Table& t = *tables_[id];
            drop_rows_locked(t);
            by_file_.erase(t.key);
            tables_.erase(id);
            --stats_.tables;
            --stats_.tables_ready;
            ++stats_.evictions;
            bool fits = false;
            for (auto& [s, n] : free_)
                fits = fits || n >= rows;
            if (fits)
                break;
        }
    }
    return false;
}

void Store::free_locked(uint32_t first, uint32_t rows) {
    auto [it, inserted] = free_.emplace(first, rows);
    if (!inserted)
        return;
    auto next = std::next(it);
    if (next != free_.end() && it->first + it->second == next->first) {
        it->second += next->second;
        free_.erase(next);
    }
    if (it != free_.begin()) {
        auto prev = std::prev(it);
        if (prev->first + prev->second == it->first) {
            prev->second += it->second;
            free_.erase(it);
        }
    }
}

void Store::worker_loop() {
    std::unique_lock lock(mu_);
    for (;;) {
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (stop_)
            return;
        Job job = std::move(queue_.front());
        queue_.pop_front();
        building_ = true;
        lock.unlock();
        build(std::move(job));
        lock.lock();
        building_ = false;
        cv_.notify_all();
    }
}

void Store::build(Job job) {
    std::string name;
    {
        std::lock_guard lock(mu_);
        auto it = tables_.find(job.table);
        if (it == tables_.end())
            return;
        name = it->second->name;
    }
    const uint64_t t0 = now_ns();
    Result<std::vector<Row>> rows = options_.builder
                                        ? options_.builder(job.fd.get(), name)
                                        : Result<std::vector<Row>>(Error{0, "no table builder"});
    // An interpreter in the file? ENOENT (none) is the common answer; a CPython refused
    // (ENOTSUP: a version or layout not in the table) is counted per process that runs it.
    std::shared_ptr<const PythonRuntime> python;
    std::string python_refused;
    if (options_.python && job.fd) {
        PythonVersion v;
        if (auto py = detect_python(job.fd.get(), name, &v); py)
            python = std::make_shared<const PythonRuntime>(std::move(*py));
        else if (py.error().err == ENOTSUP && v.major != 0)
            python_refused = "cpython " + std::to_string(v.major) + "." + std::to_string(v.minor);
    }
    const uint64_t took = now_ns() - t0;
    PackedTable packed;
    if (rows && !rows->empty())
        packed = pack(*rows);

    std::lock_guard lock(mu_);
    ++stats_.builds;
    stats_.build_ns += took;
    auto it = tables_.find(job.table);
    if (it == tables_.end())
        return;
    Table& t = *it->second;
    t.python = std::move(python);
    t.python_refused = std::move(python_refused);
    if (!rows) {
        ++stats_.build_failures;
        t.state = Table::State::Failed;
        t.failed_at = now_ns();
    } else if (packed.rows.empty()) {
        t.state = Table::State::NoCfi;
    } else {
        uint32_t first = 0;
        const auto n = static_cast<uint32_t>(packed.rows.size());
        if (!allocate_locked(n, first)) {
            ++stats_.no_fit;
            t.state = Table::State::Failed;
            t.failed_at = now_ns();
        } else {
            bool ok = maps_->write_rows(first, packed.rows.data(), packed.rows.size());
            t.first = first;
            t.rows = n;
            stats_.rows_used += n;
            for (const PackedPage& p : packed.pages) {
                if (!ok)
                    break;
                hp_unw_page_key k{t.id, p.page};
                hp_unw_page v{first + p.first, p.count};
                ok = maps_->set_page(k, v);
                if (ok)
                    t.pages.push_back(p.page);
            }
            if (ok) {
                t.state = Table::State::Ready;
                ++stats_.tables_ready;
            } else {
                ++stats_.map_errors;
                drop_rows_locked(t);
                t.state = Table::State::Failed;
                t.failed_at = now_ns();
            }
        }
    }
    set_entries_locked(t.id);
    if (t.python || !t.python_refused.empty())
        for (uint32_t pid : t.users)
            if (auto p = processes_.find(pid); p != processes_.end())
                update_python_locked(pid, p->second);
}

// Points every entry of the table's users at its new state.
void Store::set_entries_locked(uint32_t id) {
    const Table& t = *tables_[id];
    hp_unw_mapping value{};
    value.kind = t.state == Table::State::Ready ? HP_UNW_MAP_TABLE : HP_UNW_MAP_FP;
    value.table = id;
    for (uint32_t pid : t.users) {
        auto p = processes_.find(pid);
        if (p == processes_.end())
            continue;
        for (const MappingEntry& e : p->second.entries) {
            if (e.table != id)
                continue;
            value.bias = e.bias;
            value.start = e.start;
            value.end = e.end;
            if (!maps_->set_mapping(e.key, value))
                ++stats_.map_errors;
        }
    }
}

StoreStats Store::stats() const {
    std::lock_guard lock(mu_);
    return stats_;
}

bool Store::wait_idle(int timeout_ms) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                        [&] { return queue_.empty() && !building_; });
}

} // namespace hostprof::unwind
