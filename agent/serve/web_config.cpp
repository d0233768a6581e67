#include "agent/serve/web_config.h"

#include <crypt.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

namespace hostprof {
namespace {

Status check_keys(const YAML::Node& node, const std::set<std::string>& allowed,
                  const std::string& where) {
    std::set<std::string> seen;
    for (const auto& kv : node) {
        std::string key = kv.first.as<std::string>();
        if (!allowed.contains(key))
            return Error{0, where + ": unknown key '" + key + "'"};
        if (!seen.insert(key).second)
            return Error{0, where + ": duplicate key '" + key + "'"};
    }
    return {};
}

bool readable(const std::string& path) {
    return std::ifstream(path).good();
}

} // namespace

Result<WebConfig> parse_web_config(const std::string& text, const std::string& origin) {
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        return Error{0, origin + ": not valid YAML: " + e.what()};
    }
    WebConfig wc;
    if (root.IsNull())
        return wc;
    if (!root.IsMap())
        return Error{0, origin + ": must be a mapping"};
    try {
        if (Status st = check_keys(root, {"tls_server_config", "basic_auth_users"}, origin); !st)
            return st.error();
        if (const YAML::Node tls = root["tls_server_config"]; tls) {
            std::string where = origin + ": tls_server_config";
            if (!tls.IsMap())
                return Error{0, where + ": must be a mapping"};
            if (Status st = check_keys(
                    tls, {"cert_file", "key_file", "client_ca_file", "client_auth_type"}, where);
                !st)
                return st.error();
            wc.cert_file = tls["cert_file"] ? tls["cert_file"].as<std::string>() : "";
            wc.key_file = tls["key_file"] ? tls["key_file"].as<std::string>() : "";
            wc.client_ca_file =
                tls["client_ca_file"] ? tls["client_ca_file"].as<std::string>() : "";
            std::string auth_type = tls["client_auth_type"]
                                        ? tls["client_auth_type"].as<std::string>()
                                        : "NoClientCert";
            if (auth_type == "RequireAndVerifyClientCert")
                wc.require_client_cert = true;
            else if (auth_type != "NoClientCert")
                return Error{0, where + ": client_auth_type '" + auth_type +
                                    "' must be NoClientCert or RequireAndVerifyClientCert"};
            if (wc.cert_file.empty() != wc.key_file.empty())
                return Error{0, where + ": cert_file and key_file must be given together"};
            if (wc.cert_file.empty())
                return Error{0, where + ": cert_file and key_file are required"};
            if (wc.require_client_cert && wc.client_ca_file.empty())
                return Error{0, where + ": RequireAndVerifyClientCert needs client_ca_file"};
            for (const std::string* f : {&wc.cert_file, &wc.key_file, &wc.client_ca_file})
                if (!f->empty() && !readable(*f))
                    return Error{0, where + ": cannot read " + *f};
        }
        if (const YAML::Node users = root["basic_auth_users"]; users) {
            std::string where = origin + ": basic_auth_users";
            if (!users.IsMap())
                return Error{0, where + ": must be a mapping of user: bcrypt-hash"};
            for (const auto& kv : users) {
                std::string user = kv.first.as<std::string>();
                std::string hash = kv.second.IsScalar() ? kv.second.as<std::string>() : "";
                if (user.empty() || user.find(':') != std::string::npos)
                    return Error{0, where + ": bad user name '" + user + "'"};
                if (hash.rfind("$2a$", 0) != 0 && hash.rfind("$2b$", 0) != 0 &&
                    hash.rfind("$2y$", 0) != 0)
                    return Error{0, where + ": " + user +
                                        ": password must be a bcrypt hash ($2a$, $2b$ or $2y$)"};
                if (!wc.users.emplace(user, hash).second)
                    return Error{0, where + ": duplicate user '" + user + "'"};
            }
        }
    } catch (const YAML::Exception& e) {
        return Error{0, origin + ": " + e.what()};
    }
    return wc;
}

Result<WebConfig> load_web_config(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        return errno_error("web config " + path);
    std::stringstream buf;
    buf << in.rdbuf();
    return parse_web_config(buf.str(), path);
}

std::string decode_basic_credentials(const std::string& header) {
    static const std::string kPrefix = "Basic ";
    if (header.rfind(kPrefix, 0) != 0 || header.size() > 4096)
        return {};
    std::string in = header.substr(kPrefix.size());
    std::string out;
    int val = 0, bits = -8;
    for (char c : in) {
        int d;
        if (c >= 'A' && c <= 'Z')
            d = c - 'A';
        else if (c >= 'a' && c <= 'z')
            d = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            d = c - '0' + 52;
        else if (c == '+')
            d = 62;
        else if (c == '/')
            d = 63;
        else if (c == '=')
            break;
        else
            return {};
        val = (val << 6) | d;
        bits += 6;
        if (bits >= 0) {
            out += static_cast<char>((val >> bits) & 0xff);
            bits -= 8;
        }
    }
    return out.find(':') == std::string::npos ? std::string() : out;
}

bool BasicAuth::check(const std::string& header) {
    if (users_.empty())
        return true;
    {
        std::lock_guard lock(mu_);
        if (auto it = cache_.find(header); it != cache_.end())
            return it->second;
    }
    bool ok = false;
    std::string creds = decode_basic_credentials(header);
    if (!creds.empty()) {
        std::string user = creds.substr(0, creds.find(':'));
        std::string pass = creds.substr(creds.find(':') + 1);
        auto it = users_.find(user);
        if (it != users_.end()) {
            crypt_data data{};
            const char* h = crypt_r(pass.c_str(), it->second.c_str(), &data);
            ok = h != nullptr && it->second == h;
        }
    }
    std::lock_guard lock(mu_);
    if (cache_.size() >= 256)
        cache_.clear();
    cache_[header] = ok;
    return ok;
}

} // namespace hostprof
