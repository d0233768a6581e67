// Layout pins for the BPF ABI (bpf/profile.h) and the decoders' size checks.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "agent/collect/profile_records.h"

using namespace hostprof;

static_assert(sizeof(hp_prof_header) == 24);
static_assert(offsetof(hp_prof_stack, frames) == 96);
static_assert(sizeof(hp_prof_stack) == 96 + (2 * HP_PROF_MAX_FRAMES + HP_PY_MAX_FRAMES) * 8);
static_assert(sizeof(hp_prof_proc) == 56);

namespace {

std::vector<std::byte> stack_bytes(uint16_t k, uint16_t u, size_t trim = 0) {
    hp_prof_stack s{};
    s.hdr.kind = HP_PROF_ON_CPU;
    s.hdr.pid = 42;
    s.hdr.tid = 43;
    s.cgroup_id = 7;
    s.kstack_len = k;
    s.ustack_len = u;
    std::memcpy(s.comm, "worker", 6);
    for (int i = 0; i < k + u && i < 2 * HP_PROF_MAX_FRAMES; ++i)
        s.frames[i] = 0x1000 + static_cast<uint64_t>(i);
    size_t size = offsetof(hp_prof_stack, frames) + (size_t{k} + u) * 8 - trim;
    std::vector<std::byte> out(size);
    std::memcpy(out.data(), &s, std::min(size, sizeof(s)));
    return out;
}

TEST(ProfileRecords, DecodesVariableLengthStack) {
    auto b = stack_bytes(3, 2);
    auto r = decode_stack_record(b);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->pid, 42u);
    EXPECT_EQ(r->tid, 43u);
    EXPECT_EQ(r->comm, "worker");
    ASSERT_EQ(r->kernel_frames.size(), 3u);
    ASSERT_EQ(r->user_frames.size(), 2u);
    EXPECT_EQ(r->kernel_frames[0], 0x1000u);
    EXPECT_EQ(r->user_frames[0], 0x1003u);
    EXPECT_EQ(record_kind(b), HP_PROF_ON_CPU);
}

TEST(ProfileRecords, DropsTheSkippedKernelFrames) {
    auto b = stack_bytes(5, 2);
    const uint16_t skip = 2;
    std::memcpy(b.data() + offsetof(hp_prof_stack, kstack_skip), &skip, sizeof skip);
    auto r = decode_stack_record(b);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->kernel_frames.size(), 3u);
    EXPECT_EQ(r->kernel_frames[0], 0x1002u);
    ASSERT_EQ(r->user_frames.size(), 2u);
    EXPECT_EQ(r->user_frames[0], 0x1005u);
    const uint16_t all = 5; // a tick that came from user mode: no kernel frame left
    std::memcpy(b.data() + offsetof(hp_prof_stack, kstack_skip), &all, sizeof all);
    r = decode_stack_record(b);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->kernel_frames.empty());
    EXPECT_EQ(r->user_frames.size(), 2u);
    const uint16_t too_many = 6;
    std::memcpy(b.data() + offsetof(hp_prof_stack, kstack_skip), &too_many, sizeof too_many);
    EXPECT_FALSE(decode_stack_record(b));
}

// Python frames travel after the user frames and come out spliced into them, in place of
// the interpreter loop's frames (unwind/python_frames.h).
TEST(ProfileRecords, SplicesPythonFramesIntoTheUserStack) {
    hp_prof_stack s{};
    s.hdr.kind = HP_PROF_ON_CPU;
    s.kstack_len = 1;
    s.ustack_len = 3;
    s.pystack_len = 2;
    s.py_eval_lo = 0x5000;
    s.py_eval_hi = 0x6000;
    const uint64_t a = HP_PY_FRAME_MARK | 0xa0, b = HP_PY_FRAME_MARK | HP_PY_FRAME_ENTRY | 0xb0;
    const uint64_t frames[] = {0xffffffff81000000, 0x9000, 0x5100, 0x9100, a, b};
    std::memcpy(s.frames, frames, sizeof frames);
    std::vector<std::byte> bytes(offsetof(hp_prof_stack, frames) + sizeof frames);
    std::memcpy(bytes.data(), &s, bytes.size());
    auto r = decode_stack_record(bytes);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->python_frames, 2u);
    ASSERT_EQ(r->kernel_frames.size(), 1u);
    EXPECT_EQ(std::vector<uint64_t>(r->user_frames.begin(), r->user_frames.end()),
              (std::vector<uint64_t>{0x9000, a, b & ~HP_PY_FRAME_ENTRY, 0x9100}));
    // A record one Python frame short, or with more than the walk takes, is refused.
    bytes.resize(bytes.size() - 8);
    EXPECT_FALSE(decode_stack_record(bytes));
    s.pystack_len = HP_PY_MAX_FRAMES + 1;
    std::vector<std::byte> big(sizeof s);
    std::memcpy(big.data(), &s, sizeof s);
    EXPECT_FALSE(decode_stack_record(big));
}

TEST(ProfileRecords, RejectsTruncatedAndInconsistent) {
    EXPECT_FALSE(decode_stack_record(stack_bytes(3, 2, 8)));         // one frame short
    EXPECT_FALSE(decode_stack_record(stack_bytes(200, 0)));          // more than max frames
    EXPECT_FALSE(decode_stack_record(std::span<const std::byte>())); // empty
    std::vector<std::byte> tiny(4);
    EXPECT_FALSE(record_kind(tiny));
    auto b = stack_bytes(1, 1);
    uint32_t bogus = 99;
    std::memcpy(b.data(), &bogus, 4);
    EXPECT_FALSE(record_kind(b));
    EXPECT_FALSE(decode_stack_record(b));
}

TEST(ProfileRecords, DecodesProcRecord) {
    hp_prof_proc p{};
    p.hdr.kind = HP_PROF_EXIT;
    p.hdr.pid = 9;
    p.start_time_ns = 123;
    std::memcpy(p.comm, "sixteen-chars-xx", 16); // no terminator: must stay in bounds
    std::vector<std::byte> b(sizeof(p));
    std::memcpy(b.data(), &p, sizeof(p));
    auto r = decode_proc_record(b);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->kind, HP_PROF_EXIT);
    EXPECT_EQ(r->comm.size(), 16u);
    b.pop_back();
    EXPECT_FALSE(decode_proc_record(b));
}

} // namespace
