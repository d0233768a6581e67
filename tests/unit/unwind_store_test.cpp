// The unwind-table store without the kernel: a fake TableMaps records what would be in
// the BPF maps, and a lookup written like the BPF walker's (bpf/lib/hp_unwind.h) reads
// it back. The process is this test itself (real /proc, real ELF files, real CFI).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <vector>

#include "unwind/builders.h"
#include "unwind/store.h"
#include "unwind/table.h"

namespace {

using namespace hostprof::unwind;

class FakeMaps final : public TableMaps {
  public:
    explicit FakeMaps(uint32_t rows) : rows_(rows) {}
    bool set_mapping(const hp_unw_mapping_key& k, const hp_unw_mapping& v) override {
        mappings[key_of(k)] = v;
        return true;
    }
    bool delete_mapping(const hp_unw_mapping_key& k) override {
        return mappings.erase(key_of(k)) == 1;
    }
    bool set_page(const hp_unw_page_key& k, const hp_unw_page& v) override {
        pages[{k.table, k.page}] = v;
        return true;
    }
    bool delete_page(const hp_unw_page_key& k) override {
        return pages.erase({k.table, k.page}) == 1;
    }
    bool write_rows(uint32_t first, const hp_unw_row* r, size_t n) override {
        if (first + n > rows_)
            return false;
        for (size_t i = 0; i < n; ++i)
            rows[first + i] = r[i];
        return true;
    }
    uint32_t row_capacity() const override { return rows_; }
    bool set_python(uint32_t pid, const hp_py_proc& v) override {
        python[pid] = v;
        return true;
    }
    bool delete_python(uint32_t pid) override { return python.erase(pid) == 1; }

    // The walker's lookup: the longest prefix holding {pid, addr}.
    std::optional<hp_unw_mapping> lookup(uint32_t pid, uint64_t addr) const {
        std::optional<hp_unw_mapping> best;
        uint32_t best_len = 0;
        for (const auto& [k, v] : mappings) {
            const auto& [len, kpid, kaddr] = k;
            if (kpid != pid || len < 32 || len <= best_len)
                continue;
            const uint32_t bits = len - 32;
            const uint64_t mask = bits == 0 ? 0 : ~0ULL << (64 - bits);
            if ((addr & mask) == (kaddr & mask)) {
                best = v;
                best_len = len;
            }
        }
        return best;
    }
    // The row for an address, as the walker finds it (nullopt: no page).
    std::optional<hp_unw_row> row(const hp_unw_mapping& m, uint64_t addr) const {
        const uint64_t rel = addr - m.bias;
        auto p = pages.find({m.table, static_cast<uint32_t>(rel >> HP_UNW_PAGE_SHIFT)});
        if (p == pages.end())
            return std::nullopt;
        const uint16_t off = static_cast<uint16_t>(rel & (HP_UNW_PAGE_SIZE - 1));
        uint32_t lo = 0, hi = p->second.count;
        while (hi - lo > 1) {
            const uint32_t mid = lo + (hi - lo) / 2;
            if (rows.at(p->second.first + mid).pc_lo <= off)
                lo = mid;
            else
                hi = mid;
        }
        return rows.at(p->second.first + lo);
    }

    using Key = std::tuple<uint32_t, uint32_t, uint64_t>; // prefixlen, pid, addr
    static Key key_of(const hp_unw_mapping_key& k) {
        return {k.prefixlen, __builtin_bswap32(k.pid), __builtin_bswap64(k.addr)};
    }
    std::map<Key, hp_unw_mapping> mappings;
    std::map<std::pair<uint32_t, uint32_t>, hp_unw_page> pages;
    std::map<uint32_t, hp_unw_row> rows;
    std::map<uint32_t, hp_py_proc> python;

