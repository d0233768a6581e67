#include "agent/aggregate/stack_table.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <tuple>

using namespace hostprof;

namespace {

using RefKey = std::tuple<uint32_t, uint32_t, uint64_t, uint16_t, std::vector<uint64_t>>;

RefKey ref_key(const StackRef& k) {
    return {k.pid, k.tid, k.start_time_ns, k.kernel_len,
            std::vector<uint64_t>(k.frames.begin(), k.frames.end())};
}

StackKey key(uint32_t pid, uint16_t kernel_len, std::vector<uint64_t> frames, uint32_t tid = 0,
             uint64_t start = 1000) {
    return StackKey{pid, tid, start, kernel_len, std::move(frames)};
}

// The value the table holds for a stack (zero when it holds none), found by iterating.
StackValue value_of(const StackTable& t, const StackKey& k) {
    for (const auto& [stored, value] : t)
        if (ref_key(stored) == ref_key(k.ref()))
            return value;
    return {};
}

} // namespace

TEST(StackTable, SumsEqualStacksAndKeepsEveryFieldApart) {
    StackTable t;
    EXPECT_TRUE(t.empty());
    EXPECT_TRUE(t.add(key(1, 1, {0xffff1, 0x401000}), {1, 10}));
    EXPECT_TRUE(t.add(key(1, 1, {0xffff1, 0x401000}), {2, 20}));
    // Differ in one field each: pid, tid, start time, kernel/user split, a frame, depth.
    EXPECT_TRUE(t.add(key(2, 1, {0xffff1, 0x401000}), {1, 0}));
    EXPECT_TRUE(t.add(key(1, 1, {0xffff1, 0x401000}, 7), {1, 0}));
    EXPECT_TRUE(t.add(key(1, 1, {0xffff1, 0x401000}, 0, 2000), {1, 0}));
    EXPECT_TRUE(t.add(key(1, 0, {0xffff1, 0x401000}), {1, 0}));
    EXPECT_TRUE(t.add(key(1, 2, {0xffff1, 0x401000}), {1, 0}));
    EXPECT_TRUE(t.add(key(1, 1, {0xffff1, 0x401001}), {1, 0}));
    EXPECT_TRUE(t.add(key(1, 1, {0xffff1, 0x401000, 0x400000}), {1, 0}));
    EXPECT_TRUE(t.add(key(1, 0, {}), {4, 0})); // a process with no frames at all
    EXPECT_EQ(t.size(), 9u);

    const StackValue v = value_of(t, key(1, 1, {0xffff1, 0x401000}));
    EXPECT_EQ(v.count, 3u);
    EXPECT_EQ(v.weight_ns, 30u);
    EXPECT_EQ(value_of(t, key(1, 0, {})).count, 4u);
    EXPECT_EQ(value_of(t, key(3, 1, {0xffff1, 0x401000})).count, 0u);

    // Iteration: first-seen order, every field as added.
    auto it = t.begin();
    const auto [first, first_value] = *it;
    EXPECT_EQ(first.pid, 1u);
    EXPECT_EQ(first.kernel_len, 1u);
    ASSERT_EQ(first.frames.size(), 2u);
    EXPECT_EQ(first.frames[0], 0xffff1u);
    EXPECT_EQ(first.frames[1], 0x401000u);
    EXPECT_EQ(first_value.count, 3u);
    const auto [second, second_value] = *++it;
    EXPECT_EQ(second.pid, 2u);
    size_t n = 0;
    for (const auto& [k, value] : t) {
        (void)k;
        (void)value;
        ++n;
    }
    EXPECT_EQ(n, 9u);
}

TEST(StackTable, AgreesWithAnOrderedMapOverManyStacksAndGrowths) {
    // Enough stacks for several growths of the index; few distinct frames so that many
    // stacks share prefixes and some share the hash bits kept in a slot.
    std::mt19937_64 rng(42);
    StackTable t;
    std::map<RefKey, std::pair<uint64_t, uint64_t>> ref;
    std::vector<StackKey> seen;
    for (int i = 0; i < 60000; ++i) {
        StackKey k;
        if (!seen.empty() && rng() % 3 == 0) {
            k = seen[rng() % seen.size()];
        } else {
            k.pid = static_cast<uint32_t>(1 + rng() % 50);
            k.tid = static_cast<uint32_t>(rng() % 2);
            k.start_time_ns = rng() % 3;
            const size_t depth = rng() % 40;
            k.kernel_len = static_cast<uint16_t>(rng() % (depth + 1));
            for (size_t d = 0; d < depth; ++d)
                k.frames.push_back(0x400000 + rng() % 8);
            seen.push_back(k);
        }
        const uint64_t w = rng() % 1000;
        ASSERT_TRUE(t.add(k, {1, w}));
        auto& r = ref[ref_key(k.ref())];
        r.first += 1;
        r.second += w;
    }
    ASSERT_EQ(t.size(), ref.size());
    size_t visited = 0;
    for (const auto& [k, v] : t) {
        auto it = ref.find(ref_key(k));
        ASSERT_NE(it, ref.end());
        EXPECT_EQ(v.count, it->second.first);
        EXPECT_EQ(v.weight_ns, it->second.second);
        ++visited;
    }
    EXPECT_EQ(visited, ref.size());
}

TEST(StackTable, RefusesNewStacksPastItsLimitButStillCountsKnownOnes) {
    StackTable t;
    EXPECT_TRUE(t.add(key(1, 0, {1}).ref(), {1, 0}, 2));
    EXPECT_TRUE(t.add(key(1, 0, {2}).ref(), {1, 0}, 2));
    EXPECT_FALSE(t.add(key(1, 0, {3}).ref(), {1, 0}, 2));
    EXPECT_TRUE(t.add(key(1, 0, {1}).ref(), {1, 0}, 2));
    EXPECT_EQ(t.size(), 2u);
    EXPECT_EQ(value_of(t, key(1, 0, {1})).count, 2u);
    EXPECT_EQ(value_of(t, key(1, 0, {3})).count, 0u);

    // More frames on one side than a record can carry: refused, not truncated.
    std::vector<uint64_t> deep(StackTable::kMaxFramesPerSide + 1, 0x401000);
    EXPECT_FALSE(t.add(key(1, 0, deep), {1, 0}));
    EXPECT_EQ(t.size(), 2u);
}
