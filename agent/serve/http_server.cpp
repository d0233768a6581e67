#include "agent/serve/http_server.h"

#include <civetweb.h>
#include <sys/mman.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

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

namespace {

std::once_flag g_civetweb_init;

const char* reason(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
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
    if (req.path != "/healthz" && self->auth_ && !self->auth_->check(req.header("authorization"))) {
        resp = HttpResponse::text(401, "authentication required");
        resp.headers.emplace_back("WWW-Authenticate", "Basic realm=\"hostprof\"");
    } else if (route == self->routes_.end()) {
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
    std::string ports = options.listen;
    std::vector<const char*> opts = {
        "listening_ports",    nullptr,         "num_threads",       threads.c_str(),
        "request_timeout_ms", timeout.c_str(), "enable_keep_alive", "no"};
    std::string pem_path;
    if (options.web.auth())
        s->auth_ = std::make_unique<BasicAuth>(options.web.users);
    if (options.web.tls()) {
        // civetweb wants certificate and key in one PEM file: hand it a memfd, so the key
        // is never written to disk.
        std::string pem;
        for (const std::string* f : {&options.web.cert_file, &options.web.key_file}) {
            std::ifstream in(*f);
            if (!in)
                return Error{0, "TLS: cannot read " + *f};
            std::stringstream b;
            b << in.rdbuf();
            pem += b.str() + "\n";
        }
        s->tls_pem_.reset(::memfd_create("hostprof-tls", MFD_CLOEXEC));
        if (!s->tls_pem_ ||
            ::write(s->tls_pem_.get(), pem.data(), pem.size()) != static_cast<ssize_t>(pem.size()))
            return errno_error("TLS: memfd for the certificate");
        pem_path = "/proc/self/fd/" + std::to_string(s->tls_pem_.get());
        ports += "s";
        opts.insert(opts.end(), {"ssl_certificate", pem_path.c_str()});
        if (!options.web.client_ca_file.empty())
            opts.insert(opts.end(),
                        {"ssl_ca_file", options.web.client_ca_file.c_str(), "ssl_verify_peer",
                         options.web.require_client_cert ? "yes" : "optional"});
    }
    opts[1] = ports.c_str();
    opts.push_back(nullptr);
    mg_callbacks callbacks{};
    mg_init_data init{};
    init.callbacks = &callbacks;
    init.user_data = s.get();
    init.configuration_options = opts.data();
    mg_error_data err{};
    char errtext[256] = {};
    err.text = errtext;
    err.text_buffer_size = sizeof(errtext);
    s->ctx_ = mg_start2(&init, &err);
    if (s->ctx_ == nullptr) {
        std::string why = errtext[0] ? std::string(errtext) : "failed to start";
        if (options.web.tls() && why.find("SSL") != std::string::npos)
            why += " (the system civetweb could not load a usable OpenSSL: Debian 12's "
                   "civetweb 1.15 needs SSL_get_peer_certificate, which OpenSSL 3 dropped; "
                   "terminate TLS in front of the agent, see docs/security.md)";
        return Error{0, "HTTP server on " + options.listen + ": " + why};
    }
    // One catch-all handler: dispatch() matches exact paths and answers 404 otherwise.
    mg_set_request_handler(s->ctx_, "/", &HttpServer::dispatch, s.get());
    mg_server_port bound[4] = {};
    int n = mg_get_server_ports(s->ctx_, 4, bound);
    if (n > 0)
        s->port_ = bound[0].port;
    return s;
}

bool is_loopback_listen(const std::string& listen) {
    std::string host = listen.substr(0, listen.rfind(':'));
    if (!host.empty() && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

HttpServer::~HttpServer() {
    if (ctx_ != nullptr)
        mg_stop(ctx_);
}

} // namespace hostprof
