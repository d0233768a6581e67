#include "agent/http_server.h"

#include <civetweb.h>

#include <algorithm>
#include <cctype>
#include <mutex>

namespace hostprof {

std::string HttpRequest::header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
}

HttpResponse HttpResponse::text(int status, std::string body) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    if (r.body.empty() || r.body.back() != '\n')
        r.body += '\n';
    return r;
}

std::optional<std::string> url_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '+') {
            out += ' ';
        } else if (c == '%') {
            if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
                !std::isxdigit(static_cast<unsigned char>(s[i + 2])))
                return std::nullopt;
            out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

std::optional<std::string> query_param(std::string_view query, std::string_view key) {
    size_t start = 0;
    while (start <= query.size()) {
        size_t end = query.find('&', start);
        if (end == std::string_view::npos)
            end = query.size();
        std::string_view pair = query.substr(start, end - start);
        size_t eq = pair.find('=');
        std::string_view k = pair.substr(0, eq);
        if (k == key)
            return eq == std::string_view::npos ? std::optional<std::string>("")
                                                : url_decode(pair.substr(eq + 1));
        start = end + 1;
    }
    return std::nullopt;
}

namespace {

std::once_flag g_civetweb_init;

const char* reason(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

} // namespace

int HttpServer::dispatch(mg_connection* conn, void* cbdata) {
    auto* self = static_cast<HttpServer*>(cbdata);
    const mg_request_info* info = mg_get_request_info(conn);
    HttpRequest req;
    req.method = info->request_method ? info->request_method : "";
    req.path = info->local_uri ? info->local_uri : "";
    req.query = info->query_string ? info->query_string : "";
    for (int i = 0; i < info->num_headers; ++i) {
        std::string name = info->http_headers[i].name ? info->http_headers[i].name : "";
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        req.headers[name] = info->http_headers[i].value ? info->http_headers[i].value : "";
    }

    HttpResponse resp;
    auto route = self->routes_.find(req.path);
    if (route == self->routes_.end()) {
        resp = HttpResponse::text(404, "not found: " + req.path);
    } else if (req.method != "GET" && req.method != "HEAD") {
        resp = HttpResponse::text(405, "only GET is served");
    } else {
        try {
            resp = route->second(req);
        } catch (const std::exception& e) {
            resp = HttpResponse::text(500, std::string("internal error: ") + e.what());
        }
    }
    std::string head = "HTTP/1.1 " + std::to_string(resp.status) + " " + reason(resp.status) +
                       "\r\nContent-Type: " + resp.content_type +
                       "\r\nContent-Length: " + std::to_string(resp.body.size()) +
                       "\r\nCache-Control: no-store\r\nConnection: close\r\n";
    for (const auto& [k, v] : resp.headers)
        head += k + ": " + v + "\r\n";
    head += "\r\n";
    mg_write(conn, head.data(), head.size());
    if (req.method != "HEAD" && !resp.body.empty())
        mg_write(conn, resp.body.data(), resp.body.size());
    return static_cast<int>(resp.status);
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(const HttpOptions& options,
                                                      std::map<std::string, Handler> routes) {
    std::call_once(g_civetweb_init, [] { mg_init_library(0); });
    std::unique_ptr<HttpServer> s(new HttpServer());
    s->routes_ = std::move(routes);
    std::string threads = std::to_string(std::max(1, options.threads));
    std::string timeout = std::to_string(std::max(1000, options.request_timeout_ms));
    const char* opts[] = {"listening_ports",
                          options.listen.c_str(),
                          "num_threads",
                          threads.c_str(),
                          "request_timeout_ms",
                          timeout.c_str(),
                          "enable_keep_alive",
                          "no",
                          nullptr};
    mg_callbacks callbacks{};
    mg_init_data init{};
    init.callbacks = &callbacks;
    init.user_data = s.get();
    init.configuration_options = opts;
    mg_error_data err{};
    char errtext[256] = {};
    err.text = errtext;
    err.text_buffer_size = sizeof(errtext);
    s->ctx_ = mg_start2(&init, &err);
    if (s->ctx_ == nullptr)
        return Error{0, "HTTP server on " + options.listen + ": " +
                            (errtext[0] ? std::string(errtext) : "failed to start")};
    // One catch-all handler: dispatch() matches exact paths and answers 404 otherwise.
    mg_set_request_handler(s->ctx_, "/", &HttpServer::dispatch, s.get());
    mg_server_port ports[4] = {};
    int n = mg_get_server_ports(s->ctx_, 4, ports);
    if (n > 0)
        s->port_ = ports[0].port;
    return s;
}

HttpServer::~HttpServer() {
    if (ctx_ != nullptr)
        mg_stop(ctx_);
}

} // namespace hostprof
