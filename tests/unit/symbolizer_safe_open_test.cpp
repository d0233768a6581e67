// SafeOpener (symbolizer/safe_open.h) against a real directory tree used as a process root:
// symlinks out of it stay inside, FIFOs and huge files are refused without blocking or
// reading, magic links are refused, and the fallback walk (no openat2) is stricter still.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "symbolizer/safe_open.h"

namespace hostprof::sym {
namespace {

namespace fs = std::filesystem;

class SymbolizerSafeOpen : public ::testing::Test {
  protected:
    void SetUp() override {
        base_ = fs::temp_directory_path() / ("hostprof-safeopen-" + std::to_string(::getpid()));
        fs::remove_all(base_);
        root_ = base_ / "root";
        outside_ = base_ / "outside";
        fs::create_directories(root_ / "etc");
        fs::create_directories(root_ / "tmp");
        fs::create_directories(outside_);
        write(outside_ / "secret", "host secret\n");
        write(root_ / "etc" / "target", "inside\n");
        // The same name as the host file, inside the root: what an in-root symlink reaches.
        fs::create_directories(root_ / base_.relative_path() / "outside");
        write(root_ / base_.relative_path() / "outside" / "secret", "in-root twin\n");
        fs::create_symlink(outside_ / "secret", root_ / "tmp" / "abs"); // absolute
        fs::create_symlink("../../../../../../../../" + (outside_ / "secret").string(),
                           root_ / "tmp" / "rel");               // climbs out
        fs::create_symlink("/etc/target", root_ / "tmp" / "in"); // stays in
        fs::create_symlink("/nowhere", root_ / "tmp" / "dangling");
        ASSERT_EQ(::mkfifo((root_ / "tmp" / "fifo").c_str(), 0600), 0);
        {
            int fd = ::open((root_ / "tmp" / "huge").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
            ASSERT_GE(fd, 0);
            ASSERT_EQ(::ftruncate(fd, 10ll << 30), 0); // 10 GiB, sparse
            ::close(fd);
        }
        rootfd_ = SafeOpener::open_root(root_.string());
        ASSERT_TRUE(rootfd_);
    }
    void TearDown() override { fs::remove_all(base_); }

    static void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }
    static std::string content(const OpenedFile& f) {
        std::string out;
        EXPECT_TRUE(read_all(f.fd.get(), 1 << 20, out));
        return out;
    }

