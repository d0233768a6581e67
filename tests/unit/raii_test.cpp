// The owning types close what they own exactly once, and moves transfer ownership.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "common/bpf_handles.h"
#include "common/elf_handle.h"
#include "common/result.h"
#include "common/unique_fd.h"

using namespace hostprof;

namespace {

bool fd_open(int fd) {
    return ::fcntl(fd, F_GETFD) != -1;
}

TEST(UniqueFd, ClosesOnDestruction) {
    int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(raw, 0);
    {
        UniqueFd fd(raw);
        EXPECT_TRUE(fd_open(raw));
    }
    EXPECT_FALSE(fd_open(raw));
}

TEST(UniqueFd, MoveTransfersOwnership) {
    int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    UniqueFd a(raw);
    UniqueFd b(std::move(a));
    EXPECT_FALSE(a.valid()); // NOLINT(bugprone-use-after-move): checking the moved-from state
    EXPECT_EQ(b.get(), raw);
    UniqueFd c;
    c = std::move(b);
    EXPECT_EQ(c.get(), raw);
    EXPECT_TRUE(fd_open(raw));
    c.reset();
    EXPECT_FALSE(fd_open(raw));
}

TEST(UniqueFd, ReleaseGivesUpOwnership) {
    int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    {
        UniqueFd fd(raw);
        EXPECT_EQ(fd.release(), raw);
    }
    EXPECT_TRUE(fd_open(raw));
    ::close(raw);
}

TEST(UniqueFd, SelfMoveAssignKeepsFd) {
    int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    UniqueFd a(raw);
    UniqueFd& alias = a;
    a = std::move(alias);
    EXPECT_TRUE(fd_open(raw));
}

TEST(Result, CarriesValueOrError) {
    Result<int> ok = 5;
    EXPECT_TRUE(ok);
    EXPECT_EQ(*ok, 5);
    Result<int> bad = errno_error("open x", -ENOENT);
    EXPECT_FALSE(bad);
    EXPECT_EQ(bad.error().err, ENOENT);
    EXPECT_NE(bad.error().message().find("open x: No such file"), std::string::npos);
    Status s = Error{0, "plain"};
    EXPECT_EQ(s.error().message(), "plain");
}

TEST(BpfLink, NullIsAnErrorWithErrno) {
    errno = EPERM;
    auto link = take_link(nullptr, "attach thing");
    ASSERT_FALSE(link);
    EXPECT_EQ(link.error().err, EPERM);
}

TEST(ElfFile, OpensOurOwnBinaryAndClosesIt) {
    int before = -1;
    {
        auto elf = ElfFile::open("/proc/self/exe");
        ASSERT_TRUE(elf) << elf.error().message();
        EXPECT_NE(elf->elf(), nullptr);
        before = elf->fd();
        EXPECT_TRUE(fd_open(before));
        ElfFile moved = std::move(elf.value());
        EXPECT_EQ(moved.fd(), before);
    }
    EXPECT_FALSE(fd_open(before));
}

TEST(ElfFile, RejectsNonElfAndNonRegular) {
    char path[] = "/tmp/hostprof-notelf-XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "hello", 5), 5);
    ::close(fd);
    auto e = ElfFile::open(path);
    EXPECT_FALSE(e);
    ::unlink(path);
    auto d = ElfFile::open("/dev/null");
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().message().find("not a regular file"), std::string::npos);
    EXPECT_FALSE(ElfFile::open("/nonexistent"));
}

} // namespace
