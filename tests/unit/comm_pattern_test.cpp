#include <gtest/gtest.h>

#include "agent/process/comm_pattern.h"

using namespace hostprof;

namespace {

TEST(CommPattern, ExtendedRegexSearch) {
    auto p = CommPattern::compile("^(postgres|mysqld)$");
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_TRUE(p->matches("postgres"));
    EXPECT_TRUE(p->matches("mysqld"));
    EXPECT_FALSE(p->matches("postgres: wal"));
    auto q = CommPattern::compile("kworker/[0-9]+:[0-9]+H?");
    ASSERT_TRUE(q) << q.error().message();
    EXPECT_TRUE(q->matches("kworker/1:2H-kblockd"));
    EXPECT_FALSE(q->matches("ksoftirqd/1"));
    auto br = CommPattern::compile("[]a]x|[^]b]y|[[:digit:]]z");
    ASSERT_TRUE(br) << br.error().message();
    EXPECT_TRUE(br->matches("]x"));
    EXPECT_TRUE(br->matches("cy"));
    EXPECT_TRUE(br->matches("7z"));
    EXPECT_FALSE(br->matches("by"));
}

TEST(CommPattern, RefusesWhatCouldBlowUp) {
    for (const char* bad : {"(a)\\1", "a{2}", "(x){1,100}", "((((((((((((((((((a))))))))))))))))))",
                            "(unclosed", "[z-a]"}) {
        auto p = CommPattern::compile(bad);
        EXPECT_FALSE(p) << bad;
    }
    EXPECT_FALSE(CommPattern::compile(std::string(129, 'a')));
    EXPECT_TRUE(CommPattern::compile(std::string(128, 'a')));
    // Braces inside a bracket expression are plain characters.
    auto ok = CommPattern::compile("[{}]");
    ASSERT_TRUE(ok);
    EXPECT_TRUE(ok->matches("a{"));
}

TEST(CommPattern, NestedStarsDoNotBacktrack) {
    // Exponential for a backtracking matcher (std::regex took minutes on inputs like this);
    // an automaton answers at once. No timing assertion: ctest's timeout is the bound.
    std::string nested;
    for (int i = 0; i < 12; ++i)
        nested += "(a*)*";
    auto p = CommPattern::compile(nested + "b");
    ASSERT_TRUE(p) << p.error().message();
    for (int i = 0; i < 100; ++i)
        EXPECT_FALSE(p->matches("aaaaaaaaaaaaaaa"));
    EXPECT_TRUE(p->matches("aaaaaaaaaaaaaab"));
}

} // namespace
