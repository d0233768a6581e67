// Watchdog of the consumer loop: the loop calls heartbeat() after every ring-buffer poll; a
// monitor thread calls check() periodically. When no heartbeat came for longer than the
// stall timeout (the loop stuck symbolizing, blocked on a file, starved), the stall is
// logged once and counted, and logged again when the loop resumes. Exported as
// hostprof_watchdog_stalls_total and hostprof_watchdog_seconds_since_poll.
//
// Time comes from an injectable clock, so the unit test drives it explicitly.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace hostprof {

class Watchdog : public prometheus::Collectable {
  public:
    using Now = std::function<std::chrono::nanoseconds()>; // monotonic
    static std::chrono::nanoseconds steady_now();

    explicit Watchdog(std::chrono::nanoseconds stall_timeout, Now now = steady_now);
    ~Watchdog() override;
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

    void heartbeat();
    // True while stalled. Counts and logs a stall when one begins; logs when it ends.
    bool check();
    // check() every `interval` on a thread of its own, until destruction.
    void start_monitor(std::chrono::milliseconds interval);

    uint64_t stalls() const { return stalls_.load(); }
    double seconds_since_heartbeat() const;

    std::vector<prometheus::MetricFamily> Collect() const override;

  private:
    const std::chrono::nanoseconds timeout_;
    const Now now_;
    std::atomic<int64_t> last_ns_;
    std::atomic<uint64_t> stalls_{0};
    std::mutex check_mu_;
    bool stalled_ = false;
    int64_t stall_began_ns_ = 0;

    std::mutex thread_mu_;
    std::condition_variable stop_cv_;
    bool stop_ = false;
    std::thread monitor_;
};

} // namespace hostprof
