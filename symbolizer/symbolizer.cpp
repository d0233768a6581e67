#include "symbolizer/symbolizer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace hostprof::sym {
namespace {

constexpr size_t kMaxProcFileBytes = 64u << 20;
constexpr uint64_t kMaxVdsoBytes = 1u << 20;

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

UniqueFd open_ro(const std::string& path) {
    return UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
}

// Reads a whole (small) file: /proc files report size 0, so read until EOF.
bool read_file(const std::string& path, std::string& out) {
    UniqueFd fd = open_ro(path);
    if (!fd)
        return false;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    out.clear();
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        if (n == 0)
            return true;
        if (out.size() + static_cast<size_t>(n) > kMaxProcFileBytes)
            return false;
        out.append(buf, static_cast<size_t>(n));
    }
}

std::string hex(uint64_t v) {
    char b[24];
    std::snprintf(b, sizeof b, "%llx", static_cast<unsigned long long>(v));
    return b;
}

std::string file_key(const struct stat& st) {
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
           std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
           std::to_string(st.st_mtim.tv_nsec);
}

} // namespace

const char* miss_reason_name(MissReason r) {
    switch (r) {
    case MissReason::None:
        return "none";
    case MissReason::NoMapping:
        return "no_mapping";
    case MissReason::Stripped:
        return "stripped";
    case MissReason::NoSymbol:
        return "no_symbol";
    case MissReason::Unreadable:
        return "unreadable";
    case MissReason::NotElf:
        return "not_elf";
    case MissReason::NoKallsyms:
        return "no_kallsyms";
    case MissReason::Evicted:
        return "evicted";
    case MissReason::Refused:
        return "refused";
    }
    return "unknown";
}

struct Symbolizer::CacheEntry {
    std::shared_ptr<ElfImage> image;
    std::list<std::string>::iterator lru;
    size_t bytes = 0;
};

struct Symbolizer::ProcessMapping {
    MapEntry map;
    std::string key;           // cache key of its ELF object ("" when none)
    bool in_root = false;      // map.path is a file to open inside PROC/PID/root
    std::string fallback_path; // PROC/PID/map_files/START-END
    MissReason load_miss = MissReason::None;
};

struct Symbolizer::Process {
    std::vector<ProcessMapping> mappings; // executable mappings, sorted by start
    std::unique_ptr<PerfMap> perf_map;
    int64_t perf_map_read_ns = 0;
    bool maps_read = false; // PROC/PID/maps was readable when captured
};

Symbolizer::Symbolizer(SymbolizerOptions options)
    : options_(std::move(options)), opener_(options_.force_open_fallback) {
    load_options_.dwarf = options_.dwarf;
    load_options_.debug_dirs = options_.debug_dirs;
    load_options_.max_file_bytes = options_.max_file_bytes;
    if (!options_.debuginfod.urls.empty()) {
        auto client = DebuginfodClient::create(options_.debuginfod);
        if (client) {
            debuginfod_ = std::move(client).value();
            debuginfod_thread_ = std::thread([this] { debuginfod_loop(); });
        } else {
            debuginfod_error_ = client.error().message();
        }
    }
}

Symbolizer::~Symbolizer() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    debuginfod_cv_.notify_all();
    if (debuginfod_thread_.joinable())
        debuginfod_thread_.join();
}

// ---- debuginfod ----------------------------------------------------------------------------

namespace {
constexpr size_t kDebuginfodQueueMax = 256;
constexpr size_t kDebuginfodRemembered = 1u << 16;
} // namespace

