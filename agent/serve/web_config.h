// The web configuration file (`--web-config FILE`), in the spirit of the Prometheus
// exporters' one: TLS for the HTTP endpoints (optionally requiring client certificates)
// and basic-auth users with bcrypt password hashes.
//
//   tls_server_config:
//     cert_file: /etc/hostprof/tls.crt
//     key_file: /etc/hostprof/tls.key
//     client_ca_file: /etc/hostprof/ca.crt          # optional
//     client_auth_type: RequireAndVerifyClientCert  # or NoClientCert (default)
//   basic_auth_users:
//     prometheus: $2y$10$...                          # bcrypt, e.g. htpasswd -nbBC 10
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "common/result.h"

namespace hostprof {

struct WebConfig {
    std::string cert_file;
    std::string key_file;
    std::string client_ca_file;
    bool require_client_cert = false;
    std::map<std::string, std::string> users; // name -> bcrypt hash

    bool tls() const { return !cert_file.empty(); }
    bool auth() const { return !users.empty(); }
};

Result<WebConfig> parse_web_config(const std::string& yaml_text, const std::string& origin);
Result<WebConfig> load_web_config(const std::string& path);

// Checks an `Authorization: Basic ...` header against the users (bcrypt through libcrypt).
// Successful checks are cached (bounded), since bcrypt is deliberately slow.
class BasicAuth {
  public:
    explicit BasicAuth(std::map<std::string, std::string> users) : users_(std::move(users)) {}
    bool enabled() const { return !users_.empty(); }
    bool check(const std::string& authorization_header);

  private:
    std::map<std::string, std::string> users_;
    std::mutex mu_;
    std::map<std::string, bool> cache_; // header -> verdict, at most 256 entries
};

// "user:pass" from a Basic authorization header; empty on malformed input.
std::string decode_basic_credentials(const std::string& header);

} // namespace hostprof
