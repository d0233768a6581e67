// A small owner of a civetweb server (the HTTP stack prometheus-cpp already depends
// on): a bounded worker pool, request timeouts, read-only GET routes.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/serve/http_query.h"
#include "agent/serve/web_config.h"
#include "common/result.h"
#include "common/unique_fd.h"

struct mg_context;
struct mg_connection;

namespace hostprof {

struct HttpRequest {
    std::string method;
    std::string path;
    std::string query;                          // raw, without '?'
    std::map<std::string, std::string> headers; // lower-case names
    std::string header(const std::string& lower_name) const;
};

struct HttpResponse {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;

    static HttpResponse text(int status, std::string body);
};

struct HttpOptions {
    std::string listen = "127.0.0.1:7464"; // HOST:PORT
    int threads = 8;
    int request_timeout_ms = 330'000; // longest profile (300 s) plus margin
    WebConfig web;                    // TLS and basic auth (none by default)
};

// True for 127.0.0.0/8, ::1 and localhost listen addresses.
bool is_loopback_listen(const std::string& listen);

class HttpServer {
  public:
    using Handler = std::function<HttpResponse(const HttpRequest&)>;

    // Routes are fixed before start. Errors (port in use, bad address) name the address.
    static Result<std::unique_ptr<HttpServer>> start(const HttpOptions& options,
                                                     std::map<std::string, Handler> routes);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // The port actually bound (useful with port 0 in tests).
    int port() const { return port_; }

  private:
    HttpServer() = default;
    static int dispatch(mg_connection* conn, void* cbdata);

    mg_context* ctx_ = nullptr;
    std::map<std::string, Handler> routes_;
    std::unique_ptr<BasicAuth> auth_;
    UniqueFd tls_pem_; // certificate + key handed to civetweb as /proc/self/fd/N
    int port_ = 0;
};

} // namespace hostprof
