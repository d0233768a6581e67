#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/serve/http_server.h"

using namespace hostprof;

namespace {

TEST(Query, ParamsAndDecoding) {
    EXPECT_EQ(query_param("seconds=5&pid=42", "pid"), "42");
    EXPECT_EQ(query_param("seconds=5&pid=42", "seconds"), "5");
    EXPECT_FALSE(query_param("seconds=5", "pid"));
    EXPECT_EQ(query_param("service=a%20b+c", "service"), "a b c");
    EXPECT_EQ(query_param("flag", "flag"), "");
    EXPECT_FALSE(query_param("x=%zz", "x")); // bad escape: no value, not garbage
    EXPECT_FALSE(query_param("x=%4", "x"));
    EXPECT_FALSE(query_param("", "x"));
    EXPECT_EQ(url_decode("%2F%2f"), "//");
}

// A raw HTTP/1.1 GET over a socket: no client library between us and the server.
std::string get(int port, const std::string& target, const std::string& method = "GET") {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
        ::close(fd);
        return "";
    }
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    (void)::write(fd, req.data(), req.size());
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0)
        out.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return out;
}

TEST(HttpServer, RoutesExactPathsAndAnswersErrors) {
    HttpOptions o;
    o.listen = "127.0.0.1:0";
    o.threads = 2;
    std::map<std::string, HttpServer::Handler> routes;
    routes["/hello"] = [](const HttpRequest& r) {
        HttpResponse resp;
        resp.body = "hi " + query_param(r.query, "name").value_or("?") + " " + r.header("host");
        return resp;
    };
    auto s = HttpServer::start(o, routes);
    ASSERT_TRUE(s) << s.error().message();
    ASSERT_GT((*s)->port(), 0);
    std::string ok = get((*s)->port(), "/hello?name=bob");
    EXPECT_NE(ok.find("HTTP/1.1 200"), std::string::npos) << ok;
    EXPECT_NE(ok.find("hi bob x"), std::string::npos) << ok;
    EXPECT_NE(get((*s)->port(), "/nope").find("HTTP/1.1 404"), std::string::npos);
    EXPECT_NE(get((*s)->port(), "/hello/more").find("HTTP/1.1 404"), std::string::npos);
    EXPECT_NE(get((*s)->port(), "/hello", "POST").find("HTTP/1.1 405"), std::string::npos);
}

TEST(HttpServer, PortInUseIsAClearError) {
    HttpOptions o;
    o.listen = "127.0.0.1:0";
    auto first = HttpServer::start(o, {});
    ASSERT_TRUE(first);
    o.listen = "127.0.0.1:" + std::to_string((*first)->port());
    auto second = HttpServer::start(o, {});
    ASSERT_FALSE(second);
    EXPECT_NE(second.error().message().find(o.listen), std::string::npos);
}

} // namespace
