// Privileged: TCP connect latency, RTT, resets, retransmits, connection lifetime and bytes
// on real loopback connections (host-wide counters: they move by at least what the test
// did).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "agent/collect/tcp_collector.h"
#include "agent/serve/latency_metrics.h"
#include "bpf_test_util.h"
#include "common/unique_fd.h"

using namespace hostprof;

namespace {

constexpr int kConnects = 50;
constexpr int kRefused = 20;

sockaddr_in loopback(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

// A listening socket on 127.0.0.1 with a kernel-chosen port.
UniqueFd listen_loopback(uint16_t& port) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a = loopback(0);
    if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        ::listen(fd.get(), 128) != 0)
        return UniqueFd();
    socklen_t len = sizeof(a);
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    return fd;
}

int connect_to(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = loopback(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
        int err = errno;
        ::close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

class TcpModes : public ::testing::TestWithParam<compat::AttachMode> {};

TEST_P(TcpModes, ConnectsRttAndResetsOnLoopback) {
    HOSTPROF_REQUIRE_ROOT();
    TcpOptions o;
    o.mode = GetParam();
    auto started = TcpCollector::start(o);
    ASSERT_TRUE(started) << started.error().message();
    TcpCollector& c = *started.value();
    EXPECT_EQ(c.attached().size(), 5u);
    TcpSnapshot before = c.snapshot();

    uint16_t port = 0;
    UniqueFd listener = listen_loopback(port);
    ASSERT_TRUE(listener);
    for (int i = 0; i < kConnects; ++i) {
        int fd = connect_to(port);
        ASSERT_GE(fd, 0) << std::strerror(errno);
        int peer = ::accept(listener.get(), nullptr, nullptr);
        ASSERT_GE(peer, 0);
        // Some request/response traffic so tcp_probe sees ACKs in ESTABLISHED.
        char buf[512] = {};
        for (int r = 0; r < 4; ++r) {
            ASSERT_EQ(::write(fd, buf, sizeof(buf)), static_cast<ssize_t>(sizeof(buf)));
            ASSERT_EQ(::read(peer, buf, sizeof(buf)), static_cast<ssize_t>(sizeof(buf)));
            ASSERT_EQ(::write(peer, buf, sizeof(buf)), static_cast<ssize_t>(sizeof(buf)));
            ASSERT_EQ(::read(fd, buf, sizeof(buf)), static_cast<ssize_t>(sizeof(buf)));
        }
        ::close(fd);
        ::close(peer);
    }
    // A port nobody listens on: the SYN is answered with a reset.
    uint16_t closed_port = 0;
    { UniqueFd tmp = listen_loopback(closed_port); }
    int refused = 0;
    for (int i = 0; i < kRefused; ++i)
        refused += connect_to(closed_port) < 0 && errno == ECONNREFUSED;
    ASSERT_EQ(refused, kRefused);

    TcpSnapshot after = c.snapshot();
    const TcpFamilyStats* a = after.find("ipv4");
    const TcpFamilyStats* b = before.find("ipv4");
    ASSERT_TRUE(a && b);
    uint64_t connects = a->connect.count() - b->connect.count();
    uint64_t srtts = a->srtt.count() - b->srtt.count();
    std::printf("ipv4: connects +%llu (mean %.1f us), srtt samples +%llu (mean %.1f us), "
                "resets sent +%llu received +%llu, failed connects +%llu\n",
                static_cast<unsigned long long>(connects),
                connects ? static_cast<double>(a->connect.sum - b->connect.sum) / 1e3 /
                               static_cast<double>(connects)
                         : 0.0,
                static_cast<unsigned long long>(srtts),
                srtts ? static_cast<double>(a->srtt.sum - b->srtt.sum) / 1e3 /
                            static_cast<double>(srtts)
                      : 0.0,
                static_cast<unsigned long long>(a->resets_sent - b->resets_sent),
                static_cast<unsigned long long>(a->resets_received - b->resets_received),
                static_cast<unsigned long long>(a->connect_failed - b->connect_failed));
    EXPECT_GE(connects, static_cast<uint64_t>(kConnects));
    EXPECT_GE(srtts, static_cast<uint64_t>(kConnects));
    EXPECT_GE(a->resets_sent - b->resets_sent, static_cast<uint64_t>(kRefused));
    EXPECT_GE(a->resets_received - b->resets_received, static_cast<uint64_t>(kRefused));
    EXPECT_GE(a->connect_failed - b->connect_failed, static_cast<uint64_t>(kRefused));
    EXPECT_EQ(after.kernel_stats[HP_TCP_STAT_START_FAILED], 0u);
    auto fams = tcp_metric_families(after);
    ASSERT_EQ(fams.size(), 9u);
    EXPECT_EQ(fams[0].name, "hostprof_tcp_connect_latency_seconds");
    EXPECT_EQ(fams[8].name, "hostprof_tcp_lost_total");
    ASSERT_EQ(fams[8].metric.size(), 2u);
    EXPECT_EQ(fams[8].metric[0].counter.value, 0); // start_map_full
    EXPECT_EQ(fams[8].metric[1].counter.value, 0); // missed_start
}

// Reads exactly n bytes; false on EOF or error.
bool read_exactly(int fd, size_t n) {
    std::vector<char> buf(65536);
    while (n > 0) {
        ssize_t got = ::read(fd, buf.data(), std::min(n, buf.size()));
        if (got <= 0)
            return false;
        n -= static_cast<size_t>(got);
    }
    return true;
}

uint64_t slot_delta(const LatencyHistogram& after, const LatencyHistogram& before, size_t i) {
    return after.slots.at(i) - before.slots.at(i);
}

uint64_t count_from(const LatencyHistogram& h, size_t first) {
    uint64_t n = 0;
    for (size_t i = first; i < h.slots.size(); ++i)
        n += h.slots[i];
    return n;
}

// kLifetimes connections over IPv6 loopback, each held open >= 20 ms, the client sending
// 4095 payload bytes and the server 16383, then closed gracefully from the client side.
// Both ends close once each: 2 observations per connection, in the ipv6 histograms. The
// sizes sit at the top of their log2 slots (11: [2048, 4096), 13: [8192, 16384)), so a
// SYN or FIN counted as a byte would push them into the next slot.
TEST_P(TcpModes, LifetimeAndPayloadBytesAtClose) {
    HOSTPROF_REQUIRE_ROOT();
    constexpr int kLifetimes = 20;
    constexpr size_t kClientBytes = 4095, kServerBytes = 16383;
    constexpr size_t kHeld = 20'000'000; // ns
    TcpOptions o;
    o.mode = GetParam();
    auto started = TcpCollector::start(o);
    ASSERT_TRUE(started) << started.error().message();
    TcpCollector& c = *started.value();

    UniqueFd listener(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    ASSERT_TRUE(listener);
    ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    ASSERT_EQ(::listen(listener.get(), 64), 0);
    socklen_t len = sizeof(a);
    ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);

    TcpSnapshot before = c.snapshot();
    std::vector<char> payload(kServerBytes, 'p');
    for (int i = 0; i < kLifetimes; ++i) {
        UniqueFd client(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
        ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0)
            << std::strerror(errno);
        UniqueFd server(::accept(listener.get(), nullptr, nullptr));
        ASSERT_TRUE(server);
        ASSERT_EQ(::write(client.get(), payload.data(), kClientBytes),
                  static_cast<ssize_t>(kClientBytes));
        ASSERT_TRUE(read_exactly(server.get(), kClientBytes));
        ASSERT_EQ(::write(server.get(), payload.data(), kServerBytes),
                  static_cast<ssize_t>(kServerBytes));
        ASSERT_TRUE(read_exactly(client.get(), kServerBytes));
        std::this_thread::sleep_for(std::chrono::nanoseconds(kHeld));
        client.reset(); // FIN_WAIT1
        char b;
        ASSERT_EQ(::read(server.get(), &b, 1), 0); // the client's FIN: CLOSE_WAIT
        server.reset();                            // LAST_ACK, CLOSE at the final ACK
    }
    // The last ACKs are processed in softirq context: wait for the closes to land.
    TcpSnapshot after;
    for (int tries = 0; tries < 100; ++tries) {
        after = c.snapshot();
        if (after.find("ipv6")->duration.count() - before.find("ipv6")->duration.count() >=
            2u * kLifetimes)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const TcpFamilyStats* x = after.find("ipv6");
    const TcpFamilyStats* y = before.find("ipv6");
    ASSERT_TRUE(x && y);
    const uint64_t closes = x->duration.count() - y->duration.count();
    std::printf(
        "ipv6: closes +%llu, sent +%llu bytes, received +%llu bytes; sent slot 11 "
        "+%llu, slot 13 +%llu; received slot 11 +%llu, slot 13 +%llu\n",
        static_cast<unsigned long long>(closes),
        static_cast<unsigned long long>(x->sent_bytes.sum - y->sent_bytes.sum),
        static_cast<unsigned long long>(x->received_bytes.sum - y->received_bytes.sum),
        static_cast<unsigned long long>(slot_delta(x->sent_bytes, y->sent_bytes, 11)),
        static_cast<unsigned long long>(slot_delta(x->sent_bytes, y->sent_bytes, 13)),
        static_cast<unsigned long long>(slot_delta(x->received_bytes, y->received_bytes, 11)),
        static_cast<unsigned long long>(slot_delta(x->received_bytes, y->received_bytes, 13)));
    EXPECT_GE(closes, 2u * kLifetimes);
    EXPECT_EQ(x->sent_bytes.count() - y->sent_bytes.count(), closes);
    EXPECT_EQ(x->received_bytes.count() - y->received_bytes.count(), closes);
    // Each side's sent bytes are the other side's received bytes.
    EXPECT_GE(slot_delta(x->sent_bytes, y->sent_bytes, 11), static_cast<uint64_t>(kLifetimes));
    EXPECT_GE(slot_delta(x->sent_bytes, y->sent_bytes, 13), static_cast<uint64_t>(kLifetimes));
    EXPECT_GE(slot_delta(x->received_bytes, y->received_bytes, 11),
              static_cast<uint64_t>(kLifetimes));
    EXPECT_GE(slot_delta(x->received_bytes, y->received_bytes, 13),
              static_cast<uint64_t>(kLifetimes));
    const uint64_t payload_sum = kLifetimes * (kClientBytes + kServerBytes);
    EXPECT_GE(x->sent_bytes.sum - y->sent_bytes.sum, payload_sum);
    EXPECT_GE(x->received_bytes.sum - y->received_bytes.sum, payload_sum);
    // Every connection was held >= 20 ms: both of its closes are in slots from
    // floor(log2(20 ms)) = 24 up.
    EXPECT_GE(count_from(x->duration, 24) - count_from(y->duration, 24), 2u * kLifetimes);
    EXPECT_GE(x->duration.sum - y->duration.sum, 2u * kLifetimes * kHeld);
    EXPECT_EQ(after.kernel_stats[HP_TCP_STAT_START_FAILED], 0u);
}

// nftables drops ~1 in 20 data segments arriving for the test port (numgen random, in
// the input hook: a drop at output is a local send error, not a loss); every dropped
// segment must be retransmitted, so the retransmit counter rises by at least
// the rule's own packet counter (nft's, not ours).
TEST_P(TcpModes, RetransmitsCoverWhatNftablesDropped) {
    HOSTPROF_REQUIRE_ROOT();
    TcpOptions o;
    o.mode = GetParam();
    auto started = TcpCollector::start(o);
    ASSERT_TRUE(started) << started.error().message();
    TcpCollector& c = *started.value();

    uint16_t port = 0;
    UniqueFd listener = listen_loopback(port);
    ASSERT_TRUE(listener);
    const std::string table = "hp_tcp_test_" + std::to_string(::getpid());
    struct Cleanup {
        std::string table;
        ~Cleanup() { std::system(("nft delete table inet " + table + " 2>/dev/null").c_str()); }
    } cleanup{table};
    std::string setup = "nft add table inet " + table + " && nft add chain inet " + table +
                        " in '{ type filter hook input priority 0; }' && nft add rule inet " +
                        table + " in tcp dport " + std::to_string(port) +
                        " meta length gt 200 numgen random mod 20 == 0 counter drop";
    ASSERT_EQ(std::system(setup.c_str()), 0) << setup;

    TcpSnapshot before = c.snapshot();
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int mss = 1000;
    ASSERT_EQ(::setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss)), 0);
    sockaddr_in a = loopback(port);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    int peer = ::accept(listener.get(), nullptr, nullptr);
    ASSERT_GE(peer, 0);
    constexpr size_t kBytes = 400 * 1000;
    std::thread reader([peer] {
        std::vector<char> buf(65536);
        size_t got = 0;
        while (got < kBytes) {
            ssize_t n = ::read(peer, buf.data(), buf.size());
            if (n <= 0)
                break;
            got += static_cast<size_t>(n);
        }
    });
    std::vector<char> chunk(1000, 'x');
    for (size_t sent = 0; sent < kBytes; sent += chunk.size())
        ASSERT_EQ(::write(fd, chunk.data(), chunk.size()), static_cast<ssize_t>(chunk.size()));
    reader.join();
    ::close(fd);
    ::close(peer);
    TcpSnapshot after = c.snapshot();

    std::string listing = bpftest::run_command("nft list table inet " + table);
    unsigned long long dropped = 0;
    auto pos = listing.find("counter packets ");
    ASSERT_NE(pos, std::string::npos) << listing;
    std::sscanf(listing.c_str() + pos, "counter packets %llu", &dropped);
    uint64_t retx = after.find("ipv4")->retransmits - before.find("ipv4")->retransmits;
    std::printf("nft dropped %llu segments; retransmits +%llu\n", dropped,
                static_cast<unsigned long long>(retx));
    EXPECT_GT(dropped, 0u);
    EXPECT_GE(retx, dropped);
}

// Two listeners: one on a configured port, one not. Connections to the first count under
// port="<port>" (as the client's remote port and as the server's local port: both ends
// are on this host), the others under "other"; an unused configured port stays empty.
TEST_P(TcpModes, ConfiguredPortsGetSeriesOfTheirOwn) {
    HOSTPROF_REQUIRE_ROOT();
    uint16_t port = 0, other_port = 0;
    UniqueFd listener = listen_loopback(port);
    UniqueFd other = listen_loopback(other_port);
    ASSERT_TRUE(listener && other);

    TcpOptions o;
    o.mode = GetParam();
    o.ports = {port, 1}; // 1: listed, never used
    auto started = TcpCollector::start(o);
    ASSERT_TRUE(started) << started.error().message();
    TcpCollector& c = *started.value();
    TcpSnapshot before = c.snapshot();

    constexpr int kListed = 7, kOther = 3;
    auto exchange = [](int listen_fd, uint16_t to) {
        int fd = connect_to(to);
        ASSERT_GE(fd, 0) << std::strerror(errno);
        int peer = ::accept(listen_fd, nullptr, nullptr);
        ASSERT_GE(peer, 0);
        char buf[100] = {};
        ASSERT_EQ(::write(fd, buf, sizeof(buf)), static_cast<ssize_t>(sizeof(buf)));
        ASSERT_EQ(::read(peer, buf, sizeof(buf)), static_cast<ssize_t>(sizeof(buf)));
        ::close(fd);
        ::close(peer);
    };
    for (int i = 0; i < kListed; ++i)
        exchange(listener.get(), port);
    for (int i = 0; i < kOther; ++i)
        exchange(other.get(), other_port);
    TcpSnapshot after = c.snapshot();

    const TcpFamilyStats* pa = after.find("ipv4", std::to_string(port));
    const TcpFamilyStats* pb = before.find("ipv4", std::to_string(port));
    const TcpFamilyStats* oa = after.find("ipv4", "other");
    const TcpFamilyStats* ob = before.find("ipv4", "other");
    const TcpFamilyStats* unused = after.find("ipv4", "1");
    ASSERT_TRUE(pa && pb && oa && ob && unused && after.find("ipv6", "other"));
    const uint64_t connects = pa->connect.count() - pb->connect.count();
    const uint64_t closes = pa->duration.count() - pb->duration.count();
    std::printf("port %u: connects +%llu, closed +%llu; other: connects +%llu, closed +%llu\n",
                port, static_cast<unsigned long long>(connects),
                static_cast<unsigned long long>(closes),
                static_cast<unsigned long long>(oa->connect.count() - ob->connect.count()),
                static_cast<unsigned long long>(oa->duration.count() - ob->duration.count()));
    // Only this test talks to `port`: exact. Client and server ends both close there.
    EXPECT_EQ(connects, static_cast<uint64_t>(kListed));
    EXPECT_EQ(closes, static_cast<uint64_t>(2 * kListed));
    EXPECT_EQ(pa->sent_bytes.sum - pb->sent_bytes.sum, static_cast<uint64_t>(100 * kListed));
    EXPECT_GE(oa->connect.count() - ob->connect.count(), static_cast<uint64_t>(kOther));
    EXPECT_EQ(unused->connect.count() + unused->duration.count(), 0u);
    // The per-family totals are the sums over the ports.
    EXPECT_EQ(after.find("ipv4")->connect.count(),
              pa->connect.count() + oa->connect.count() + unused->connect.count());
    for (const auto& f : tcp_metric_families(after))
        for (const auto& m : f.metric) {
            if (f.name == "hostprof_tcp_lost_total") // the collector's own, not per port
                continue;
            bool has_port = false;
            for (const auto& l : m.label)
                has_port |= l.name == "port";
            EXPECT_TRUE(has_port) << f.name;
        }
}

TEST(TcpPorts, TooManyOrZeroPortsAreRefused) {
    HOSTPROF_REQUIRE_ROOT();
    TcpOptions o;
    o.ports.assign(HP_TCP_MAX_PORTS + 1, 0);
    for (size_t i = 0; i < o.ports.size(); ++i)
        o.ports[i] = static_cast<uint16_t>(1000 + i);
    EXPECT_FALSE(TcpCollector::start(o));
    o.ports = {80, 0};
    EXPECT_FALSE(TcpCollector::start(o));
}

INSTANTIATE_TEST_SUITE_P(Modes, TcpModes,
                         ::testing::Values(compat::AttachMode::TpBtf, compat::AttachMode::RawTp),
                         [](const auto& info) {
                             return std::string(compat::to_string(info.param));
                         });

} // namespace
