// An in-test Pyroscope receiver: a civetweb server on a loopback port that accepts
// POST /push.v1.PusherService/Push, keeps every request, and decodes the Connect/protobuf
// bodies with the generated classes (exporters/push.proto, exporters/profile.proto). It
// keeps any other POST too (the OTLP push tests read those requests themselves).
// Shared by the unit tests (tests/unit/pyroscope_push_test.cpp) and the privileged
// end-to-end test (tests/bpf/pyroscope_bpf_test.cpp).
#pragma once

#include <civetweb.h>

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "exporters/gzip.h"
#include "exporters/profile.pb.h"
#include "exporters/push.pb.h"

namespace hostprof::testing {

struct ReceivedPush {
    std::string method, path, content_type, content_encoding, connect_version, tenant;
    std::string authorization;
    std::string body;
};

// One decoded series: labels by name, and its first profile decoded.
struct DecodedSeries {
    std::map<std::string, std::string> labels;
    std::string id;
    bool gzipped = false;
    pprof::Profile profile;
};

class PyroscopeReceiver {
  public:
    // status: what every push is answered with (e.g. 200, 503).
    explicit PyroscopeReceiver(int status = 200) : status_(status) {
        mg_init_library(0);
        const char* opts[] = {"listening_ports", "127.0.0.1:0", "num_threads", "2", nullptr};
        mg_callbacks cb{};
        ctx_ = mg_start(&cb, this, opts);
        if (ctx_ == nullptr)
            return;
        mg_set_request_handler(ctx_, "/", &PyroscopeReceiver::handle, this);
        mg_server_port ports[2] = {};
        if (mg_get_server_ports(ctx_, 2, ports) > 0)
            port_ = ports[0].port;
    }
    ~PyroscopeReceiver() {
        if (ctx_ != nullptr)
            mg_stop(ctx_);
    }
    PyroscopeReceiver(const PyroscopeReceiver&) = delete;
    PyroscopeReceiver& operator=(const PyroscopeReceiver&) = delete;

    int port() const { return port_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    void set_status(int status) { status_.store(status); }

    std::vector<ReceivedPush> requests() const {
        std::lock_guard lock(mu_);
        return requests_;
    }
    size_t count() const {
        std::lock_guard lock(mu_);
        return requests_.size();
    }

    // Every series of every request, decoded; nullopt if any body does not decode.
    std::optional<std::vector<DecodedSeries>> decoded() const {
        std::vector<DecodedSeries> out;
        for (const ReceivedPush& r : requests()) {
            pyroscope::PushRequest req;
            if (!req.ParseFromString(r.body))
                return std::nullopt;
            for (const auto& s : req.series()) {
                DecodedSeries d;
                for (const auto& l : s.labels())
                    d.labels[l.name()] = l.value();
                if (s.samples_size() != 1)
                    return std::nullopt;
                const std::string& raw = s.samples(0).raw_profile();
                d.id = s.samples(0).id();
                d.gzipped = raw.size() > 2 && static_cast<unsigned char>(raw[0]) == 0x1f &&
                            static_cast<unsigned char>(raw[1]) == 0x8b;
                auto bytes = d.gzipped ? gzip_decompress(raw) : std::optional<std::string>(raw);
                if (!bytes || !d.profile.ParseFromString(*bytes))
                    return std::nullopt;
                out.push_back(std::move(d));
            }
        }
        return out;
    }

  private:
    static int handle(mg_connection* conn, void* self_ptr) {
        auto* self = static_cast<PyroscopeReceiver*>(self_ptr);
        const mg_request_info* info = mg_get_request_info(conn);
        ReceivedPush r;
        r.method = info->request_method ? info->request_method : "";
        r.path = info->local_uri ? info->local_uri : "";
        auto header = [&](const char* name) {
            const char* v = mg_get_header(conn, name);
            return std::string(v ? v : "");
        };
        r.content_type = header("Content-Type");
        r.content_encoding = header("Content-Encoding");
        r.authorization = header("Authorization");
        r.connect_version = header("Connect-Protocol-Version");
        r.tenant = header("X-Scope-OrgID");
        char buf[65536];
        int n;
        while ((n = mg_read(conn, buf, sizeof buf)) > 0)
            r.body.append(buf, static_cast<size_t>(n));
        const int status = self->status_.load();
        {
            std::lock_guard lock(self->mu_);
            self->requests_.push_back(std::move(r));
        }
        // A Connect unary success is an empty PushResponse; errors carry a JSON body.
        const std::string body = status == 200 ? "" : "{\"code\":\"unavailable\"}";
        const std::string type = status == 200 ? "application/proto" : "application/json";
        const std::string response = "HTTP/1.1 " + std::to_string(status) +
                                     " X\r\nContent-Type: " + type +
                                     "\r\nContent-Length: " + std::to_string(body.size()) +
                                     "\r\nConnection: close\r\n\r\n" + body;
        mg_write(conn, response.data(), response.size());
        return status;
    }

    mg_context* ctx_ = nullptr;
    int port_ = 0;
    std::atomic<int> status_;
    mutable std::mutex mu_;
    std::vector<ReceivedPush> requests_;
};

} // namespace hostprof::testing
