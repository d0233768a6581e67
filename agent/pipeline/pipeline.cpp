#include "agent/pipeline/pipeline.h"

#include <malloc.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include <thread>

#include "symbolizer/symbolizer.h"

namespace hostprof {

namespace {

// CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns() timestamps.
uint64_t monotonic_now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

// The resolver a symbolization uses: the pipeline's (the symbolizer) for native frames,
// the Python reader for Python frames, and each frame resolved reported to the watchdog
// (a symbolization stuck on one object, a slow file or a pathological DWARF, stops the
// beats).
class PipelineResolver final : public FrameResolver {
  public:
    PipelineResolver(FrameResolver& inner, Watchdog::Consumer* watch, unwind::PythonSymbols* python)
        : inner_(inner), watch_(watch), python_(python) {}
    ResolvedFrame kernel(uint64_t address) override {
        beat();
        return inner_.kernel(address);
    }
    ResolvedFrame user(uint32_t pid, uint64_t address) override {
        beat();
        return inner_.user(pid, address);
    }
    ResolvedFrame python(uint32_t pid, uint64_t frame) override {
        beat();
        ResolvedFrame f;
        if (python_ == nullptr)
            return f;
        if (auto s = python_->resolve(pid, frame))
            f.lines.push_back(Line{std::move(s->function), std::move(s->file), s->line});
        return f;
    }
    std::vector<ResolvedFrame> user_batch(const std::vector<UserFrame>& frames,
                                          const std::function<void()>& each) override {
        return inner_.user_batch(frames, [&] {
            beat();
            if (each)
                each();
        });
    }
    bool process_seen(uint32_t pid) override { return inner_.process_seen(pid); }
    bool process_refresh(uint32_t pid) override { return inner_.process_refresh(pid); }
    void process_exited(uint32_t pid) override { inner_.process_exited(pid); }
    bool symbolizer_stats(sym::SymbolizerStats& out) const override {
        return inner_.symbolizer_stats(out);
    }
    void release_memory() override { inner_.release_memory(); }

  private:
    void beat() {
        if (watch_ != nullptr)
            watch_->beat();
    }
    FrameResolver& inner_;
    Watchdog::Consumer* watch_;
    unwind::PythonSymbols* python_;
};

} // namespace

Result<std::unique_ptr<Pipeline>> Pipeline::start(const PipelineOptions& options,
                                                  std::unique_ptr<FrameResolver> resolver) {
    std::unique_ptr<Pipeline> p(new Pipeline());
    p->resolver_ = std::move(resolver);
    p->processes_ = std::make_unique<ProcessTable>(options.proc_root, options.process_table_size,
                                                   options.service_rule);
    p->frequency_hz_ = options.collector.frequency_hz;
    p->exited_grace_ns_ = options.exited_grace_ns;
    p->exited_max_ = options.exited_max;
    p->proc_root_ = options.proc_root;
    p->flush_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!p->flush_fd_)
        return errno_error("eventfd for profile flushes");
    p->consumer_.store(std::this_thread::get_id());
    Pipeline* self = p.get();
    auto c = ProfileCollector::start(
        options.collector, [self](const StackRecordView& r) { self->on_stack(r); },
        [self](const ProcRecord& r) { self->on_proc(r); });
    if (!c)
        return c.error();
    p->collector_ = std::move(c.value());
    // Python frames' names are read from the processes: the store knows which run CPython.
    if (unwind::Store* store = p->collector_->unwinder(); store && options.collector.python) {
        unwind::PythonSymbolsOptions so;
        so.lookup = [store](uint32_t pid) { return store->python(pid); };
        p->python_ = std::make_unique<unwind::PythonSymbols>(std::move(so));
    }
    return p;
}

int Pipeline::poll(int timeout_ms) {
    consumer_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    // Two sources: the ring (libbpf's epoll fd: readable once the kernel forced a wakeup)
    // and flush() requests.
    pollfd fds[2] = {{collector_->ring_fd(), POLLIN, 0}, {flush_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, timeout_ms) < 0)
        return -errno;
    if (fds[1].revents & POLLIN) {
        uint64_t requests = 0;
        (void)!::read(flush_fd_.get(), &requests, sizeof(requests));
    }
    int n = drain();
    if (const int64_t now = unix_now_ns(); now - last_sweep_ns_ >= 10'000'000'000LL) {
        last_sweep_ns_ = now;
        sweep_vanished();
    }
    release_exited(false);
    return n;
}

int Pipeline::drain() const {
    uint64_t asked = 0;
    {
        std::lock_guard lock(flush_mu_);
        asked = flush_asked_;
    }
    // Every request counted above was made before this drain began: it is served.
    int n = collector_->consume();
    {
        std::lock_guard lock(flush_mu_);
        if (asked <= flush_served_)
            return n;
        flush_served_ = asked;
    }
    flush_cv_.notify_all();
    return n;
}