void Symbolizer::want_debug_file_locked(const std::shared_ptr<ElfImage>& img) {
    if (!debuginfod_ || img->build_id().empty() || !img->wants_debug_file(options_.dwarf))
        return;
    const std::string& id = img->build_id();
    if (auto f = debuginfod_found_.find(id); f != debuginfod_found_.end()) {
        attach_debug_file_locked("b:" + id, img, f->second); // downloaded before: local file
        return;
    }
    if (debuginfod_tried_.size() >= kDebuginfodRemembered)
        debuginfod_tried_.clear(); // bounded; asking again later is harmless
    if (!debuginfod_tried_.insert(id).second)
        return;
    if (debuginfod_queue_.size() >= kDebuginfodQueueMax) {
        stats_.debuginfod_queue_drops++;
        debuginfod_tried_.erase(id);
        return;
    }
    debuginfod_queue_.push_back(id);
    debuginfod_cv_.notify_all();
}

bool Symbolizer::attach_debug_file_locked(const std::string& key,
                                          const std::shared_ptr<ElfImage>& img,
                                          const std::string& path) {
    OpenedFile f = opener_.open_trusted(path, options_.max_file_bytes);
    if (!f)
        return false;
    auto file = ElfFile::adopt(std::move(f.fd), path);
    if (!file)
        return false;
    const size_t before = img->bytes();
    if (!img->attach_debug_file(std::move(file).value(), path, options_.dwarf))
        return false;
    if (auto it = cache_.find(key); it != cache_.end() && it->second->image == img) {
        stats_.cache_bytes = stats_.cache_bytes - it->second->bytes + img->bytes();
        it->second->bytes = img->bytes();
        evict_locked();
    }
    (void)before;
    return true;
}

void Symbolizer::debuginfod_loop() {
    std::unique_lock lock(mu_);
    for (;;) {
        debuginfod_cv_.wait(lock, [&] { return stopping_ || !debuginfod_queue_.empty(); });
        if (stopping_)
            return;
        std::string id = std::move(debuginfod_queue_.front());
        debuginfod_queue_.pop_front();
        debuginfod_busy_ = true;
        stats_.debuginfod_lookups++;
        lock.unlock(); // the network, never under the lock
        Result<std::string> path = debuginfod_->find_debuginfo(id);
        lock.lock();
        debuginfod_busy_ = false;
        bool used = false;
        if (path) {
            if (debuginfod_found_.size() >= kDebuginfodRemembered)
                debuginfod_found_.clear();
            debuginfod_found_[id] = *path;
            auto it = cache_.find("b:" + id);
            // Not cached any more: attached when the object is loaded again.
            used =
                it == cache_.end() || attach_debug_file_locked(it->first, it->second->image, *path);
        }
        if (used)
            stats_.debuginfod_hits++;
        else
            stats_.debuginfod_failures++;
        debuginfod_cv_.notify_all();
    }
}

bool Symbolizer::wait_debuginfod_idle(int timeout_ms) {
    std::unique_lock lock(mu_);
    return debuginfod_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                   [&] { return debuginfod_queue_.empty() && !debuginfod_busy_; });
}

void Symbolizer::count_miss(MissReason r) {
    stats_.unsymbolized[static_cast<int>(r)]++;
}

// ---- kernel --------------------------------------------------------------------------------

void Symbolizer::load_kallsyms_locked() {
    // The old index goes first: two at once would be ~10 MB more at the peak.
    kallsyms_.reset();
    stats_.kallsyms_loads++;
    std::ifstream in(options_.kallsyms_path);
    kallsyms_ = std::make_unique<Kallsyms>(Kallsyms::parse(in));
    kallsyms_loaded_ns_ = now_ns();
}

void Symbolizer::reload_kallsyms() {
    std::lock_guard lock(mu_);
    load_kallsyms_locked();
}

