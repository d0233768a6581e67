// Debuginfod client (libdebuginfod): fetches the separate debug file of a build-id from
// the configured servers into an on-disk cache. Off unless URLs are configured.
//
// libdebuginfod 0.188 takes its settings from the environment only (DEBUGINFOD_URLS,
// DEBUGINFOD_CACHE_PATH, DEBUGINFOD_TIMEOUT, DEBUGINFOD_MAXSIZE, DEBUGINFOD_MAXTIME), so
// create() sets them for this process: call it before other threads start (the agent does,
// at start-up). The whole lookup is also bounded by our own deadline, enforced through the
// progress callback, whatever the server does.
//
// Blocking: the Symbolizer calls find() only from its own debuginfod thread, never on the
// sampling path nor while holding its lock.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

struct debuginfod_client;

namespace hostprof::sym {

struct DebuginfodOptions {
    std::vector<std::string> urls; // empty: debuginfod off
    std::string cache_dir = "/var/cache/hostprof/debuginfod";
    uint64_t timeout_ms = 30'000;    // per lookup, connection to last byte
    uint64_t max_bytes = 4ull << 30; // larger debug files are not downloaded
};

class DebuginfodClient {
  public:
    static Result<std::unique_ptr<DebuginfodClient>> create(const DebuginfodOptions& options);
    ~DebuginfodClient();
    DebuginfodClient(const DebuginfodClient&) = delete;
    DebuginfodClient& operator=(const DebuginfodClient&) = delete;

    // The path of the debug file of `build_id_hex` in the cache (downloaded if needed).
    Result<std::string> find_debuginfo(const std::string& build_id_hex);

  private:
    DebuginfodClient() = default;
    static int progress(debuginfod_client* c, long done, long total);
    debuginfod_client* client_ = nullptr;
    UniqueFd devnull_;
    uint64_t timeout_ms_ = 0;
    int64_t deadline_ns_ = 0;
};

} // namespace hostprof::sym