void Pipeline::flush(std::chrono::milliseconds wait) const {
    if (consumer_.load(std::memory_order_relaxed) == std::this_thread::get_id()) {
        (void)drain();
        return;
    }
    std::unique_lock lock(flush_mu_);
    const uint64_t ticket = ++flush_asked_;
    const uint64_t one = 1;
    (void)!::write(flush_fd_.get(), &one, sizeof(one));
    flush_cv_.wait_for(lock, wait, [&] { return flush_served_ >= ticket; });
}

void Pipeline::sweep_vanished() {
    if (unwind::Store* u = collector_->unwinder())
        u->remove_vanished();
    std::vector<std::pair<uint32_t, uint64_t>> announced;
    {
        std::lock_guard lock(mu_);
        for (const auto& [key, captured_at] : seen_)
            announced.push_back(key);
    }
    std::vector<std::pair<uint32_t, uint64_t>> gone;
    for (const auto& key : announced) {
        const std::string dir = proc_root_ + "/" + std::to_string(key.first);
        if (::access(dir.c_str(), F_OK) != 0 && errno == ENOENT)
            gone.push_back(key);
    }
    if (gone.empty())
        return;
    std::lock_guard lock(mu_);
    const int64_t now = unix_now_ns();
    for (const auto& key : gone)
        if (seen_.erase(key) > 0)
            push_exited(key.first, now);
}

void Pipeline::push_exited(uint32_t pid, int64_t when) {
    exited_.emplace_back(pid, when);
    ++exited_pids_[pid];
}

void Pipeline::release_exited(bool all) {
    std::vector<uint32_t> release;
    {
        std::lock_guard lock(mu_);
        const int64_t now = unix_now_ns();
        while (!exited_.empty() &&
               (all || exited_.size() > exited_max_ ||
                now - exited_.front().second >= static_cast<int64_t>(exited_grace_ns_))) {
            release.push_back(exited_.front().first);
            if (auto it = exited_pids_.find(exited_.front().first);
                it != exited_pids_.end() && --it->second == 0)
                exited_pids_.erase(it);
            exited_.pop_front();
        }
    }
    if (python_)
        for (uint32_t pid : release)
            python_->remove_process(pid);
    if (release.empty() || !resolver_)
        return;
    std::lock_guard lock(resolver_mu_);
    for (uint32_t pid : release)
        resolver_->process_exited(pid);
}

void Pipeline::on_stack(const StackRecordView& r) {
    bool announce = false;
    bool wanted = false;
    {
        std::lock_guard lock(mu_);
        ++(r.kind == HP_PROF_ON_CPU ? on_cpu_ : r.kind == HP_PROF_OFF_CPU ? off_cpu_ : latency_);
        ktrunc_ += (r.flags & HP_PROF_KSTACK_FULL) ? 1 : 0;
        utrunc_ += (r.flags & HP_PROF_USTACK_FULL) ? 1 : 0;
        // Only processes some subscriber wants are captured for the symbolizer: a capture
        // is the costly part, and the consumer must be free for the next new process.
        // Syscall outliers are always wanted: the outlier store keeps their stacks and
        // symbolizes them when asked, with or without a profile subscriber.
        for (auto& [id, agg] : subscriptions_)
            wanted = agg.add(r, *processes_) || wanted;
        wanted = wanted || r.kind == HP_PROF_SYSCALL_LATENCY;
        // Kernel threads (no user stack) need no mappings. find() before insert: the
        // common case (already seen) allocates nothing.
        const std::pair<uint32_t, uint64_t> proc{r.pid, r.start_time_ns};
        if (wanted && !r.user_frames.empty() && !seen_.contains(proc)) {
            if (seen_.size() > 65536)
                seen_.clear(); // bounded; re-announcing is harmless
            announce = seen_.emplace(proc, monotonic_now_ns()).second;
        }
    }
    // Python frames: their code objects are read now, while the process lives.
    if (wanted && r.python_frames > 0 && python_)
        python_->note(r.pid, r.user_frames);
    // The BPF program asks for a second read a few ms after a process's first sample.
    const bool refresh =
        wanted && !announce && (r.flags & HP_PROF_RECAPTURE) && !r.user_frames.empty();
    // The unwinder reads the same mappings: their files' tables are built (or shared) and
    // the walker pointed at them; until then this process's stacks use frame pointers.
    if (announce || refresh) {
        if (unwind::Store* u = collector_->unwinder())
            u->add_process(r.pid);
    }
    if ((announce || refresh) && resolver_) {
        bool ok = false;
        {
            std::lock_guard lock(resolver_mu_);
            ok = announce ? resolver_->process_seen(r.pid) : resolver_->process_refresh(r.pid);
        }
        if (refresh)
            return;
        std::lock_guard lock(mu_);
        ++(ok ? captured_ : missed_);
    }
}