FrameResult Symbolizer::kernel(uint64_t address) {
    std::lock_guard lock(mu_);
    stats_.frames++;
    stats_.kernel_frames++;
    FrameResult r;
    r.module = "[kernel.kallsyms]";
    r.elf_address = address;
    if (!kallsyms_)
        load_kallsyms_locked();
    std::optional<KernelSymbol> s = kallsyms_->lookup(address);
    if (!s && now_ns() - kallsyms_loaded_ns_ > 10'000'000'000) {
        load_kallsyms_locked(); // a module or BPF program may have appeared since
        s = kallsyms_->lookup(address);
    }
    if (!s) {
        r.miss = kallsyms_->size() == 0 ? MissReason::NoKallsyms : MissReason::NoMapping;
        count_miss(r.miss);
        return r;
    }
    if (!s->module.empty())
        r.module = "[" + std::string(s->module) + "]";
    r.frames.push_back(SymbolizedFrame{std::string(s->name), "", 0, false});
    return r;
}

// ---- cache ---------------------------------------------------------------------------------

std::shared_ptr<ElfImage> Symbolizer::image_for(const std::string& key) {
    auto it = cache_.find(key);
    if (it == cache_.end())
        return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second->lru);
    stats_.cache_hits++;
    return it->second->image;
}

void Symbolizer::insert_image(const std::string& key, std::shared_ptr<ElfImage> img) {
    if (cache_.count(key) != 0)
        return;
    auto e = std::make_unique<CacheEntry>();
    e->bytes = img->bytes();
    e->image = std::move(img);
    lru_.push_front(key);
    e->lru = lru_.begin();
    stats_.cache_bytes += e->bytes;
    cache_.emplace(key, std::move(e));
    evict_locked();
}

void Symbolizer::evict_locked() {
    // Keep at least the most recent object, even when it alone exceeds the bound.
    while (stats_.cache_bytes > options_.cache_bytes && lru_.size() > 1) {
        const std::string& victim = lru_.back();
        auto it = cache_.find(victim);
        stats_.cache_bytes -= it->second->bytes;
        cache_.erase(it);
        lru_.pop_back();
        stats_.cache_evictions++;
    }
}

// Where an object comes from: a path inside a process's root (opened with openat2
// RESOLVE_IN_ROOT), else a trusted path (PROC/PID/map_files/..., or the operator's --elf).
struct Symbolizer::ImageSource {
    int root_fd = -1;
    std::string path_in_root; // as in /proc/PID/maps
    std::string display;      // PROC/PID/root/PATH, for messages and debug file names
    std::string trusted_path;
    uint64_t expect_inode = 0; // the mapped inode: another one means the file was replaced
};

namespace {
MissReason miss_for(OpenRefusal r) {
    switch (r) {
    case OpenRefusal::Symlink:
    case OpenRefusal::Escape:
    case OpenRefusal::NotRegular:
    case OpenRefusal::TooLarge:
        return MissReason::Refused;
    default:
        return MissReason::Unreadable;
    }
}
} // namespace

std::shared_ptr<ElfImage> Symbolizer::load_opened(OpenedFile& f, const std::string& name,
                                                  const ElfOrigin& origin, std::string& key,
                                                  MissReason& miss) {
    std::string fk = file_key(f.st);
    if (auto k = file_keys_.find(fk); k != file_keys_.end()) {
        if (auto img = image_for(k->second)) {
            key = k->second;
            return img;
        }
    }
    stats_.cache_misses++;
    auto loaded = ElfImage::load(std::move(f.fd), name, load_options_, origin);
    if (!loaded) {
        miss = MissReason::NotElf;
        return nullptr;
    }
    std::shared_ptr<ElfImage> img = std::move(loaded).value();
    if (img->minidebuginfo_symbols() > 0)
        stats_.minidebuginfo_loaded++;
    if (!img->minidebuginfo_error().empty())
        stats_.minidebuginfo_errors++;
    key = img->build_id().empty() ? "f:" + fk : "b:" + img->build_id();
    file_keys_[fk] = key;
    if (auto existing = image_for(key))
        return existing;
    insert_image(key, img);
    want_debug_file_locked(img);
    return img;
}

