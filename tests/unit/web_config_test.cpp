// Endpoint security: web config validation, basic auth with bcrypt, and TLS served and
// verified by the real curl against a certificate made by the real openssl.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "agent/serve/http_server.h"
#include "agent/serve/web_config.h"

using namespace hostprof;

namespace {

// A published bcrypt test vector (password "U*U", cost 5).
const char* kVectorHash = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

std::string run(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p)
        return out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0)
        out.append(buf, n);
    ::pclose(p);
    return out;
}

struct TempDir {
    std::string path;
    TempDir() {
        char t[] = "/tmp/hostprof-web-XXXXXX";
        path = ::mkdtemp(t);
    }
    ~TempDir() { run("rm -rf " + path); }
};

TEST(WebConfig, ValidatesWithClearMessages) {
    EXPECT_TRUE(parse_web_config("", "w.yml"));
    auto e1 = parse_web_config("tls_server_config: {cert_file: /etc/hostname}\n", "w.yml");
    ASSERT_FALSE(e1);
    EXPECT_NE(e1.error().message().find("cert_file and key_file must be given together"),
              std::string::npos);
    auto e2 = parse_web_config("basic_auth_users: {bob: plaintext}\n", "w.yml");
    ASSERT_FALSE(e2);
    EXPECT_NE(e2.error().message().find("bcrypt"), std::string::npos);
    auto e3 = parse_web_config("tls: {}\n", "w.yml");
    ASSERT_FALSE(e3);
    EXPECT_NE(e3.error().message().find("unknown key 'tls'"), std::string::npos);
    auto e4 = parse_web_config("tls_server_config: {cert_file: /nope.crt, key_file: /nope.key}\n",
                               "w.yml");
    ASSERT_FALSE(e4);
    EXPECT_NE(e4.error().message().find("cannot read /nope.crt"), std::string::npos);
    auto ok = parse_web_config(std::string("basic_auth_users: {alice: '") + kVectorHash + "'}\n",
                               "w.yml");
    ASSERT_TRUE(ok) << ok.error().message();
    EXPECT_TRUE(ok->auth());
}

TEST(BasicAuth, ChecksBcryptHashes) {
    BasicAuth auth(std::map<std::string, std::string>{{"alice", kVectorHash}});
    // "alice:U*U" and "alice:wrong" in base64.
    EXPECT_TRUE(auth.check("Basic YWxpY2U6VSpV"));
    EXPECT_FALSE(auth.check("Basic YWxpY2U6d3Jvbmc="));
    EXPECT_FALSE(auth.check("Bearer x"));
    EXPECT_FALSE(auth.check(""));
    EXPECT_FALSE(auth.check("Basic !!!"));
    EXPECT_EQ(decode_basic_credentials("Basic YWxpY2U6VSpV"), "alice:U*U");
}

TEST(HttpServer, LoopbackDetection) {
    EXPECT_TRUE(is_loopback_listen("127.0.0.1:7464"));
    EXPECT_TRUE(is_loopback_listen("localhost:1"));
    EXPECT_TRUE(is_loopback_listen("[::1]:7464"));
    EXPECT_FALSE(is_loopback_listen("0.0.0.0:7464"));
    EXPECT_FALSE(is_loopback_listen("10.1.2.3:7464"));
}

TEST(HttpServer, BasicAuthWithRealCurl) {
    auto wc = parse_web_config(std::string("basic_auth_users: {alice: '") + kVectorHash + "'}\n",
                               "web.yml");
    ASSERT_TRUE(wc) << wc.error().message();
    HttpOptions o;
    o.listen = "127.0.0.1:0";
    o.web = wc.value();
    std::map<std::string, HttpServer::Handler> routes;
    routes["/metrics"] = [](const HttpRequest&) { return HttpResponse::text(200, "secret"); };
    routes["/healthz"] = [](const HttpRequest&) { return HttpResponse::text(200, "ok"); };
    auto s = HttpServer::start(o, routes);
    ASSERT_TRUE(s) << s.error().message();
    std::string base = "http://127.0.0.1:" + std::to_string((*s)->port());
    std::string curl = "curl -s --max-time 10 ";
    EXPECT_EQ(run(curl + "-u 'alice:U*U' " + base + "/metrics"), "secret\n");
    EXPECT_EQ(run(curl + "-o /dev/null -w '%{http_code}' " + base + "/metrics"), "401");
    EXPECT_EQ(run(curl + "-o /dev/null -w '%{http_code}' -u alice:nope " + base + "/metrics"),
              "401");
    EXPECT_NE(run(curl + "-D - -o /dev/null " + base + "/metrics").find("WWW-Authenticate"),
              std::string::npos);
    // Liveness stays open for probes.
    EXPECT_EQ(run(curl + base + "/healthz"), "ok\n");
}

// Debian 12's civetweb 1.15 resolves OpenSSL symbols at run time and asks for
// SSL_get_peer_certificate, which OpenSSL 3 no longer exports: TLS cannot start with the
// system libraries. The agent must say so clearly instead of failing obscurely.
TEST(HttpServer, TlsFailureIsExplained) {
    TempDir d;
    std::string crt = d.path + "/tls.crt", key = d.path + "/tls.key";
    run("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -keyout " + key +
        " -out " + crt + " 2>/dev/null");
    ASSERT_TRUE(std::ifstream(crt).good()) << "openssl did not make a certificate";
    auto wc = parse_web_config(
        "tls_server_config: {cert_file: " + crt + ", key_file: " + key + "}\n", "web.yml");
    ASSERT_TRUE(wc) << wc.error().message();
    HttpOptions o;
    o.listen = "127.0.0.1:0";
    o.web = wc.value();
    auto s = HttpServer::start(o, {});
    if (s) {
        // A civetweb that works with this OpenSSL: then TLS must really be served.
        std::string out = run("curl -s --max-time 10 -k -o /dev/null -w '%{http_code}' "
                              "https://127.0.0.1:" +
                              std::to_string((*s)->port()) + "/x");
        EXPECT_EQ(out, "404");
    } else {
        EXPECT_NE(s.error().message().find("OpenSSL"), std::string::npos) << s.error().message();
    }
}

} // namespace