void Pipeline::on_proc(const ProcRecord& r) {
    {
        std::lock_guard lock(mu_);
        ++proc_;
        if (r.kind == HP_PROF_EXEC) {
            processes_->on_exec(r.pid);
            for (auto& [id, agg] : subscriptions_)
                agg.on_exec(r.pid);
            // A pid that exited earlier and is reused here must not be released later
            // under its new owner.
            // (A scan of up to exited_max entries, so only when the pid is there.)
            if (exited_pids_.erase(r.pid) > 0)
                std::erase_if(exited_, [&](const auto& e) { return e.first == r.pid; });
            // New mappings: announce the process again, unless its capture began after
            // the exec. The profile ring is drained less often than the latency ring, so
            // an outlier can capture the new image before this record arrives; dropping
            // that capture would leave a short-lived process unsymbolized.
            const auto first = seen_.lower_bound({r.pid, 0});
            const auto last = seen_.lower_bound({r.pid + 1, 0});
            for (auto it = first; it != last; ++it)
                if (it->second > r.timestamp_ns)
                    return; // captured after the exec: already the new image
            seen_.erase(first, last);
            if (unwind::Store* u = collector_->unwinder())
                u->remove_process(r.pid); // the next sample reads the new image
        } else {
            processes_->on_exit(r.pid);
            seen_.erase({r.pid, r.start_time_ns});
            if (unwind::Store* u = collector_->unwinder())
                u->remove_process(r.pid);
            // Windows still open may hold its samples: its mappings go later.
            push_exited(r.pid, unix_now_ns());
            return;
        }
    }
    // exec: another program (other code objects), and the mappings read before it are stale
    if (python_)
        python_->remove_process(r.pid);
    if (resolver_) {
        std::lock_guard lock(resolver_mu_);
        resolver_->process_exited(r.pid);
    }
}

Pipeline::SubscriptionId Pipeline::subscribe(hp_prof_kind kind, ProfileFilter filter,
                                             bool per_thread) {
    std::lock_guard lock(mu_);
    SubscriptionId id = next_id_++;
    subscriptions_.emplace(id, ProfileAggregator(kind, std::move(filter), per_thread));
    return id;
}

ProfileWindow Pipeline::collect(SubscriptionId id) {
    flush();
    std::lock_guard lock(mu_);
    auto it = subscriptions_.find(id);
    if (it == subscriptions_.end())
        return {};
    ProfileWindow w = it->second.take();
    window_drops_ += it->second.dropped_stacks();
    subscriptions_.erase(it);
    processes_->sweep_exited(); // windows keep their own copies of process metadata
    return w;
}

Profile Pipeline::symbolize(const ProfileWindow& window, const BuildOptions& options) {
    std::lock_guard lock(resolver_mu_);
    // On a thread of its own: HTTP worker threads have small stacks, and libdw's DWARF
    // walk needs tens of KiB of stack per frame (it overflowed civetweb's workers).
    Profile out;
    std::thread worker([&] {
        if (symbolizer_watch_ != nullptr)
            symbolizer_watch_->busy();
        PipelineResolver resolver(*resolver_, symbolizer_watch_, python_.get());
        out = build_profile(window, resolver, options);
        if (symbolizer_watch_ != nullptr)
            symbolizer_watch_->idle();
    });
    worker.join();
    // Memory held only to speed up lookups (libdw line tables, touched pages of mapped
    // debug data) goes back after every profile, and malloc returns the freed pages of
    // every arena (the worker threads above each get one): without this the agent's RSS
    // grew past 150 MiB under process churn (the symbol cache bound did not see libdw's
    // line tables).
    resolver_->release_memory();
    ::malloc_trim(0);
    sym::SymbolizerStats refresh; // the snapshot /metrics falls back to when busy
    (void)resolver_->symbolizer_stats(refresh);
    return out;
}

bool Pipeline::symbolizer_stats(sym::SymbolizerStats& out) const {
    return resolver_ && resolver_->symbolizer_stats(out);
}

PipelineStats Pipeline::stats() const {
    flush();
    PipelineStats s;
    s.collector = collector_->counters();
    std::lock_guard lock(mu_);
    s.processes = processes_->stats();
    s.on_cpu_records = on_cpu_;
    s.off_cpu_records = off_cpu_;
    s.latency_records = latency_;
    s.proc_records = proc_;
    s.subscriptions = subscriptions_.size();
    s.kernel_stacks_truncated = ktrunc_;
    s.user_stacks_truncated = utrunc_;
    s.window_stack_drops = window_drops_;
    for (const auto& [id, agg] : subscriptions_)
        s.window_stack_drops += agg.dropped_stacks();
    s.processes_captured = captured_;
    s.processes_exited_before_capture = missed_;
    return s;
}

} // namespace hostprof
