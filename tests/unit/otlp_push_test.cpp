// OTLP profiles push: the pusher (threads, libcurl, retries, bounded queue shared with the
// Pyroscope push) against an in-test receiver; what arrives is gunzipped and decoded with
// the classes generated from exporters/otlp_profiles.proto. Settings and bad options.
#include <gtest/gtest.h>

#include <prometheus/text_serializer.h>

#include <map>
#include <set>
#include <string>

#include "agent/config/config.h"
#include "agent/push/otlp_push.h"
#include "exporters/gzip.h"
#include "exporters/otlp_profiles.pb.h"
#include "push_fixture.h"
#include "pyroscope_receiver.h"

namespace hostprof {
namespace {

using namespace std::chrono_literals;
using testing::PyroscopeReceiver;
using testing::SyntheticSource;
using testing::wait_for;

OtlpPushOptions fast_options(const std::string& url) {
    OtlpPushOptions o;
    o.url = url;
    o.interval = 200ms;
    o.hostname = "test-host";
    o.headers = {{"Authorization", "Bearer abc"}};
    o.retry.initial_backoff = 20ms;
    o.retry.max_backoff = 100ms;
    return o;
}

TEST(OtlpConfig, Settings) {
    Config c;
    EXPECT_TRUE(c.otlp_url.empty()) << "push is off by default";
    EXPECT_TRUE(apply_setting(c, "otlp_url", "http://collector:4318"));
    EXPECT_FALSE(apply_setting(c, "otlp_url", "collector:4318"));
    EXPECT_TRUE(apply_setting(c, "otlp_interval", "5s"));
    EXPECT_EQ(c.otlp_interval_ns, 5'000'000'000u);
    EXPECT_FALSE(apply_setting(c, "otlp_interval", "20m"));
    EXPECT_TRUE(apply_setting(c, "otlp_headers", "Authorization=Bearer x,X-Scope-OrgID=team-a"));
    ASSERT_EQ(c.otlp_headers.size(), 2u);
    EXPECT_EQ(c.otlp_headers[0].second, "Bearer x");
    EXPECT_FALSE(apply_setting(c, "otlp_headers", "noequals"));
    EXPECT_FALSE(apply_setting(c, "otlp_headers", "Bad Name=x"));
    EXPECT_FALSE(apply_setting(c, "otlp_headers", "X=a\nb"));
}

TEST(OtlpPush, PushesGzippedRequestsThatDecodeFieldByField) {
    PyroscopeReceiver receiver;
    ASSERT_GT(receiver.port(), 0);
    auto source = std::make_unique<SyntheticSource>();
    SyntheticSource* src = source.get();
    auto pusher = start_otlp_pusher(fast_options(receiver.url() + "/"), std::move(source));
    ASSERT_TRUE(pusher) << pusher.error().message();
    EXPECT_EQ(pusher.value()->url(), receiver.url() + "/v1development/profiles");
    ASSERT_TRUE(wait_for([&] { return pusher.value()->stats().requests_ok >= 2; }));
    pusher.value()->stop();
    EXPECT_EQ(src->active(), 0u) << "subscriptions released at stop";

    const auto requests = receiver.requests();
    ASSERT_GE(requests.size(), 2u);
    const PushStats st = pusher.value()->stats();
    size_t body_bytes = 0;
    for (size_t i = 0; i < requests.size(); ++i) {
        const auto& r = requests[i];
        EXPECT_EQ(r.method, "POST");
        EXPECT_EQ(r.path, "/v1development/profiles");
        EXPECT_EQ(r.content_type, "application/x-protobuf");
        EXPECT_EQ(r.content_encoding, "gzip");
        EXPECT_EQ(r.authorization, "Bearer abc");
        if (i < st.requests_ok)
            body_bytes += r.body.size();
    }
    EXPECT_EQ(st.bytes_pushed, body_bytes);
    // Each interval: checkout pids 100 and 101 and search pid 200 on-CPU, pid 100 off-CPU.
    EXPECT_EQ(st.items_pushed, 4 * st.requests_ok);

    const auto body = gzip_decompress(requests[0].body);
    ASSERT_TRUE(body.has_value());
    otlp::ExportProfilesServiceRequest req;
    ASSERT_TRUE(req.ParseFromString(*body));
    const auto& d = req.dictionary();
    auto str = [&](int32_t i) { return d.string_table(i); };
    ASSERT_EQ(req.resource_profiles_size(), 3); // one per process
    std::map<std::string, const otlp::ResourceProfiles*> by_pid;
    for (const auto& rp : req.resource_profiles()) {
        std::map<std::string, std::string> attrs;
        for (const auto& kv : rp.resource().attributes())
            attrs[kv.key()] = kv.value().has_int_value() ? std::to_string(kv.value().int_value())
                                                         : kv.value().string_value();
        EXPECT_EQ(attrs["host.name"], "test-host");
        EXPECT_FALSE(attrs["service.name"].empty());
        by_pid[attrs["process.pid"]] = &rp;
    }
    ASSERT_TRUE(by_pid.contains("100") && by_pid.contains("101") && by_pid.contains("200"));
    const auto& p100 = by_pid["100"]->scope_profiles(0);
    EXPECT_EQ(p100.scope().name(), "hostprof");
    EXPECT_EQ(p100.scope().version(), HOSTPROF_VERSION);
    ASSERT_EQ(p100.profiles_size(), 2); // on-CPU and off-CPU
    const auto& cpu = p100.profiles(0);
    EXPECT_EQ(str(cpu.sample_type().type_strindex()), "samples");
    EXPECT_EQ(str(cpu.period_type().type_strindex()), "cpu");
    EXPECT_EQ(cpu.period(), testing::kPeriod);
    ASSERT_EQ(cpu.samples_size(), 1);
    EXPECT_EQ(cpu.samples(0).values(0), 30);
    const auto& stack = d.stack_table(cpu.samples(0).stack_index());
    ASSERT_EQ(stack.location_indices_size(), 2);
    const auto& leaf = d.location_table(stack.location_indices(0));
    EXPECT_EQ(str(d.function_table(leaf.lines(0).function_index()).name_strindex()), "spin");
    const auto& off = p100.profiles(1);
    EXPECT_EQ(str(off.sample_type().type_strindex()), "off_cpu");
    EXPECT_EQ(off.samples(0).values(0), 1'500'000'000);
    // pid 200's stack has a kernel leaf.
    const auto& p200 = by_pid["200"]->scope_profiles(0).profiles(0);
    const auto& kstack = d.stack_table(p200.samples(0).stack_index());
    const auto& kleaf = d.location_table(kstack.location_indices(0));
    EXPECT_EQ(str(d.function_table(kleaf.lines(0).function_index()).name_strindex()), "kfunc");
    EXPECT_EQ(str(d.attribute_table(kleaf.attribute_indices(0)).key_strindex()),
              "profile.frame.type");
    EXPECT_EQ(d.attribute_table(kleaf.attribute_indices(0)).value().string_value(), "kernel");

    const std::string text =
        prometheus::TextSerializer().Serialize(pusher.value()->metrics()->Collect());
    EXPECT_NE(text.find("hostprof_otlp_requests_total{result=\"ok\"}"), std::string::npos) << text;
    EXPECT_NE(text.find("hostprof_otlp_profiles_pushed_total"), std::string::npos) << text;
    EXPECT_NE(text.find("hostprof_otlp_dropped_requests_total{reason=\"queue_full\"} 0"),
              std::string::npos)
        << text;
}

TEST(OtlpPush, RejectedRequestsAreDroppedAndCounted) {
    PyroscopeReceiver receiver(400);
    auto pusher =
        start_otlp_pusher(fast_options(receiver.url()), std::make_unique<SyntheticSource>());
    ASSERT_TRUE(pusher);
    ASSERT_TRUE(wait_for([&] { return pusher.value()->stats().dropped.at("rejected") >= 1; }));
    pusher.value()->stop();
    EXPECT_EQ(pusher.value()->stats().last_http_status, 400);
    EXPECT_EQ(pusher.value()->stats().requests_ok, 0u);
}

TEST(OtlpPush, RejectsBadOptions) {
    EXPECT_FALSE(
        start_otlp_pusher(fast_options("grpc://x:4317"), std::make_unique<SyntheticSource>()));
    EXPECT_FALSE(start_otlp_pusher(fast_options("http://127.0.0.1:1"), nullptr));
}

} // namespace
} // namespace hostprof
