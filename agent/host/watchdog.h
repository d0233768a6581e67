// Watchdog of the agent's consumers. Each consumer (the profile ring loop, the latency
// ring thread, the symbolizer building a profile) registers under a name and reports
// progress; a monitor thread calls check() periodically. A consumer that made no progress
// for longer than the stall timeout (stuck symbolizing, blocked on a file, starved) is
// logged once and counted under its name, and logged again when it resumes. Exported
// (serve/agent_metrics.h, from report()) as hostprof_watchdog_stalls_total{consumer} and
// hostprof_watchdog_seconds_since_progress{consumer}.
//
// Two kinds of consumer:
//   - a loop calls beat() every round (it wakes at least every few hundred ms even when
//     idle), so silence means stuck;
//   - a task (the symbolizer; the profile and latency ring consumers, idle while they
//     wait for the kernel) calls busy() when work begins, beat() as it goes and idle()
//     when done: between idle() and the next busy() it cannot stall.
//
// Time comes from an injectable clock, so the unit test drives it explicitly.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace hostprof {

class Watchdog {
  public:
    using Now = std::function<std::chrono::nanoseconds()>; // monotonic
    static std::chrono::nanoseconds steady_now();

    // What a consumer holds: cheap, thread-safe progress reports.
    class Consumer {
      public:
        void beat();
        void busy() { beat(); }
        void idle();
        const std::string& name() const { return name_; }

      private:
        friend class Watchdog;
        static constexpr int64_t kIdle = INT64_MIN;
        Consumer(std::string name, const Watchdog* owner, bool idle);
        const std::string name_;
        const Watchdog* owner_;
        std::atomic<int64_t> last_ns_;
        std::atomic<uint64_t> stalls_{0};
        // Guarded by the watchdog's check mutex.
        bool stalled_ = false;
        int64_t stall_began_ns_ = 0;
    };

    explicit Watchdog(std::chrono::nanoseconds stall_timeout, Now now = steady_now);
    ~Watchdog();
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

    // Registers a consumer (names are unique: the same name returns the same consumer).
    // A task-kind consumer starts idle. The reference lives as long as the watchdog.
    Consumer& watch(const std::string& name, bool starts_idle = false);

    // Counts and logs each stall when it begins; logs when it ends. Returns how many
    // consumers are stalled now.
    size_t check();
    // check() every `interval` on a thread of its own, until destruction.
    void start_monitor(std::chrono::milliseconds interval);

    // By consumer name (0 for an unknown name).
    uint64_t stalls(std::string_view consumer) const;
    uint64_t total_stalls() const;
    // 0 while idle.
    double seconds_since_progress(std::string_view consumer) const;

    // Every consumer, in registration order.
    struct ConsumerReport {
        std::string name;
        uint64_t stalls = 0;
        double seconds_since_progress = 0; // 0 while idle
    };
    std::vector<ConsumerReport> report() const;

  private:
    const Consumer* find(std::string_view name) const; // with mu_ held
    double since(const Consumer& c) const;

    const std::chrono::nanoseconds timeout_;
    const Now now_;
    mutable std::mutex mu_; // consumers_ and each consumer's stall state
    std::vector<std::unique_ptr<Consumer>> consumers_;

    std::mutex thread_mu_;
    std::condition_variable stop_cv_;
    bool stop_ = false;
    std::thread monitor_;
};

} // namespace hostprof