std::shared_ptr<ElfImage> Symbolizer::load_image(const ImageSource& src, std::string& key,
                                                 MissReason& miss) {
    miss = MissReason::None;
    ElfOrigin origin;
    origin.opener = &opener_;
    origin.root_fd = src.root_fd;
    origin.path_in_root = src.path_in_root;
    if (src.root_fd >= 0 && !src.path_in_root.empty()) {
        OpenedFile f = opener_.open_in_root(src.root_fd, src.path_in_root, options_.max_file_bytes);
        if (f && src.expect_inode != 0 && f.st.st_ino != src.expect_inode) {
            f = OpenedFile{}; // replaced since it was mapped: only map_files has the mapped one
            miss = MissReason::Unreadable;
        } else if (!f) {
            miss = miss_for(f.refusal);
        }
        if (f) {
            if (auto img = load_opened(f, src.display, origin, key, miss))
                return img;
        }
    }
    if (!src.trusted_path.empty()) {
        OpenedFile f = opener_.open_trusted(src.trusted_path, options_.max_file_bytes);
        if (!f) {
            // Keep the more telling reason of the first attempt (a refusal).
            if (miss != MissReason::Refused && miss != MissReason::NotElf)
                miss = miss_for(f.refusal);
            return nullptr;
        }
        if (auto img = load_opened(f, src.trusted_path, origin, key, miss))
            return img;
    }
    if (miss == MissReason::None)
        miss = MissReason::Unreadable;
    return nullptr;
}

// ---- processes -----------------------------------------------------------------------------

Symbolizer::Process& Symbolizer::capture_locked(uint32_t pid) {
    auto& slot = processes_[pid];
    if (slot)
        return *slot;
    slot = std::make_unique<Process>();
    Process& proc = *slot;
    const std::string base = options_.proc_root + "/" + std::to_string(pid);
    std::string text;
    // Empty maps: the process has exited (a zombie keeps its /proc entry, not its memory).
    if (!read_file(base + "/maps", text) || text.empty())
        return proc;
    proc.maps_read = true;
    MapsParse maps = parse_maps(text);
    // The process's root, held while its files are opened (not kept: one fd per process
    // would not scale to the process table).
    UniqueFd root = SafeOpener::open_root(base + "/root");
    for (MapEntry& m : maps.entries) {
        if (!m.executable)
            continue;
        ProcessMapping pm;
        pm.map = std::move(m);
        if (pm.map.is_file() || pm.map.is_memfd()) {
            pm.in_root = pm.map.is_file() && !pm.map.deleted;
            pm.fallback_path = base + "/map_files/" + hex(pm.map.start) + "-" + hex(pm.map.end);
            ImageSource src;
            if (pm.in_root) {
                src.root_fd = root.get();
                src.path_in_root = pm.map.path;
                src.display = base + "/root" + pm.map.path;
                src.expect_inode = pm.map.inode;
            }
            src.trusted_path = pm.fallback_path;
            if (load_image(src, pm.key, pm.load_miss) == nullptr &&
                pm.load_miss == MissReason::None)
                pm.load_miss = MissReason::Unreadable;
        } else if (pm.map.path == "[vdso]") {
            // The vDSO exists only in memory: copy it into a memfd and read it as a file.
            uint64_t len = pm.map.end - pm.map.start;
            pm.load_miss = MissReason::Unreadable;
            UniqueFd mem = open_ro(base + "/mem");
            std::string buf;
            if (mem && len <= kMaxVdsoBytes) {
                buf.assign(len, '\0');
                ssize_t n = ::pread(mem.get(), buf.data(), len, static_cast<off_t>(pm.map.start));
                if (n != static_cast<ssize_t>(len))
                    buf.clear();
            }
            if (!buf.empty() && buf == vdso_bytes_ && image_for(vdso_key_)) {
                pm.key = vdso_key_; // the same vDSO as the last process's
                pm.load_miss = MissReason::None;
            } else if (!buf.empty()) {
                UniqueFd mfd(::memfd_create("hostprof-vdso", MFD_CLOEXEC));
                if (mfd && ::write(mfd.get(), buf.data(), len) == static_cast<ssize_t>(len)) {
                    stats_.cache_misses++;
                    auto loaded = ElfImage::load(std::move(mfd), "[vdso]", load_options_);
                    if (loaded) {
                        std::shared_ptr<ElfImage> img = std::move(loaded).value();
                        pm.key = "vdso:" + img->build_id();
                        if (!image_for(pm.key))
                            insert_image(pm.key, img);
                        pm.load_miss = MissReason::None;
                        vdso_bytes_ = std::move(buf);
                        vdso_key_ = pm.key;
                    } else {
                        pm.load_miss = MissReason::NotElf;
                    }
                }
            }
        }
        proc.mappings.push_back(std::move(pm));
    }
    std::sort(
        proc.mappings.begin(), proc.mappings.end(),
        [](const ProcessMapping& a, const ProcessMapping& b) { return a.map.start < b.map.start; });
    // JIT symbols, read inside the process's root (its /tmp, not ours).
    std::string perf;
    proc.perf_map_read_ns = now_ns();
    OpenedFile pf = opener_.open_in_root(root.get(), "/tmp/perf-" + std::to_string(pid) + ".map",
                                         options_.max_perf_map_bytes, Follow::NoFinalSymlink);
    if (pf && read_all(pf.fd.get(), options_.max_perf_map_bytes, perf)) {
        std::istringstream in(perf);
        proc.perf_map = std::make_unique<PerfMap>(PerfMap::parse(in));
        stats_.perf_map_malformed_lines += proc.perf_map->malformed();
    }
    return proc;
}