  private:
    uint32_t rows_;
};

TEST(UnwindStore, MappingKeysCoverTheRangeExactly) {
    std::mt19937_64 rng(7);
    for (int i = 0; i < 2000; ++i) {
        const uint64_t start = (rng() & 0x7fffffffffffULL) & ~0xfffULL;
        const uint64_t end = start + ((rng() % (64ULL << 20)) & ~0xfffULL) + 0x1000;
        auto keys = mapping_keys(42, start, end);
        ASSERT_LE(keys.size(), 128u);
        // Sorted, adjacent, aligned blocks from start to end.
        uint64_t at = start;
        for (const auto& k : keys) {
            EXPECT_EQ(__builtin_bswap32(k.pid), 42u);
            const uint64_t a = __builtin_bswap64(k.addr);
            const uint32_t bits = 96 - k.prefixlen;
            ASSERT_EQ(a, at);
            ASSERT_EQ(a & ((1ULL << bits) - 1), 0u) << "unaligned block";
            at += 1ULL << bits;
        }
        EXPECT_EQ(at, end);
    }
}

TEST(UnwindStore, PackedLookupEqualsRowLookup) {
    // Rules spanning several pages, a NONE gap, rows at page starts and ends.
    std::vector<Row> rows;
    std::mt19937 rng(3);
    uint64_t pc = 0x1000;
    for (int i = 0; i < 5000; ++i) {
        Row r;
        r.pc = pc;
        r.kind = static_cast<uint8_t>(i % 50 == 0 ? HP_UNW_NONE : HP_UNW_CFA_RSP);
        r.cfa_off = static_cast<int16_t>(8 + 8 * (rng() % 8));
        rows.push_back(r);
        pc += 1 + rng() % (i % 97 == 0 ? 300000 : 200);
    }
    normalize(rows);
    const PackedTable t = pack(rows);
    for (uint64_t a = rows.front().pc; a < pc; a += 1 + rng() % 97) {
        const Row* want = find(rows, a);
        const hp_unw_row* got = find_packed(t, a);
        ASSERT_NE(want, nullptr);
        if (got == nullptr) {
            EXPECT_EQ(want->kind, HP_UNW_NONE) << std::hex << a;
            continue;
        }
        EXPECT_EQ(got->kind, want->kind) << std::hex << a;
        EXPECT_EQ(got->cfa_off, want->cfa_off) << std::hex << a;
    }
}

// A function of this binary whose rule the store must give.
__attribute__((noinline)) int probe_function(int x) {
    return x * 3 + 1;
}

TEST(UnwindStore, ThisProcessGetsItsTablesAndLosesThemAtExit) {
    auto owned = std::make_unique<FakeMaps>(1u << 20);
    FakeMaps& maps = *owned;
    StoreOptions o;
    o.builder = default_builder();
    o.worker = false;
    o.unused_ttl_ns = 0;
    Store store(std::move(owned), o);
    const auto pid = static_cast<uint32_t>(::getpid());
    ASSERT_TRUE(store.add_process(pid));
    const StoreStats st = store.stats();
    EXPECT_GE(st.tables_ready, 2u) << "this binary and libc at least";
    EXPECT_EQ(st.build_failures, 0u);
    EXPECT_GT(st.mapping_entries, 0u);

    // This binary's code: a table, and a CFA rule for probe_function's body.
    const auto addr = reinterpret_cast<uint64_t>(&probe_function) + 1;
    auto m = maps.lookup(pid, addr);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->kind, HP_UNW_MAP_TABLE);
    auto row = maps.row(*m, addr);
    ASSERT_TRUE(row.has_value());
    EXPECT_TRUE(row->kind == HP_UNW_CFA_RSP || row->kind == HP_UNW_CFA_RBP) << int(row->kind);
    // libc's too (memcpy is in libc's text).
    const auto libc = reinterpret_cast<uint64_t>(&::memcpy);
    auto ml = maps.lookup(pid, libc);
    ASSERT_TRUE(ml.has_value());
    EXPECT_EQ(ml->kind, HP_UNW_MAP_TABLE);
    EXPECT_NE(ml->table, m->table);
    // Not code: no entry.
    int stack_var = 0;
    EXPECT_FALSE(maps.lookup(pid, reinterpret_cast<uint64_t>(&stack_var)).has_value());

    // A second read replaces the entries, keeps the tables (no rebuild).
    const auto builds = store.stats().builds;
    ASSERT_TRUE(store.add_process(pid));
    EXPECT_EQ(store.stats().builds, builds);
    EXPECT_EQ(store.stats().mapping_entries, maps.mappings.size());

    store.remove_process(pid);
    EXPECT_TRUE(maps.mappings.empty());
    EXPECT_EQ(store.stats().mapping_entries, 0u);
    // Unused with a TTL of 0: evicted at the next call, rows and pages gone.
    store.remove_process(pid);
    EXPECT_EQ(store.stats().tables, 0u);
    EXPECT_EQ(store.stats().rows_used, 0u);
    EXPECT_TRUE(maps.pages.empty());
}

TEST(UnwindStore, TablesLargerThanTheBudgetFallBackToFramePointers) {
    auto owned = std::make_unique<FakeMaps>(64); // far too small for libc
    FakeMaps& maps = *owned;
    StoreOptions o;
    o.builder = default_builder();
    o.worker = false;
    Store store(std::move(owned), o);
    const auto pid = static_cast<uint32_t>(::getpid());
    ASSERT_TRUE(store.add_process(pid));
    EXPECT_GT(store.stats().no_fit, 0u);
    auto ml = maps.lookup(pid, reinterpret_cast<uint64_t>(&::memcpy));
    ASSERT_TRUE(ml.has_value());
    EXPECT_EQ(ml->kind, HP_UNW_MAP_FP);
    EXPECT_LE(store.stats().rows_used, 64u);
}

TEST(UnwindStore, ProcessesGoneFromProcAreForgotten) {
    // A child that exits without the store being told (a lost exit record).
    const pid_t child = ::fork();
    if (child == 0) {
        ::pause();
        ::_exit(0);
    }
    ASSERT_GT(child, 0);
    auto owned = std::make_unique<FakeMaps>(1u << 20);
    FakeMaps& maps = *owned;
    StoreOptions o;
    o.builder = default_builder();
    o.worker = false;
    Store store(std::move(owned), o);
    ASSERT_TRUE(store.add_process(static_cast<uint32_t>(child)));
    EXPECT_GT(maps.mappings.size(), 0u);
    EXPECT_EQ(store.remove_vanished(), 0u); // still there
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    EXPECT_EQ(store.remove_vanished(), 1u);
    EXPECT_TRUE(maps.mappings.empty());
    EXPECT_EQ(store.stats().processes, 0u);
}

TEST(UnwindStore, AVanishedProcessIsCountedNotFatal) {
    StoreOptions o;
    o.builder = default_builder();
    o.worker = false;
    o.proc_root = "/nonexistent-proc";
    Store store(std::make_unique<FakeMaps>(1024), o);
    EXPECT_FALSE(store.add_process(1));
    EXPECT_EQ(store.stats().process_errors, 1u);
}

} // namespace
