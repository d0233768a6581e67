// Output buffers of the renderers: the writer pool's reuse and bounds, prefaulting,
// the size hint and the string stream buffer.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <ostream>
#include <string>
#include <vector>

#include "exporters/output.h"
#include "exporters/proto_writer.h"

namespace hostprof {
namespace {

const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));

size_t resident_pages(void* p, size_t n) {
    std::vector<unsigned char> v((n + page - 1) / page);
    if (::mincore(p, n, v.data()) != 0)
        return SIZE_MAX;
    size_t resident = 0;
    for (unsigned char c : v)
        resident += c & 1;
    return resident;
}

// 64 fresh anonymous pages, none resident until touched.
struct FreshPages {
    static constexpr size_t kPages = 64;
    char* p = static_cast<char*>(
        ::mmap(nullptr, kPages* page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    ~FreshPages() {
        if (p != MAP_FAILED)
            ::munmap(p, kPages * page);
    }
};

TEST(ExportersOutput, PrefaultMapsEveryPageAndKeepsContents) {
    FreshPages m;
    ASSERT_NE(m.p, MAP_FAILED);
    char* p = m.p;
    const size_t n = FreshPages::kPages * page;
    p[0] = 'a';
    p[10 * page + 3] = 'b';
    EXPECT_EQ(resident_pages(p, n), 2u);
    prefault(p, n);
    EXPECT_EQ(resident_pages(p, n), 64u);
    EXPECT_EQ(p[0], 'a');
    EXPECT_EQ(p[10 * page + 3], 'b');
    EXPECT_EQ(p[20 * page], 0);
}

TEST(ExportersOutput, PrefaultLeavesSmallRangesAndPartialPagesAlone) {
    FreshPages m;
    ASSERT_NE(m.p, MAP_FAILED);
    char* p = m.p;
    const size_t n = FreshPages::kPages * page;
    prefault(p, 8 * page); // below the 64 KiB minimum (with 4 KiB pages)
    EXPECT_EQ(resident_pages(p, n), 0u);
    prefault(p + 1, 32 * page); // whole pages inside the range only: 1..31
    EXPECT_EQ(resident_pages(p, page), 0u);
    EXPECT_EQ(resident_pages(p + page, 31 * page), 31u);
    EXPECT_EQ(resident_pages(p + 32 * page, 32 * page), 0u);
}

TEST(ExportersOutput, ReservePrefaultedKeepsWhatTheStringHolds) {
    std::string s = "already here";
    reserve_prefaulted(s, 1 << 20);
    EXPECT_GE(s.capacity(), size_t{1} << 20);
    EXPECT_EQ(s, "already here");
    const size_t cap = s.capacity();
    reserve_prefaulted(s, 10); // never shrinks
    EXPECT_EQ(s.capacity(), cap);
}

TEST(ExportersOutput, SizeHintIsTheLastSizePlusAnEighth) {
    SizeHint h;
    EXPECT_EQ(h.next(), 0u);
    h.update(8000);
    EXPECT_EQ(h.next(), 9000u);
    h.update(16);
    EXPECT_EQ(h.next(), 18u);
}

TEST(ExportersOutput, StringAppendBufAppendsEverythingWritten) {
    std::string out = "head:";
    StringAppendBuf buf(out);
    std::ostream os(&buf);
    os << "text " << 42 << ' ' << 1.5 << '\n' << std::string(5000, 'x');
    os.flush();
    EXPECT_TRUE(os.good());
    EXPECT_EQ(out, "head:text 42 1.5\n" + std::string(5000, 'x'));
}

TEST(ExportersOutput, WriterPoolHandsBackTheSameBufferCleared) {
    proto::WriterPool pool(2, 1 << 20);
    const char* first = nullptr;
    {
        proto::WriterPool::Lease w(pool);
        w->bytes(std::string(100000, 'a'));
        first = w->view().data();
    }
    EXPECT_GE(pool.kept_bytes(), 100000u);
    proto::WriterPool::Lease w(pool);
    EXPECT_TRUE(w->empty());
    EXPECT_GE(w->capacity(), 100000u);
    w->bytes("b");
    EXPECT_EQ(w->view().data(), first); // no new allocation
    EXPECT_EQ(pool.kept_bytes(), 0u);
}

TEST(ExportersOutput, WriterPoolConcurrentLeasesGetDistinctWriters) {
    proto::WriterPool pool(2, 1 << 20);
    proto::WriterPool::Lease a(pool), b(pool);
    a->bytes("a");
    b->bytes("b");
    EXPECT_NE(&*a, &*b);
    EXPECT_EQ(a->view(), "a");
    EXPECT_EQ(b->view(), "b");
}

TEST(ExportersOutput, WriterPoolKeepsNoMoreThanItsBounds) {
    proto::WriterPool pool(2, 1 << 20);
    {
        proto::WriterPool::Lease a(pool), b(pool), c(pool);
        a->bytes("a");
        b->bytes("b");
        c->bytes("c");
    }
    // Three returned, two kept (256-byte buffers each).
    EXPECT_EQ(pool.kept_bytes(), 512u);
    {
        proto::WriterPool::Lease big(pool);
        big->bytes(std::string(2 << 20, 'x')); // over max_bytes: freed when returned
    }
    EXPECT_EQ(pool.kept_bytes(), 256u);
}

} // namespace
} // namespace hostprof
