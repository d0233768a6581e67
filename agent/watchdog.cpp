#include "agent/watchdog.h"

#include <prometheus/metric_family.h>
#include <spdlog/spdlog.h>

namespace hostprof {

std::chrono::nanoseconds Watchdog::steady_now() {
    return std::chrono::steady_clock::now().time_since_epoch();
}

Watchdog::Watchdog(std::chrono::nanoseconds stall_timeout, Now now)
    : timeout_(stall_timeout), now_(std::move(now)), last_ns_(now_().count()) {}

Watchdog::~Watchdog() {
    {
        std::lock_guard lock(thread_mu_);
        stop_ = true;
    }
    stop_cv_.notify_all();
    if (monitor_.joinable())
        monitor_.join();
}

void Watchdog::heartbeat() {
    last_ns_.store(now_().count(), std::memory_order_relaxed);
}

bool Watchdog::check() {
    std::lock_guard lock(check_mu_);
    int64_t now = now_().count();
    int64_t last = last_ns_.load(std::memory_order_relaxed);
    bool late = now - last > timeout_.count();
    if (late && !stalled_) {
        stalled_ = true;
        stall_began_ns_ = last;
        stalls_.fetch_add(1);
        spdlog::warn("watchdog: the consumer loop has not polled the ring buffers for {:.1f} s "
                     "(timeout {:.1f} s); samples queue in the kernel and may be dropped",
                     static_cast<double>(now - last) / 1e9,
                     static_cast<double>(timeout_.count()) / 1e9);
    } else if (!late && stalled_) {
        stalled_ = false;
        spdlog::warn("watchdog: the consumer loop resumed after a {:.1f} s stall",
                     static_cast<double>(last - stall_began_ns_) / 1e9);
    }
    return stalled_;
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

double Watchdog::seconds_since_heartbeat() const {
    int64_t d = now_().count() - last_ns_.load(std::memory_order_relaxed);
    return d > 0 ? static_cast<double>(d) / 1e9 : 0.0;
}

std::vector<prometheus::MetricFamily> Watchdog::Collect() const {
    std::vector<prometheus::MetricFamily> out(2);
    out[0].name = "hostprof_watchdog_stalls_total";
    out[0].help = "Times the consumer loop went longer than the watchdog timeout without "
                  "polling the ring buffers.";
    out[0].type = prometheus::MetricType::Counter;
    out[0].metric.emplace_back();
    out[0].metric.back().counter.value = static_cast<double>(stalls());
    out[1].name = "hostprof_watchdog_seconds_since_poll";
    out[1].help = "Seconds since the consumer loop last polled the ring buffers.";
    out[1].type = prometheus::MetricType::Gauge;
    out[1].metric.emplace_back();
    out[1].metric.back().gauge.value = seconds_since_heartbeat();
    return out;
}

} // namespace hostprof