bool Symbolizer::process_seen(uint32_t pid) {
    std::lock_guard lock(mu_);
    return capture_locked(pid).maps_read;
}

bool Symbolizer::process_refresh(uint32_t pid) {
    std::lock_guard lock(mu_);
    std::unique_ptr<Process> old = std::move(processes_[pid]);
    if (capture_locked(pid).maps_read)
        return true;
    if (old)
        processes_[pid] = std::move(old); // gone meanwhile: keep the earlier capture
    return false;
}

void Symbolizer::process_exited(uint32_t pid) {
    std::lock_guard lock(mu_);
    processes_.erase(pid);
}

size_t Symbolizer::release_memory() {
    std::lock_guard lock(mu_);
    return release_memory_locked(false);
}

size_t Symbolizer::release_memory_locked(bool only_with_lookup_state) {
    size_t freed = 0;
    for (auto& [key, e] : cache_) {
        if (only_with_lookup_state && e->image->transient_bytes() == 0)
            continue;
        freed += e->image->release_memory();
        stats_.cache_bytes = stats_.cache_bytes - e->bytes + e->image->bytes();
        e->bytes = e->image->bytes();
    }
    lookup_bytes_ = 0;
    lookup_over_ = false;
    return freed;
}

void Symbolizer::count_lookup_memory_locked(const ElfImage& img, size_t transient_before) {
    const size_t now = img.transient_bytes();
    if (now <= transient_before || lookup_over_)
        return;
    lookup_bytes_ += now - transient_before;
    if (lookup_bytes_ <= options_.lookup_memory_bytes)
        return;
    // Objects evicted meanwhile took theirs with them: count what is really held first.
    size_t held = 0;
    for (const auto& [key, e] : cache_)
        held += e->image->transient_bytes();
    lookup_bytes_ = held;
    lookup_over_ = held > options_.lookup_memory_bytes;
}

void Symbolizer::release_before_lookup_locked(const ElfImage& img, uint64_t vaddr) {
    // Past the bound, the state goes when the lookups leave the unit they are in: one unit
    // larger than the bound alone would otherwise be read again for every address in it.
    const uint64_t unit = img.unit_of(vaddr);
    if (lookup_over_ && (&img != last_image_ || unit != last_unit_)) {
        stats_.lookup_memory_releases++;
        release_memory_locked(true);
    }
    last_image_ = &img;
    last_unit_ = unit;
}

