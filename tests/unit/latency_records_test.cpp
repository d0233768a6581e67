// Decoders of the latency ring-buffer records: sizes are checked, layouts pinned.
#include <gtest/gtest.h>
#include <linux/types.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "agent/collect/block_collector.h"
#include "agent/collect/latency_records.h"
#include "syscalls.h"

using namespace hostprof;

static_assert(sizeof(hp_blk_event) == 72);
static_assert(sizeof(hp_blk_key) == 16);
static_assert(sizeof(hp_sys_hist) == (HP_SYS_SLOTS + 1) * 8);
static_assert(sizeof(hp_sys_cg_key) == 16);
static_assert(sizeof(hp_sys_err_key) == 8);
static_assert(offsetof(hp_sys_event, frames) == 104);
static_assert(sizeof(hp_sys_event) == 104 + (2 * HP_SYS_MAX_FRAMES + HP_PY_MAX_FRAMES) * 8);

namespace {

std::vector<uint64_t> event_bytes(uint16_t k, uint16_t u, size_t frames_present) {
    std::vector<uint64_t> buf((offsetof(hp_sys_event, frames) / 8) + frames_present);
    hp_sys_event e{};
    e.pid = 42;
    e.tid = 43;
    e.duration_ns = 50'000'000;
    e.start_time_ns = 777;
    e.ret = -11;
    e.nr = 0;
    e.kstack_len = k;
    e.ustack_len = u;
    std::memcpy(e.comm, "slowpoke", 9);
    std::memcpy(buf.data(), &e, offsetof(hp_sys_event, frames));
    for (size_t i = 0; i < frames_present; ++i)
        buf[offsetof(hp_sys_event, frames) / 8 + i] = 0x1000 + i;
    return buf;
}

std::span<const std::byte> bytes(const std::vector<uint64_t>& v, size_t n) {
    return {reinterpret_cast<const std::byte*>(v.data()), n};
}

} // namespace

TEST(SyscallOutlierDecoder, DecodesFieldsAndSplitsStacks) {
    auto buf = event_bytes(2, 3, 5);
    auto r = decode_syscall_outlier(bytes(buf, buf.size() * 8));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->pid, 42u);
    EXPECT_EQ(r->tid, 43u);
    EXPECT_EQ(r->syscall, "read");
    EXPECT_EQ(r->ret, -11);
    EXPECT_EQ(r->duration_ns, 50'000'000u);
    EXPECT_EQ(r->comm, "slowpoke");
    EXPECT_EQ(r->start_time_ns, 777u);
    ASSERT_EQ(r->kernel_frames.size(), 2u);
    ASSERT_EQ(r->user_frames.size(), 3u);
    EXPECT_EQ(r->kernel_frames[0], 0x1000u);
    EXPECT_EQ(r->user_frames[0], 0x1002u);
}

TEST(SyscallOutlierDecoder, RejectsShortAndInconsistentRecords) {
    auto buf = event_bytes(2, 3, 5);
    EXPECT_FALSE(decode_syscall_outlier(bytes(buf, buf.size() * 8 - 8))); // a frame short
    EXPECT_FALSE(decode_syscall_outlier(bytes(buf, 40)));                 // header cut
    EXPECT_FALSE(decode_syscall_outlier({}));
    auto big = event_bytes(HP_SYS_MAX_FRAMES + 1, 0, 0);
    EXPECT_FALSE(decode_syscall_outlier(bytes(big, big.size() * 8)));
    auto bad_nr = event_bytes(0, 0, 0);
    reinterpret_cast<hp_sys_event*>(bad_nr.data())->nr = HP_SYS_MAX_NR;
    EXPECT_FALSE(decode_syscall_outlier(bytes(bad_nr, bad_nr.size() * 8)));
    // Unaligned data is refused rather than read through a misaligned struct.
    std::vector<uint64_t> shifted(buf.size() + 1);
    std::memcpy(reinterpret_cast<std::byte*>(shifted.data()) + 4, buf.data(), buf.size() * 8);
    EXPECT_FALSE(decode_syscall_outlier(
        {reinterpret_cast<const std::byte*>(shifted.data()) + 4, buf.size() * 8}));
}

TEST(SlowIoDecoder, DecodesAndRejectsShortRecords) {
    std::vector<uint64_t> buf(sizeof(hp_blk_event) / 8);
    hp_blk_event e{};
    e.service_ns = 123;
    e.major = 254;
    e.op = HP_BLK_OP_FLUSH;
    e.bytes = 4096;
    e.pid = 7;
    std::memcpy(e.comm, "dd", 3);
    std::memcpy(buf.data(), &e, sizeof(e));
    auto r = decode_slow_io(bytes(buf, sizeof(e)));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->service_ns, 123u);
    EXPECT_EQ(r->major, 254u);
    EXPECT_EQ(r->op, "flush");
    EXPECT_EQ(r->bytes, 4096u);
    EXPECT_EQ(r->comm, "dd");
    EXPECT_FALSE(decode_slow_io(bytes(buf, sizeof(e) - 1)));
    EXPECT_EQ(block_op_name(HP_BLK_OP_OTHER), "other");
    EXPECT_EQ(block_op_name(42), "other");
}

TEST(BlockDeviceNames, ReadsDevFilesUnderAGivenSysRoot) {
    auto root = std::filesystem::temp_directory_path() /
                ("hostprof-sysblock-" + std::to_string(::getpid()));
    std::filesystem::create_directories(root / "block/vda");
    std::filesystem::create_directories(root / "block/nvme0n1");
    std::filesystem::create_directories(root / "block/broken");
    std::ofstream(root / "block/vda/dev") << "254:0\n";
    std::ofstream(root / "block/nvme0n1/dev") << "259:0\n";
    std::ofstream(root / "block/broken/dev") << "garbage\n";
    auto names = block_device_names(root.string());
    std::filesystem::remove_all(root);
    ASSERT_EQ(names.size(), 2u);
    EXPECT_EQ((names[{254, 0}]), "vda");
    EXPECT_EQ((names[{259, 0}]), "nvme0n1");
    EXPECT_TRUE(block_device_names("/nonexistent").empty());
}
