#include "agent/pipeline/latency.h"

#include <dirent.h>
#include <fnmatch.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include "kernel-compat/syscall_table.h"
#include "agent/pipeline/pipeline.h"
#include "common/unique_fd.h"

namespace hostprof {
namespace {

int64_t clock_ns(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// A CLOCK_MONOTONIC timestamp (bpf_ktime_get_ns) as Unix time.
int64_t monotonic_to_unix(uint64_t mono_ns) {
    return clock_ns(CLOCK_REALTIME) - (clock_ns(CLOCK_MONOTONIC) - static_cast<int64_t>(mono_ns));
}

compat::AttachMode mode_for(const LatencyOptions& o, compat::Collector c) {
    auto it = o.collectors.find(c);
    return it == o.collectors.end() ? compat::AttachMode::None : it->second;
}

} // namespace

std::pair<std::map<uint64_t, std::string>, size_t>
match_cgroups(const std::string& root, const std::vector<std::string>& patterns, size_t limit) {
    std::map<std::string, uint64_t> by_path;
    size_t over = 0;
    constexpr int kMaxDepth = 16;
    std::function<void(const std::string&, int)> walk = [&](const std::string& rel, int depth) {
        std::string dir = root + rel;
        struct stat st {};
        if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            return;
        const std::string path = rel.empty() ? "/" : rel;
        for (const std::string& p : patterns)
            if (::fnmatch(p.c_str(), path.c_str(), 0) == 0) {
                by_path.emplace(path, st.st_ino);
                break;
            }
        if (depth >= kMaxDepth)
            return;
        DIR* d = ::opendir(dir.c_str());
        if (d == nullptr)
            return;
        std::vector<std::string> children;
        while (dirent* e = ::readdir(d))
            if (e->d_type == DT_DIR && std::strcmp(e->d_name, ".") != 0 &&
                std::strcmp(e->d_name, "..") != 0)
                children.emplace_back(e->d_name);
        ::closedir(d);
        for (const std::string& c : children)
            walk(rel + "/" + c, depth + 1);
    };
    walk("", 0);
    std::map<uint64_t, std::string> out;
    for (const auto& [path, ino] : by_path) {
        if (out.size() >= limit) {
            ++over;
            continue;
        }
        out.emplace(ino, path);
    }
    return {out, over};
}

LatencyCollectors::LatencyCollectors(const LatencyOptions& options, OutlierStore* store,
                                     Pipeline* pipeline, std::vector<LatencyStart>& report)
    : options_(options), store_(store), pipeline_(pipeline) {
    auto note = [&](compat::Collector c, const Status& st, const std::vector<std::string>* att) {
        LatencyStart s{c, st.ok(), st.ok() ? "" : st.error().message(), {}};
        if (att != nullptr)
            s.attached = *att;
        report.push_back(std::move(s));
    };
    using compat::Collector;
    if (auto mode = mode_for(options, Collector::Syscalls); mode != compat::AttachMode::None) {
        SyscallOptions so;
        so.mode = mode;
        so.outlier_threshold_ns = options.syscall_outlier_ns;
        so.outlier_threshold_overrides = options.syscall_outlier_overrides;
        so.per_cgroup = !options.syscall_cgroups.empty();
        so.native_schema = options.native_schema;
        if (pipeline_ != nullptr)
            so.unwind = pipeline_->unwind_maps();
        auto c =
            SyscallCollector::start(so, [this](const SyscallOutlierView& v) { on_syscall(v); });
        if (c) {
            syscalls_ = std::move(c.value());
            note(Collector::Syscalls, {}, &syscalls_->attached());
        } else {
            note(Collector::Syscalls, c.error(), nullptr);
        }
    }
    if (auto mode = mode_for(options, Collector::Tcp); mode != compat::AttachMode::None) {
        auto c = TcpCollector::start(
            {.mode = mode, .ports = options.tcp_ports, .native_schema = options.native_schema});
        if (c) {
            tcp_ = std::move(c.value());
            note(Collector::Tcp, {}, &tcp_->attached());
        } else {
            note(Collector::Tcp, c.error(), nullptr);
        }
    }
    if (auto mode = mode_for(options, Collector::Block); mode != compat::AttachMode::None) {
        BlockOptions bo;
        bo.mode = mode;
        bo.slow_threshold_ns = options.block_slow_ns;
        bo.sys_root = options.sys_root;
        bo.native_schema = options.native_schema;
        auto c = BlockCollector::start(bo, [this](const SlowIo& io) { on_slow_io(io); });
        if (c) {
            block_ = std::move(c.value());
            note(Collector::Block, {}, &block_->attached());
        } else {
            note(Collector::Block, c.error(), nullptr);
        }
    }
    if (auto mode = mode_for(options, Collector::RunQueue); mode != compat::AttachMode::None) {
        auto c = RunQueueCollector::start({.mode = mode, .native_schema = options.native_schema});
        if (c) {
            runqueue_ = std::move(c.value());
            note(Collector::RunQueue, {}, &runqueue_->attached());
        } else {
            note(Collector::RunQueue, c.error(), nullptr);
        }
    }
    refresh();
}

LatencyCollectors::~LatencyCollectors() {
    stop_.store(true);
    if (stop_fd_) {
        const uint64_t one = 1;
        (void)!::write(stop_fd_.get(), &one, sizeof(one));
    }
    if (consumer_.joinable())
        consumer_.join();
    // Members go in reverse order: the collectors detach after the consumer stopped.
}

void LatencyCollectors::start_consumer(Watchdog::Consumer* watch) {
    if (consumer_.joinable() || (!syscalls_ && !block_))
        return;
    watch_ = watch;
    stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    // The daemon's thread takes SIGINT/SIGTERM (its poll returns EINTR at once).
    sigset_t block_set, old;
    sigemptyset(&block_set);
    sigaddset(&block_set, SIGINT);
    sigaddset(&block_set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block_set, &old);
    consumer_ = std::thread([this] { consume_loop(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void LatencyCollectors::consume_loop() {
    UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
    if (!ep.valid()) {
        spdlog::error("latency consumer: epoll_create1: {}", std::strerror(errno));
        return;
    }
    for (int fd :
         {syscalls_ ? syscalls_->ring_fd() : -1, block_ ? block_->ring_fd() : -1, stop_fd_.get()}) {
        if (fd < 0)
            continue;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev);
    }
    // Every outlier wakes this thread at once (its process may exit soon, and its
    // mappings must be read while it lives), so there is no timed drain: the thread
    // sleeps until a record or the stop request arrives, idle for the watchdog meanwhile.
    // (It woke every 200 ms, and its own waits were outliers that woke it again: ~25
    // wakeups/s under process churn, now the agent's own calls are never outliers.)
    const int poll_ms = stop_fd_ ? -1 : 200;
    while (!stop_.load()) {
        epoll_event evs[3];
        if (watch_ != nullptr)
            watch_->idle();
        ::epoll_wait(ep.get(), evs, 3, poll_ms);
        if (watch_ != nullptr)
            watch_->busy();
        int n = 0;
        if (syscalls_)
            n += std::max(0, syscalls_->consume());
        if (block_)
            n += std::max(0, block_->consume());
        consumed_ += static_cast<uint64_t>(n);
    }
    if (watch_ != nullptr)
        watch_->idle(); // stopped on purpose: not a stall
}

void LatencyCollectors::on_syscall(const SyscallOutlierView& v) {
    const std::string name = syscall_label(v.nr);
    Outlier o;
    o.family = "hostprof_syscall_latency_seconds";
    o.series = {{"syscall", name}};
    o.bucket_le = latency_bucket_le(v.duration_ns, HP_SYS_SLOTS);
    o.what = name;
    o.pid = v.pid;
    o.tid = v.tid;
    o.start_time_ns = v.start_time_ns;
    o.comm = std::string(v.comm);
    o.duration_ns = v.duration_ns;
    o.unix_ns = monotonic_to_unix(v.timestamp_ns);
    o.result = v.ret;
    // Only user frames: the kernel stack taken at sys_exit is the exit path (entry code,
    // the tracepoint, our program), the same for every syscall, not where it waited.
    o.kernel_len = 0;
    o.frames.assign(v.user_frames.begin(), v.user_frames.end());
    if (store_ != nullptr)
        store_->add(std::move(o));
    if (pipeline_ != nullptr) {
        uint32_t flags = (v.flags & HP_SYS_USTACK_FULL) ? HP_PROF_USTACK_FULL : 0;
        pipeline_->add_record(StackRecordView{
            .kind = HP_PROF_SYSCALL_LATENCY,
            .pid = v.pid,
            .tid = v.tid,
            .cpu = v.cpu,
            .timestamp_ns = v.timestamp_ns,
            .cgroup_id = v.cgroup_id,
            .start_time_ns = v.start_time_ns,
            .weight_ns = v.duration_ns,
            .flags = flags,
            .comm = v.comm,
            .kernel_frames = {},
            .user_frames = v.user_frames,
            .python_frames = v.python_frames,
        });
    }
}

void LatencyCollectors::on_slow_io(const SlowIo& io) {
    if (store_ == nullptr)
        return;
    std::string device;
    {
        std::lock_guard lock(names_mu_);
        auto it = disks_.find({io.major, io.minor});
        device = it != disks_.end() ? it->second
                                    : std::to_string(io.major) + ":" + std::to_string(io.minor);
    }
    Outlier o;
    o.family = "hostprof_block_io_latency_seconds";
    o.series = {{"device", device}, {"op", std::string(io.op)}};
    o.bucket_le = latency_bucket_le(io.service_ns, HP_BLK_SLOTS);
    o.what = device + " " + std::string(io.op) + " " + std::to_string(io.bytes) + " bytes";
    o.pid = io.pid;
    o.comm = std::string(io.comm);
    o.duration_ns = io.service_ns;
    o.unix_ns = monotonic_to_unix(io.timestamp_ns);
    o.result = io.error;
    store_->add(std::move(o));
}

void LatencyCollectors::refresh() {
    std::map<uint64_t, std::string> paths;
    size_t over = 0;
    if (syscalls_ && !options_.syscall_cgroups.empty()) {
        std::tie(paths, over) =
            match_cgroups(options_.cgroup_root, options_.syscall_cgroups, HP_SYS_MAX_CGROUPS);
        std::vector<uint64_t> ids;
        for (const auto& [id, path] : paths)
            ids.push_back(id);
        if (Status st = syscalls_->set_cgroups(ids); !st)
            spdlog::warn("syscall cgroup allowlist: {}", st.error().message());
    }
    auto disks = block_ ? block_device_names(options_.sys_root)
                        : std::map<std::pair<uint32_t, uint32_t>, std::string>{};
    std::lock_guard lock(names_mu_);
    cgroup_paths_ = std::move(paths);
    cgroups_over_limit_ = over;
    disks_ = std::move(disks);
}

std::vector<ProgramFd> LatencyCollectors::programs() const {
    std::vector<ProgramFd> out;
    auto add = [&](std::vector<ProgramFd> v) { out.insert(out.end(), v.begin(), v.end()); };
    if (syscalls_)
        add(syscalls_->programs());
    if (tcp_)
        add(tcp_->programs());
    if (block_)
        add(block_->programs());
    if (runqueue_)
        add(runqueue_->programs());
    return out;
}

LatencySnapshot LatencyCollectors::snapshot() const {
    std::lock_guard lock(collect_mu_);
    LatencySnapshot out;
    if (syscalls_) {
        out.syscalls = syscalls_->snapshot();
        std::lock_guard names(names_mu_);
        out.syscalls->cgroup_paths = cgroup_paths_;
        out.cgroups_over_limit = cgroups_over_limit_;
        out.syscall_cgroups = !options_.syscall_cgroups.empty();
    }
    if (tcp_)
        out.tcp = tcp_->snapshot();
    if (block_)
        out.block = block_->snapshot();
    if (runqueue_)
        out.runqueue = runqueue_->snapshot();
    return out;
}

} // namespace hostprof
