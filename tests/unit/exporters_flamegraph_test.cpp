// Flame graph page: the embedded data (golden), self-containment and escaping, and the
// page rendered by a real headless Chromium (DOM checks and a screenshot artifact).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "exporters/flamegraph.h"
#include "exporters_fixture.h"

namespace hostprof {
namespace {

using testing::fixture_profile;

constexpr std::string_view kDataOpen = R"(<script type="application/json" id="hostprof-data">)";

std::string embedded_json(const std::string& page) {
    const size_t begin = page.find(kDataOpen);
    if (begin == std::string::npos)
        return {};
    const size_t start = begin + kDataOpen.size();
    const size_t end = page.find("</script>", start);
    return end == std::string::npos ? std::string{} : page.substr(start, end - start);
}

TEST(ExportersFlameGraph, EmbeddedDataGolden) {
    const std::string page = render_flamegraph_html(fixture_profile(), {});
    const std::string json = embedded_json(page);
    ASSERT_FALSE(json.empty());
    const auto j = nlohmann::json::parse(json);
    EXPECT_EQ(j["sample_type"], "cpu");
    EXPECT_EQ(j["unit"], "nanoseconds");
    EXPECT_EQ(j["groups"], (nlohmann::json{"checkout", "search"}));
    // Sum of the stacks is the profile's total CPU: 120 samples x 10101010 ns.
    int64_t total = 0;
    for (const auto& s : j["stacks"])
        total += s[1].get<int64_t>();
    EXPECT_EQ(total, 120 * 10101010LL);
    // Kinds: memcpy is user (libc), __x64_sys_write kernel.
    std::map<std::string, int> kinds;
    for (const auto& n : j["names"])
        kinds[n[0].get<std::string>()] = n[1].get<int>();
    EXPECT_EQ(kinds["memcpy"], 0);
    EXPECT_EQ(kinds["__x64_sys_write"], 1);
    EXPECT_EQ(kinds.count("hash_block"), 1u);
    testing::expect_golden("flamegraph_data.json", j.dump(1) + "\n");
}

TEST(ExportersFlameGraph, SelfContainedAndEscaped) {
    Profile p = fixture_profile();
    p.locations[2].lines[0].function = "evil</script><img src=x onerror=alert(1)>\u2028";
    FlameGraphOptions o;
    o.title = "<b>host & \"co\"</b> @DATA@";
    const std::string page = render_flamegraph_html(p, o);
    // Exactly two scripts (the data and the code), nothing loaded from anywhere.
    EXPECT_EQ(std::count(page.begin(), page.end(), '<') > 0, true);
    size_t scripts = 0;
    for (size_t pos = 0; (pos = page.find("<script", pos)) != std::string::npos; ++pos)
        ++scripts;
    EXPECT_EQ(scripts, 2u);
    for (const char* banned :
         {"http://", "https://", "src=\"", "<link", "@import", "fetch(", "XMLHttpRequest"})
        EXPECT_EQ(page.find(banned), std::string::npos) << banned;
    EXPECT_EQ(page.find("evil</script>"), std::string::npos)
        << "function names must not close the script";
    EXPECT_NE(page.find("<title>&lt;b&gt;host &amp; &quot;co&quot;&lt;/b&gt; @DATA@</title>"),
              std::string::npos);
    const auto j = nlohmann::json::parse(embedded_json(page));
    EXPECT_EQ(j["title"], o.title);
    bool found = false;
    for (const auto& n : j["names"])
        found |= n[0] == "evil</script><img src=x onerror=alert(1)>\u2028";
    EXPECT_TRUE(found) << "names survive the escaping unchanged";
    // ASCII only.
    EXPECT_TRUE(std::all_of(page.begin(), page.end(),
                            [](char c) { return static_cast<unsigned char>(c) < 0x80; }));
}

TEST(ExportersFlameGraph, ValueIndexAndNoGroups) {
    FlameGraphOptions o;
    o.value_index = 0;
    o.group_label = "";
    const auto j =
        nlohmann::json::parse(embedded_json(render_flamegraph_html(fixture_profile(), o)));
    EXPECT_EQ(j["sample_type"], "samples");
    EXPECT_TRUE(j["groups"].empty());
    int64_t total = 0;
    for (const auto& s : j["stacks"]) {
        EXPECT_EQ(s[0], -1);
        total += s[1].get<int64_t>();
    }
    EXPECT_EQ(total, 120);
    EXPECT_EQ(j["stacks"].size(), 5u);
}

// The page in a real browser: Debian's chromium, headless, no network, fresh profile.
class ChromiumFlameGraph : public ::testing::Test {
  protected:
    void SetUp() override {
        HOSTPROF_REQUIRE_TOOL("chromium");
        dir_ = testing::temp_dir("chromium");
        page_ = (dir_ / "flamegraph.html").string();
        FlameGraphOptions o;
        o.title = "hostprof test: on-CPU";
        testing::write_file(page_, render_flamegraph_html(fixture_profile(), o));
    }
    void TearDown() override {
        if (!dir_.empty())
            std::filesystem::remove_all(dir_);
    }
    std::string chromium(const std::string& action, const std::string& fragment = "") {
        const std::string cmd =
            "timeout 30 chromium --headless --no-sandbox --disable-gpu "
            "--disable-background-networking "
            "--no-first-run --disable-component-update --disable-sync --hide-scrollbars "
            "--window-size=1200,520 --user-data-dir=" +
            (dir_ / "profile").string() + " " + action + " 'file://" + page_ + fragment +
            "' 2>/dev/null";
        const auto r = testing::run_command(cmd);
        EXPECT_EQ(r.exit_code, 0) << cmd;
        return r.output;
    }
    // data-name of the frames whose class attribute matches `cls` (a regex).
    static std::set<std::string> frames(const std::string& dom,
                                        const std::string& cls = "frame[^\"]*") {
        std::set<std::string> names;
        const std::regex re("<div class=\"" + cls + "\"[^>]*data-name=\"([^\"]*)\"");
        for (auto it = std::sregex_iterator(dom.begin(), dom.end(), re);
             it != std::sregex_iterator(); ++it)
            names.insert((*it)[1]);
        return names;
    }
    std::filesystem::path dir_;
    std::string page_;
};

TEST_F(ChromiumFlameGraph, RendersHotFunctionsAndSelector) {
    const std::string dom = chromium("--dump-dom");
    const auto names = frames(dom);
    for (const char* fn : {"all", "main", "run_loop", "hash_block", "compute_sha", "memcpy",
                           "idle_loop", "write", "do_syscall_64", "__x64_sys_write", "[libc.so.6]"})
        EXPECT_TRUE(names.count(fn)) << fn << " not rendered\n" << dom.substr(0, 4000);
    // Wide frames carry their name as visible text.
    EXPECT_NE(dom.find(">compute_sha</div>"), std::string::npos);
    EXPECT_NE(dom.find(">main</div>"), std::string::npos);
    EXPECT_NE(dom.find("<option value=\"0\">checkout (79.17%)</option>"), std::string::npos)
        << dom.substr(0, 4000);
    EXPECT_NE(dom.find("<option value=\"1\">search (20.83%)</option>"), std::string::npos);
    EXPECT_NE(dom.find("cpu: 1.21 s"), std::string::npos) << "summary";
}

TEST_F(ChromiumFlameGraph, ServiceSelectorSearchAndZoom) {
    const std::string search_svc = chromium("--dump-dom", "#service=search&search=idle");
    const auto names = frames(search_svc);
    EXPECT_TRUE(names.count("idle_loop"));
    EXPECT_FALSE(names.count("memcpy")) << "checkout frames shown under service=search";
    EXPECT_EQ(frames(search_svc, "frame match"), std::set<std::string>{"idle_loop"});
    EXPECT_NE(search_svc.find("Matched: 252.53 ms (100.00%)"), std::string::npos)
        << search_svc.substr(0, 3000);

    const std::string zoomed = chromium("--dump-dom", "#zoom=compute_sha");
    EXPECT_EQ(frames(zoomed, "frame ancestor"),
              (std::set<std::string>{"all", "main", "run_loop", "hash_block"}));
    EXPECT_TRUE(frames(zoomed).count("memcpy"));
    EXPECT_FALSE(frames(zoomed).count("idle_loop")) << "zoom hides siblings";
    EXPECT_NE(zoomed.find("zoomed: 808.08 ms (66.67%)"), std::string::npos);
}

TEST_F(ChromiumFlameGraph, Screenshot) {
    // Kept next to the test binary: <build>/tests/artifacts/flamegraph.png.
    const auto artifacts = std::filesystem::canonical("/proc/self/exe").parent_path() / "artifacts";
    std::filesystem::create_directories(artifacts);
    const auto png = artifacts / "flamegraph.png";
    std::filesystem::remove(png);
    chromium("--screenshot=" + png.string(), "#search=sha");
    ASSERT_TRUE(std::filesystem::exists(png));
    const std::string bytes = testing::read_file(png.string());
    ASSERT_GT(bytes.size(), 5000u) << "blank page?";
    EXPECT_EQ(bytes.substr(1, 3), "PNG");
    std::filesystem::copy_file(page_, artifacts / "flamegraph.html",
                               std::filesystem::copy_options::overwrite_existing);
}

} // namespace
} // namespace hostprof