Symbolizer::ProcessMapping* Symbolizer::find_mapping(Process& proc, uint64_t address) {
    auto it = std::upper_bound(proc.mappings.begin(), proc.mappings.end(), address,
                               [](uint64_t a, const ProcessMapping& m) { return a < m.map.start; });
    if (it != proc.mappings.begin() && address < std::prev(it)->map.end)
        return &*std::prev(it);
    return nullptr;
}

std::vector<FrameResult> Symbolizer::user_batch(const std::vector<UserAddress>& frames,
                                                const std::function<void()>& each) {
    struct Order {
        uint32_t object; // 0: no object (resolved without DWARF work)
        uint64_t offset; // file offset in the object: follows its virtual addresses
        size_t index;
    };
    std::vector<Order> order(frames.size());
    {
        std::lock_guard lock(mu_);
        std::unordered_map<std::string, uint32_t> objects;
        for (size_t i = 0; i < frames.size(); ++i) {
            const uint64_t a = frames[i].address;
            order[i] = Order{0, a, i};
            const ProcessMapping* pm = find_mapping(capture_locked(frames[i].pid), a);
            if (pm == nullptr || pm->key.empty())
                continue;
            auto [it, added] = objects.emplace(pm->key, static_cast<uint32_t>(objects.size() + 1));
            order[i].object = it->second;
            order[i].offset = a - pm->map.start + pm->map.offset;
        }
    }
    std::sort(order.begin(), order.end(), [](const Order& x, const Order& y) {
        return x.object != y.object ? x.object < y.object : x.offset < y.offset;
    });
    std::vector<FrameResult> out(frames.size());
    for (const Order& o : order) {
        if (each)
            each();
        std::lock_guard lock(mu_);
        out[o.index] = user_locked(frames[o.index].pid, frames[o.index].address, true);
    }
    return out;
}

FrameResult Symbolizer::user(uint32_t pid, uint64_t address) {
    std::lock_guard lock(mu_);
    return user_locked(pid, address, false);
}