    fs::path base_, root_, outside_;
    UniqueFd rootfd_;
};

TEST_F(SymbolizerSafeOpen, SymlinksResolveInsideTheRootNeverToHostFiles) {
    SafeOpener op;
    ASSERT_TRUE(op.uses_openat2()) << "openat2 exists on every kernel this runs on (5.6+)";
    OpenedFile f = op.open_in_root(rootfd_.get(), "/tmp/in", 1 << 20);
    ASSERT_TRUE(f) << open_refusal_name(f.refusal);
    EXPECT_EQ(content(f), "inside\n");
    // The absolute and the climbing symlink both land on the twin inside the root.
    for (const char* p : {"/tmp/abs", "/tmp/rel", "tmp/rel"}) {
        OpenedFile g = op.open_in_root(rootfd_.get(), p, 1 << 20);
        ASSERT_TRUE(g) << p << ": " << open_refusal_name(g.refusal);
        EXPECT_EQ(content(g), "in-root twin\n") << p;
    }
    // Without the twin they find nothing (and never the host file).
    fs::remove(root_ / base_.relative_path() / "outside" / "secret");
    for (const char* p : {"/tmp/abs", "/tmp/rel", "/tmp/dangling", "/../../../../etc/target/.."}) {
        OpenedFile g = op.open_in_root(rootfd_.get(), p, 1 << 20);
        EXPECT_FALSE(g) << p;
        EXPECT_EQ(g.refusal, OpenRefusal::Missing) << p;
    }
    // ".." cannot leave the root either.
    OpenedFile up = op.open_in_root(rootfd_.get(), "/../../../../etc/target", 1 << 20);
    ASSERT_TRUE(up);
    EXPECT_EQ(content(up), "inside\n");
}

TEST_F(SymbolizerSafeOpen, FifoDirectoryAndHugeFileAreRefusedAndCounted) {
    SafeOpener op;
    OpenedFile fifo = op.open_in_root(rootfd_.get(), "/tmp/fifo", 1 << 20); // must not block
    EXPECT_FALSE(fifo);
    EXPECT_EQ(fifo.refusal, OpenRefusal::NotRegular);
    OpenedFile dir = op.open_in_root(rootfd_.get(), "/etc", 1 << 20);
    EXPECT_EQ(dir.refusal, OpenRefusal::NotRegular);
    OpenedFile huge = op.open_in_root(rootfd_.get(), "/tmp/huge", 64 << 20);
    EXPECT_FALSE(huge);
    EXPECT_EQ(huge.refusal, OpenRefusal::TooLarge);
    OpenedFile ok = op.open_in_root(rootfd_.get(), "/etc/target", 1 << 20);
    EXPECT_TRUE(ok);
    OpenCounts c = op.counts();
    EXPECT_EQ(c.opened, 1u);
    EXPECT_EQ(c.by_reason[static_cast<int>(OpenRefusal::NotRegular)], 2u);
    EXPECT_EQ(c.by_reason[static_cast<int>(OpenRefusal::TooLarge)], 1u);
    EXPECT_EQ(c.fallback_walks, 0u);
    // The same checks on trusted paths (operator paths, map_files links).
    EXPECT_EQ(op.open_trusted((root_ / "tmp" / "fifo").string(), 1 << 20).refusal,
              OpenRefusal::NotRegular);
    EXPECT_EQ(op.open_trusted("/dev/zero", 1 << 20).refusal, OpenRefusal::NotRegular);
}

TEST_F(SymbolizerSafeOpen, FinalSymlinkRefusedWhenAskedAndMagicLinksAlways) {
    SafeOpener op;
    OpenedFile f = op.open_in_root(rootfd_.get(), "/tmp/in", 1 << 20, Follow::NoFinalSymlink);
    EXPECT_FALSE(f);
    EXPECT_EQ(f.refusal, OpenRefusal::Symlink);
    // /proc/self/fd/N is a magic link: refused even with the host's "/" as root.
    UniqueFd host = SafeOpener::open_root("/");
    UniqueFd target(::open((root_ / "etc" / "target").c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(target);
    OpenedFile m =
        op.open_in_root(host.get(), "/proc/self/fd/" + std::to_string(target.get()), 1 << 20);
    EXPECT_FALSE(m);
    EXPECT_EQ(m.refusal, OpenRefusal::Symlink);
    // A trusted path may follow it (PROC/PID/map_files is such a link).
    EXPECT_TRUE(op.open_trusted("/proc/self/fd/" + std::to_string(target.get()), 1 << 20));
}

TEST_F(SymbolizerSafeOpen, FallbackWalkRefusesEverySymlinkAndDotDot) {
    SafeOpener op(/*force_fallback=*/true);
    EXPECT_FALSE(op.uses_openat2());
    OpenedFile ok = op.open_in_root(rootfd_.get(), "//etc/./target", 1 << 20);
    ASSERT_TRUE(ok) << open_refusal_name(ok.refusal);
    EXPECT_EQ(content(ok), "inside\n");
    for (const char* p : {"/tmp/in", "/tmp/abs", "/tmp/rel"})
        EXPECT_EQ(op.open_in_root(rootfd_.get(), p, 1 << 20).refusal, OpenRefusal::Symlink) << p;
    EXPECT_EQ(op.open_in_root(rootfd_.get(), "/tmp/../etc/target", 1 << 20).refusal,
              OpenRefusal::Escape);
    EXPECT_EQ(op.open_in_root(rootfd_.get(), "/tmp/fifo", 1 << 20).refusal,
              OpenRefusal::NotRegular);
    EXPECT_EQ(op.open_in_root(rootfd_.get(), "/tmp/huge", 1 << 20).refusal, OpenRefusal::TooLarge);
    EXPECT_EQ(op.open_in_root(rootfd_.get(), "/etc/target/x", 1 << 20).refusal,
              OpenRefusal::Missing);
    EXPECT_EQ(op.open_in_root(rootfd_.get(), "/", 1 << 20).refusal, OpenRefusal::NotRegular);
    EXPECT_EQ(op.counts().fallback_walks, 9u);
}

} // namespace
} // namespace hostprof::sym
