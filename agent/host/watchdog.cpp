#include "agent/host/watchdog.h"

#include <spdlog/spdlog.h>

namespace hostprof {

std::chrono::nanoseconds Watchdog::steady_now() {
    return std::chrono::steady_clock::now().time_since_epoch();
}

Watchdog::Consumer::Consumer(std::string name, const Watchdog* owner, bool idle)
    : name_(std::move(name)), owner_(owner), last_ns_(idle ? kIdle : owner->now_().count()) {}

void Watchdog::Consumer::beat() {
    last_ns_.store(owner_->now_().count(), std::memory_order_relaxed);
}

void Watchdog::Consumer::idle() {
    last_ns_.store(kIdle, std::memory_order_relaxed);
}

Watchdog::Watchdog(std::chrono::nanoseconds stall_timeout, Now now)
    : timeout_(stall_timeout), now_(std::move(now)) {}

Watchdog::~Watchdog() {
    {
        std::lock_guard lock(thread_mu_);
        stop_ = true;
    }
    stop_cv_.notify_all();
    if (monitor_.joinable())
        monitor_.join();
}

Watchdog::Consumer& Watchdog::watch(const std::string& name, bool starts_idle) {
    std::lock_guard lock(mu_);
    if (const Consumer* c = find(name))
        return *const_cast<Consumer*>(c);
    consumers_.push_back(std::unique_ptr<Consumer>(new Consumer(name, this, starts_idle)));
    return *consumers_.back();
}

const Watchdog::Consumer* Watchdog::find(std::string_view name) const {
    for (const auto& c : consumers_)
        if (c->name_ == name)
            return c.get();
    return nullptr;
}

size_t Watchdog::check() {
    std::lock_guard lock(mu_);
    const int64_t now = now_().count();
    size_t stalled = 0;
    for (const auto& cp : consumers_) {
        Consumer& c = *cp;
        const int64_t last = c.last_ns_.load(std::memory_order_relaxed);
        const bool idle = last == Consumer::kIdle;
        const bool late = !idle && now - last > timeout_.count();
        if (late && !c.stalled_) {
            c.stalled_ = true;
            c.stall_began_ns_ = last;
            c.stalls_.fetch_add(1);
            spdlog::warn("watchdog: consumer {} made no progress for {:.1f} s (timeout {:.1f} s); "
                         "what it consumes queues up and may be dropped",
                         c.name_, static_cast<double>(now - last) / 1e9,
                         static_cast<double>(timeout_.count()) / 1e9);
        } else if (!late && c.stalled_) {
            c.stalled_ = false;
            spdlog::warn("watchdog: consumer {} resumed after a {:.1f} s stall", c.name_,
                         static_cast<double>((idle ? now : last) - c.stall_began_ns_) / 1e9);
        }
        stalled += c.stalled_ ? 1 : 0;
    }
    return stalled;
}

void Watchdog::start_monitor(std::chrono::milliseconds interval) {
    std::lock_guard lock(thread_mu_);
    if (monitor_.joinable())
        return;
    monitor_ = std::thread([this, interval] {
        std::unique_lock lock(thread_mu_);
        while (!stop_cv_.wait_for(lock, interval, [this] { return stop_; })) {
            lock.unlock();
            check();
            lock.lock();
        }
    });
}

double Watchdog::since(const Consumer& c) const {
    const int64_t last = c.last_ns_.load(std::memory_order_relaxed);
    if (last == Consumer::kIdle)
        return 0.0;
    const int64_t d = now_().count() - last;
    return d > 0 ? static_cast<double>(d) / 1e9 : 0.0;
}

uint64_t Watchdog::stalls(std::string_view consumer) const {
    std::lock_guard lock(mu_);
    const Consumer* c = find(consumer);
    return c != nullptr ? c->stalls_.load() : 0;
}

uint64_t Watchdog::total_stalls() const {
    std::lock_guard lock(mu_);
    uint64_t n = 0;
    for (const auto& c : consumers_)
        n += c->stalls_.load();
    return n;
}

double Watchdog::seconds_since_progress(std::string_view consumer) const {
    std::lock_guard lock(mu_);
    const Consumer* c = find(consumer);
    return c != nullptr ? since(*c) : 0.0;
}

std::vector<Watchdog::ConsumerReport> Watchdog::report() const {
    std::vector<ConsumerReport> out;
    std::lock_guard lock(mu_);
    for (const auto& c : consumers_)
        out.push_back({c->name_, c->stalls_.load(), since(*c)});
    return out;
}

} // namespace hostprof
