// Pyroscope push: the request encoder against the generated classes, label parsing, and
// the pusher (threads, libcurl, retries, bounded queue) against an in-test receiver that
// decodes what arrives. Profiles come from synthetic windows symbolized through a table.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <prometheus/text_serializer.h>

#include <chrono>
#include <regex>
#include <set>
#include <thread>

#include "agent/config/config.h"
#include "agent/push/pyroscope_push.h"
#include "exporters/pprof.h"
#include "exporters/pyroscope.h"
#include "push_fixture.h"
#include "pyroscope_receiver.h"

namespace hostprof {
namespace {

using namespace std::chrono_literals;
using testing::kPeriod;
using testing::PyroscopeReceiver;
using testing::SyntheticSource;
using testing::wait_for;

TEST(PyroscopeEncode, RequestDecodesWithGeneratedClasses) {
    std::vector<PyroscopeSeries> in(2);
    in[0].labels = {
        {"service_name", "checkout"}, {"__name__", "process_cpu"}, {"env", "a"}, {"env", "b"}};
    in[0].raw_profile = std::string("\x1f\x8b\x00binary\xff", 10);
    in[0].id = "id-1";
    in[1].labels = {{"service_name", "search"}};
    in[1].raw_profile = std::string(300000, 'p'); // multi-byte length varints
    const std::string bytes = encode_push_request(in);
    pyroscope::PushRequest req;
    ASSERT_TRUE(req.ParseFromString(bytes));
    EXPECT_EQ(req.SerializeAsString(), bytes) << "canonical encoding";
    ASSERT_EQ(req.series_size(), 2);
    const auto& s0 = req.series(0);
    ASSERT_EQ(s0.labels_size(), 3) << "sorted by name, first of a repeated name kept";
    EXPECT_EQ(s0.labels(0).name(), "__name__");
    EXPECT_EQ(s0.labels(1).name(), "env");
    EXPECT_EQ(s0.labels(1).value(), "a");
    EXPECT_EQ(s0.labels(2).name(), "service_name");
    ASSERT_EQ(s0.samples_size(), 1);
    EXPECT_EQ(s0.samples(0).raw_profile(), in[0].raw_profile);
    EXPECT_EQ(s0.samples(0).id(), "id-1");
    EXPECT_EQ(req.series(1).samples(0).raw_profile().size(), 300000u);
    EXPECT_EQ(encoded_series_size(in[0]) + encoded_series_size(in[1]), bytes.size());
}

TEST(PyroscopeEncode, LabelListsAndIds) {
    LabelList l;
    std::string why;
    ASSERT_TRUE(parse_label_list(" env=prod, region=eu-west ,team=a=b", &l, &why)) << why;
    EXPECT_EQ(l, (LabelList{{"env", "prod"}, {"region", "eu-west"}, {"team", "a=b"}}));
    ASSERT_TRUE(parse_label_list("", &l, &why));
    EXPECT_TRUE(l.empty());
    for (const char* bad : {"env", "1x=a", "__name__=x", "env=", "a=1,a=2", "a-b=c"}) {
        EXPECT_FALSE(parse_label_list(bad, &l, &why)) << bad;
        EXPECT_FALSE(why.empty());
    }
    const std::regex uuid("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
    std::set<std::string> ids;
    for (int i = 0; i < 100; ++i) {
        const std::string id = random_uuid();
        EXPECT_TRUE(std::regex_match(id, uuid)) << id;
        ids.insert(id);
    }
    EXPECT_EQ(ids.size(), 100u);
}

TEST(PyroscopeConfig, Settings) {
    Config c;
    EXPECT_TRUE(c.pyroscope_url.empty()) << "push is off by default";
    EXPECT_TRUE(apply_setting(c, "pyroscope_url", "http://pyro:4040"));
    EXPECT_FALSE(apply_setting(c, "pyroscope_url", "pyro:4040"));
    EXPECT_TRUE(apply_setting(c, "pyroscope_interval", "2s"));
    EXPECT_EQ(c.pyroscope_interval_ns, 2'000'000'000u);
    EXPECT_FALSE(apply_setting(c, "pyroscope_interval", "100ms"));
    EXPECT_TRUE(apply_setting(c, "pyroscope_labels", "env=ci"));
    EXPECT_FALSE(apply_setting(c, "pyroscope_labels", "__x=1"));
    EXPECT_FALSE(apply_setting(c, "pyroscope_queue_bytes", "100"));
    EXPECT_TRUE(apply_setting(c, "pyroscope_tenant_id", "team-a"));
    EXPECT_FALSE(apply_setting(c, "pyroscope_tenant_id", "a b"));
}

PyroscopePushOptions fast_options(const std::string& url) {
    PyroscopePushOptions o;
    o.url = url;
    o.interval = 200ms;
    o.hostname = "test-host";
    o.static_labels = {{"env", "ci"}};
    o.tenant_id = "team-a";
    o.retry.initial_backoff = 20ms;
    o.retry.max_backoff = 100ms;
    return o;
}

std::string str(const pprof::Profile& p, int64_t i) {
    return i >= 0 && i < p.string_table_size() ? p.string_table(static_cast<int>(i)) : "<bad>";
}

// Sum of the values at index v of the samples whose leaf function is `leaf`.
int64_t leaf_value(const pprof::Profile& p, const std::string& leaf, int v) {
    std::map<uint64_t, std::string> fn;
    for (const auto& f : p.function())
        fn[f.id()] = str(p, f.name());
    std::map<uint64_t, std::string> loc;
    for (const auto& l : p.location())
        loc[l.id()] = l.line_size() > 0 ? fn[l.line(0).function_id()] : "";
    int64_t sum = 0;
    for (const auto& s : p.sample())
        if (s.location_id_size() > 0 && loc[s.location_id(0)] == leaf)
            sum += s.value(v);
    return sum;
}

TEST(PyroscopePush, PushesOneSeriesPerServiceAndKind) {
    PyroscopeReceiver receiver;
    ASSERT_GT(receiver.port(), 0);
    auto source = std::make_unique<SyntheticSource>();
    SyntheticSource* src = source.get();
    auto pusher = start_pyroscope_pusher(fast_options(receiver.url() + "/"), std::move(source));
    ASSERT_TRUE(pusher) << pusher.error().message();
    // Two pushes answered (the receiver counts a request before it answers: stopping at
    // its count could abort the second push in flight).
    ASSERT_TRUE(wait_for([&] { return pusher.value()->stats().requests_ok >= 2; }));
    pusher.value()->stop();
    EXPECT_EQ(src->active(), 0u) << "subscriptions released at stop";

    const auto requests = receiver.requests();
    for (const auto& r : requests) {
        EXPECT_EQ(r.method, "POST");
        EXPECT_EQ(r.path, "/push.v1.PusherService/Push");
        EXPECT_EQ(r.content_type, "application/proto");
        EXPECT_EQ(r.connect_version, "1");
        EXPECT_EQ(r.tenant, "team-a");
    }
    const auto series = receiver.decoded();
    ASSERT_TRUE(series.has_value()) << "a body did not decode";
    // Each interval: process_cpu for checkout and search, off_cpu for checkout.
    ASSERT_GE(series->size(), 3u);
    std::map<std::pair<std::string, std::string>, const testing::DecodedSeries*> first;
    std::set<std::string> ids;
    for (const auto& s : *series) {
        EXPECT_EQ(s.labels.size(), 4u);
        EXPECT_EQ(s.labels.at("hostname"), "test-host");
        EXPECT_EQ(s.labels.at("env"), "ci");
        EXPECT_TRUE(s.gzipped);
        EXPECT_TRUE(ids.insert(s.id).second) << "profile ids are unique";
        first.try_emplace({s.labels.at("__name__"), s.labels.at("service_name")}, &s);
    }
    ASSERT_EQ(first.size(), 3u);

    const pprof::Profile& checkout = first.at({"process_cpu", "checkout"})->profile;
    ASSERT_EQ(checkout.sample_type_size(), 2);
    EXPECT_EQ(str(checkout, checkout.sample_type(0).type()), "samples");
    EXPECT_EQ(str(checkout, checkout.sample_type(0).unit()), "count");
    EXPECT_EQ(str(checkout, checkout.sample_type(1).type()), "cpu");
    EXPECT_EQ(str(checkout, checkout.sample_type(1).unit()), "nanoseconds");
    EXPECT_EQ(str(checkout, checkout.period_type().type()), "cpu");
    EXPECT_EQ(str(checkout, checkout.period_type().unit()), "nanoseconds");
    EXPECT_EQ(checkout.period(), kPeriod);
    EXPECT_EQ(checkout.time_nanos(), 1'700'000'000'000'000'000);
    EXPECT_EQ(checkout.duration_nanos(), 2'000'000'000);
    ASSERT_EQ(checkout.sample_size(), 1) << "pids 100 and 101 merge: no sample labels";
    EXPECT_EQ(checkout.sample(0).label_size(), 0);
    EXPECT_EQ(leaf_value(checkout, "spin", 0), 35);
    EXPECT_EQ(leaf_value(checkout, "spin", 1), 35 * kPeriod);

    const pprof::Profile& search = first.at({"process_cpu", "search"})->profile;
    EXPECT_EQ(leaf_value(search, "kfunc", 0), 20);
    EXPECT_EQ(leaf_value(search, "spin", 0), 0) << "services are not mixed";

    const pprof::Profile& off = first.at({"off_cpu", "checkout"})->profile;
    EXPECT_EQ(str(off, off.sample_type(1).type()), "off_cpu");
    EXPECT_EQ(str(off, off.period_type().unit()), "nanoseconds");
    EXPECT_EQ(leaf_value(off, "main", 1), 1'500'000'000);

    // A push in flight when stop() came (the next interval's, 200 ms later) is aborted and
    // counted failed, whether or not the receiver saw it; every other one went through.
    const PushStats st = pusher.value()->stats();
    ASSERT_LE(st.requests_failed, 1u);
    ASSERT_GE(requests.size(), st.requests_ok);
    ASSERT_LE(requests.size(), st.requests_ok + st.requests_failed);
    size_t body_bytes = 0;
    for (size_t i = 0; i < st.requests_ok; ++i)
        body_bytes += requests[i].body.size();
    EXPECT_EQ(st.bytes_pushed, body_bytes);
    EXPECT_EQ(st.items_pushed, 3 * st.requests_ok) << "3 series per interval";
    EXPECT_EQ(series->size() % 3, 0u);
}

// A loopback port with nothing listening (connection refused).
int closed_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

TEST(PyroscopePush, ServerDownQueueStaysBoundedAndDropsAreCounted) {
    auto o = fast_options("http://127.0.0.1:" + std::to_string(closed_port()));
    o.interval = 20ms;
    o.retry.initial_backoff = 60s; // the sender sits in its backoff: the queue must bound itself
    o.retry.max_queue_bytes = 8192;
    auto pusher = start_pyroscope_pusher(o, std::make_unique<SyntheticSource>());
    ASSERT_TRUE(pusher) << pusher.error().message();
    ProfilePusher& p = *pusher.value();
    size_t max_seen = 0;
    ASSERT_TRUE(wait_for([&] {
        const auto s = p.stats();
        max_seen = std::max(max_seen, s.queue_bytes);
        return s.dropped.at("queue_full") >= 5;
    })) << "queue_full drops never came";
    EXPECT_LE(max_seen, o.retry.max_queue_bytes);
    auto s = p.stats();
    EXPECT_GE(s.requests_failed, 1u);
    EXPECT_EQ(s.requests_ok, 0u);
    EXPECT_EQ(s.last_http_status, 0) << "connection refused is a network error";
    EXPECT_GT(s.queue_requests, 0u);

    // The metrics say the same, in the exported families.
    const std::string text = prometheus::TextSerializer().Serialize(p.metrics()->Collect());
    EXPECT_NE(text.find("hostprof_pyroscope_dropped_requests_total{reason=\"queue_full\"}"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("hostprof_pyroscope_queue_bytes "), std::string::npos) << text;
    EXPECT_NE(text.find("hostprof_pyroscope_requests_total{result=\"error\"}"), std::string::npos);

    p.stop(); // interrupts the 60 s backoff
    s = p.stats();
    EXPECT_EQ(s.queue_requests, 0u);
    EXPECT_GE(s.dropped.at("shutdown"), 1u);
}

TEST(PyroscopePush, RetriesWithBackoffThenGivesUpOrRecovers) {
    PyroscopeReceiver receiver(503);
    auto o = fast_options(receiver.url());
    o.interval = 300ms;
    o.retry.max_attempts = 3;
    auto pusher = start_pyroscope_pusher(o, std::make_unique<SyntheticSource>());
    ASSERT_TRUE(pusher) << pusher.error().message();
    ProfilePusher& p = *pusher.value();
    ASSERT_TRUE(wait_for([&] { return p.stats().dropped.at("retries_exhausted") >= 1; }));
    EXPECT_GE(receiver.count(), 3u) << "three attempts for the first request";
    EXPECT_EQ(p.stats().last_http_status, 503);
    receiver.set_status(200);
    ASSERT_TRUE(wait_for([&] { return p.stats().requests_ok >= 1; }));
    receiver.set_status(400); // a client error is not retried
    const uint64_t failed_before = p.stats().requests_failed;
    ASSERT_TRUE(wait_for([&] { return p.stats().dropped.at("rejected") >= 1; }));
    p.stop();
    const auto s = p.stats();
    EXPECT_GE(s.requests_failed, failed_before + 1);
    EXPECT_EQ(s.dropped.at("queue_full"), 0u);
}

TEST(PyroscopePush, SplitBySurvivesMissingMetadata) {
    SyntheticSource src;
    ProfileWindow w = src.collect(src.subscribe(HP_PROF_ON_CPU));
    StackKey orphan;
    orphan.pid = 999;
    orphan.frames = {0x401010};
    w.stacks.add(orphan, {7, 0});
    const auto parts = split_by_service(std::move(w));
    ASSERT_EQ(parts.size(), 3u);
    EXPECT_EQ(parts.at("checkout").stacks.size(), 2u);
    EXPECT_EQ(parts.at("checkout").processes.size(), 2u);
    EXPECT_EQ(parts.at("search").stacks.size(), 1u);
    EXPECT_EQ(parts.at("unknown").stacks.size(), 1u);
    EXPECT_EQ(parts.at("unknown").records, 7u);
}

TEST(PyroscopePush, RejectsBadOptions) {
    EXPECT_FALSE(
        start_pyroscope_pusher(fast_options("ftp://x"), std::make_unique<SyntheticSource>()));
    auto o = fast_options("http://127.0.0.1:1");
    o.static_labels = {{"__name__", "x"}};
    EXPECT_FALSE(start_pyroscope_pusher(o, std::make_unique<SyntheticSource>()));
    EXPECT_FALSE(start_pyroscope_pusher(fast_options("http://127.0.0.1:1"), nullptr));
}

} // namespace
} // namespace hostprof
