#include "symbolizer/debuginfod.h"

#include <elfutils/debuginfod.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

namespace hostprof::sym {
namespace {

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

bool is_hex_id(const std::string& s) {
    if (s.size() < 2 || s.size() > 128 || s.size() % 2 != 0)
        return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    return true;
}

} // namespace

Result<std::unique_ptr<DebuginfodClient>> DebuginfodClient::create(const DebuginfodOptions& o) {
    if (o.urls.empty())
        return Error{0, "debuginfod: no server URLs"};
    std::string urls;
    for (const auto& u : o.urls) {
        if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0)
            return Error{0, "debuginfod: not an http(s) URL: " + u};
        if (u.find_first_of(" \t\n") != std::string::npos)
            return Error{0, "debuginfod: URL with white space: " + u};
        urls += (urls.empty() ? "" : " ") + u;
    }
    std::error_code ec;
    std::filesystem::create_directories(o.cache_dir, ec);
    if (ec)
        return Error{ec.value(), "debuginfod: cache directory " + o.cache_dir};
    const uint64_t secs = std::max<uint64_t>(1, (o.timeout_ms + 999) / 1000);
    ::setenv(DEBUGINFOD_URLS_ENV_VAR, urls.c_str(), 1);
    ::setenv(DEBUGINFOD_CACHE_PATH_ENV_VAR, o.cache_dir.c_str(), 1);
    ::setenv(DEBUGINFOD_TIMEOUT_ENV_VAR, std::to_string(secs).c_str(), 1);
    ::setenv(DEBUGINFOD_MAXTIME_ENV_VAR, std::to_string(secs).c_str(), 1);
    ::setenv(DEBUGINFOD_MAXSIZE_ENV_VAR, std::to_string(o.max_bytes).c_str(), 1);
    ::setenv(DEBUGINFOD_RETRY_LIMIT_ENV_VAR, "1", 1);
    ::unsetenv(DEBUGINFOD_PROGRESS_ENV_VAR);
    ::unsetenv(DEBUGINFOD_VERBOSE_ENV_VAR);
    std::unique_ptr<DebuginfodClient> c(new DebuginfodClient());
    c->client_ = debuginfod_begin();
    if (c->client_ == nullptr)
        return Error{0, "debuginfod: debuginfod_begin failed"};
    c->timeout_ms_ = o.timeout_ms;
    // Its diagnostics go to /dev/null: with no verbose descriptor (-1) libdebuginfod still
    // dprintf()s to -1, and glibc 2.36 leaks the buffer of every such call.
    c->devnull_ = UniqueFd(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    if (c->devnull_)
        debuginfod_set_verbose_fd(c->client_, c->devnull_.get());
    debuginfod_set_user_data(c->client_, c.get());
    debuginfod_set_progressfn(c->client_, &DebuginfodClient::progress);
    return c;
}

DebuginfodClient::~DebuginfodClient() {
    if (client_ != nullptr)
        debuginfod_end(client_);
}

int DebuginfodClient::progress(debuginfod_client* c, long, long) {
    auto* self = static_cast<DebuginfodClient*>(debuginfod_get_user_data(c));
    return self != nullptr && now_ns() > self->deadline_ns_ ? 1 : 0; // nonzero aborts
}

Result<std::string> DebuginfodClient::find_debuginfo(const std::string& build_id_hex) {
    if (!is_hex_id(build_id_hex))
        return Error{0, "debuginfod: not a build-id: " + build_id_hex};
    deadline_ns_ = now_ns() + static_cast<int64_t>(timeout_ms_) * 1'000'000;
    char* path = nullptr;
    // build_id_len 0: the id is a NUL-terminated hex string.
    int fd = debuginfod_find_debuginfo(
        client_, reinterpret_cast<const unsigned char*>(build_id_hex.c_str()), 0, &path);
    if (fd < 0) {
        std::free(path);
        return errno_error("debuginfod: " + build_id_hex, -fd);
    }
    ::close(fd); // reopened through SafeOpener, with its checks
    std::string out = path != nullptr ? path : "";
    std::free(path);
    if (out.empty())
        return Error{0, "debuginfod: no path for " + build_id_hex};
    return out;
}

} // namespace hostprof::sym