FrameResult Symbolizer::user_locked(uint32_t pid, uint64_t address, bool bounded) {
    stats_.frames++;
    stats_.user_frames++;
    FrameResult r;
    Process& proc = capture_locked(pid);
    ProcessMapping* pm = find_mapping(proc, address);

    if (pm == nullptr || pm->map.is_anonymous()) {
        // JIT code lives in anonymous executable memory: try the perf map.
        if (proc.perf_map) {
            if (const PerfMapSymbol* s = proc.perf_map->lookup(address)) {
                r.module = "[jit]";
                r.map_start = s->start;
                r.map_limit = s->start + s->size;
                r.elf_address = address;
                r.frames.push_back(SymbolizedFrame{s->name, "", 0, false});
                return r;
            }
        }
        if (pm != nullptr) {
            r.map_start = pm->map.start;
            r.map_limit = pm->map.end;
        }
        r.miss = MissReason::NoMapping;
        count_miss(r.miss);
        return r;
    }
    r.module = pm->map.path.empty() ? "[anon]" : pm->map.path;
    r.map_start = pm->map.start;
    r.map_limit = pm->map.end;
    r.map_offset = pm->map.offset;
    std::shared_ptr<ElfImage> img;
    if (!pm->key.empty())
        img = image_for(pm->key);
    if (!img && !pm->key.empty() && pm->key.rfind("vdso:", 0) != 0) {
        // Evicted: reload while the file is still reachable.
        std::string key;
        MissReason m;
        ImageSource src;
        UniqueFd root;
        if (pm->in_root) {
            root = SafeOpener::open_root(options_.proc_root + "/" + std::to_string(pid) + "/root");
            src.root_fd = root.get();
            src.path_in_root = pm->map.path;
            src.display = options_.proc_root + "/" + std::to_string(pid) + "/root" + pm->map.path;
            src.expect_inode = pm->map.inode;
        }
        src.trusted_path = pm->fallback_path;
        img = load_image(src, key, m);
        if (!img)
            pm->load_miss = MissReason::Evicted;
    }
    if (!img) {
        r.miss = pm->load_miss != MissReason::None ? pm->load_miss : MissReason::Unreadable;
        count_miss(r.miss);
        return r;
    }
    r.build_id = img->build_id();
    auto vaddr = img->file_offset_to_vaddr(address - pm->map.start + pm->map.offset);
    if (!vaddr) {
        r.miss = MissReason::NoSymbol;
        count_miss(r.miss);
        return r;
    }
    r.elf_address = *vaddr;
    const size_t before = img->bytes();
    if (bounded)
        release_before_lookup_locked(*img, *vaddr);
    const size_t transient = img->transient_bytes();
    ElfLookup l = img->symbolize(*vaddr, options_.demangle, options_.inlines, r.frames);
    if (img->bytes() != before) {
        // Lazily built indexes (DWARF functions per CU, demangled names) grew the object.
        if (auto it = cache_.find(pm->key); it != cache_.end() && it->second->image == img) {
            stats_.cache_bytes += img->bytes() - it->second->bytes;
            it->second->bytes = img->bytes();
            evict_locked();
        }
    }
    if (bounded)
        count_lookup_memory_locked(*img, transient);
    if (l != ElfLookup::Found) {
        r.miss = l == ElfLookup::Stripped ? MissReason::Stripped : MissReason::NoSymbol;
        count_miss(r.miss);
    }
    return r;
}

FrameResult Symbolizer::elf(const std::string& path, uint64_t elf_address) {
    std::lock_guard lock(mu_);
    stats_.frames++;
    FrameResult r;
    r.module = path;
    r.elf_address = elf_address;
    std::string key;
    MissReason miss;
    ImageSource src;
    src.trusted_path = path; // the operator's own path, resolved as given
    std::shared_ptr<ElfImage> img = load_image(src, key, miss);
    if (!img) {
        r.miss = miss;
        count_miss(r.miss);
        return r;
    }
    r.build_id = img->build_id();
    ElfLookup l = img->symbolize(elf_address, options_.demangle, options_.inlines, r.frames);
    if (l != ElfLookup::Found) {
        r.miss = l == ElfLookup::Stripped ? MissReason::Stripped : MissReason::NoSymbol;
        count_miss(r.miss);
    }
    return r;
}

SymbolizerStats Symbolizer::stats_locked() const {
    SymbolizerStats s = stats_;
    s.cache_limit_bytes = options_.cache_bytes;
    s.cache_objects = cache_.size();
    s.processes = processes_.size();
    s.debuginfod_enabled = debuginfod_ != nullptr;
    OpenCounts oc = opener_.counts();
    s.files_opened = oc.opened;
    s.open_fallback_walks = oc.fallback_walks;
    for (int i = 0; i < kOpenRefusalCount; ++i)
        s.open_failures[i] = oc.by_reason[i];
    return s;
}

SymbolizerStats Symbolizer::stats() const {
    std::lock_guard lock(mu_);
    SymbolizerStats s = stats_locked();
    std::lock_guard snap(snapshot_mu_);
    snapshot_ = s;
    return s;
}

SymbolizerStats Symbolizer::stats_nowait() const {
    std::unique_lock lock(mu_, std::try_to_lock);
    if (lock.owns_lock()) {
        SymbolizerStats s = stats_locked();
        lock.unlock();
        std::lock_guard snap(snapshot_mu_);
        snapshot_ = s;
        return s;
    }
    std::lock_guard snap(snapshot_mu_);
    return snapshot_;
}

} // namespace hostprof::sym
