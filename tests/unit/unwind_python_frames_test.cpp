// Python frames in stacks: the splice of a record's Python frames into its native stack
// (unwind/python_frames.h), the store pointing the BPF walk at CPython processes, and the
// names and lines read back for frames (unwind/python_symbols.h), on live python3 children.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "unwind/builders.h"
#include "unwind/python.h"
#include "unwind/python_frames.h"
#include "unwind/python_symbols.h"
#include "unwind/store.h"

using namespace hostprof;
using namespace hostprof::unwind;

namespace {

const char* kPython = "/usr/bin/python3.11";

uint64_t py(uint64_t code, uint64_t instr, bool entry = false) {
    return HP_PY_FRAME_MARK | (entry ? HP_PY_FRAME_ENTRY : 0) | (instr << HP_PY_FRAME_INSTR_SHIFT) |
           code;
}

std::vector<uint64_t> splice(const std::vector<uint64_t>& native, const std::vector<uint64_t>& p,
                             uint64_t lo, uint64_t hi, size_t cap = 300) {
    std::vector<uint64_t> out(cap);
    out.resize(splice_python_frames(native, p, lo, hi, out));
    return out;
}

// A FakeMaps that keeps only what the Python half of the store writes.
class PyMaps final : public TableMaps {
  public:
    bool set_mapping(const hp_unw_mapping_key&, const hp_unw_mapping&) override { return true; }
    bool delete_mapping(const hp_unw_mapping_key&) override { return true; }
    bool set_page(const hp_unw_page_key&, const hp_unw_page&) override { return true; }
    bool delete_page(const hp_unw_page_key&) override { return true; }
    bool write_rows(uint32_t, const hp_unw_row*, size_t) override { return true; }
    uint32_t row_capacity() const override { return 1u << 24; }
    bool set_python(uint32_t pid, const hp_py_proc& v) override {
        python[pid] = v;
        return true;
    }
    bool delete_python(uint32_t pid) override { return python.erase(pid) == 1; }
    std::map<uint32_t, hp_py_proc> python;
};

struct Child {
    pid_t pid = -1;
    ~Child() {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    }
};

pid_t spawn(const std::string& path, const std::vector<std::string>& args) {
    const pid_t pid = fork();
    if (pid == 0) {
        std::vector<char*> argv{const_cast<char*>(path.c_str())};
        for (const auto& a : args)
            argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        execv(path.c_str(), argv.data());
        _exit(127);
    }
    return pid;
}

std::string real_python() {
    char real[PATH_MAX];
    if (access(kPython, X_OK) != 0 || realpath(kPython, real) == nullptr)
        return {};
    return real;
}

// A store that builds in the caller's thread and looks for interpreters.
StoreOptions python_store_options() {
    StoreOptions o;
    o.builder = default_builder();
    o.worker = false;
    o.python = true;
    return o;
}

std::string self_dir() {
    return std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
}

} // namespace

TEST(PythonFrames, Encoding) {
    const uint64_t w = py(0x7f0012345670, 21, true);
    EXPECT_TRUE(is_python_frame(w));
    EXPECT_FALSE(is_python_frame(0x7f0012345670));
    EXPECT_EQ(python_frame_code(w), 0x7f0012345670u);
    EXPECT_EQ(python_frame_instr_bytes(w), 42);
    EXPECT_EQ(python_frame_instr_bytes(py(0x1000, HP_PY_FRAME_INSTR_UNKNOWN)), -1);
}

TEST(PythonFrames, GroupsReplaceTheInterpreterLoopFrames) {
    const uint64_t lo = 0x5000, hi = 0x6000;
    // leaf C function <- eval (runs A, B, C) <- a C builtin <- eval (runs D, E) <- main
    const std::vector<uint64_t> native{0x9000, 0x5100, 0x9100, 0x5200, 0x9200};
    const std::vector<uint64_t> frames{py(0xa0, 1), py(0xb0, 2), py(0xc0, 3, true), py(0xd0, 4),
                                       py(0xe0, 5, true)};
    const std::vector<uint64_t> want{0x9000, py(0xa0, 1), py(0xb0, 2), py(0xc0, 3),
                                     0x9100, py(0xd0, 4), py(0xe0, 5), 0x9200};
    EXPECT_EQ(splice(native, frames, lo, hi), want);
}

TEST(PythonFrames, TheLeafIsAnExactPcReturnAddressesAreAfterTheCall) {
    const uint64_t lo = 0x5000, hi = 0x6000;
    // The leaf at hi is outside; a return address at hi is the last call's (hi - 1).
    EXPECT_EQ(splice({0x6000, 0x9000}, {py(0xa0, 1, true)}, lo, hi),
              (std::vector<uint64_t>{0x6000, 0x9000, py(0xa0, 1)}));
    EXPECT_EQ(splice({0x9000, 0x6000}, {py(0xa0, 1, true)}, lo, hi),
              (std::vector<uint64_t>{0x9000, py(0xa0, 1)}));
    // A leaf at lo is inside.
    EXPECT_EQ(splice({0x5000, 0x9000}, {py(0xa0, 1, true)}, lo, hi),
              (std::vector<uint64_t>{py(0xa0, 1), 0x9000}));
}

TEST(PythonFrames, LeftoversGoAtTheRootAndSurplusLoopsStay) {
    const uint64_t lo = 0x5000, hi = 0x6000;
    // A native stack cut short (one eval frame for two groups): the second group at the root.
    EXPECT_EQ(splice({0x9000, 0x5100}, {py(0xa0, 1, true), py(0xb0, 2, true)}, lo, hi),
              (std::vector<uint64_t>{0x9000, py(0xa0, 1), py(0xb0, 2)}));
    // An unknown loop (0, 0): every Python frame at the root, in order.
    EXPECT_EQ(splice({0x9000, 0x5100}, {py(0xa0, 1), py(0xb0, 2, true)}, 0, 0),
              (std::vector<uint64_t>{0x9000, 0x5100, py(0xa0, 1), py(0xb0, 2)}));
    // More eval frames than groups: the native ones stay.
    EXPECT_EQ(splice({0x5100, 0x5200}, {py(0xa0, 1, true)}, lo, hi),
              (std::vector<uint64_t>{py(0xa0, 1), 0x5200}));
    // No Python frames: the native stack as it is; a group without ENTRY takes the rest.
    EXPECT_EQ(splice({0x9000, 0x5100}, {}, lo, hi), (std::vector<uint64_t>{0x9000, 0x5100}));
    EXPECT_EQ(splice({0x5100, 0x5200}, {py(0xa0, 1), py(0xb0, 2)}, lo, hi),
              (std::vector<uint64_t>{py(0xa0, 1), py(0xb0, 2), 0x5200}));
    // Bounded by the output.
    EXPECT_EQ(splice({0x9000, 0x5100, 0x9100}, {py(0xa0, 1), py(0xb0, 2, true)}, lo, hi, 2),
              (std::vector<uint64_t>{0x9000, py(0xa0, 1)}));
}

// The store finds Debian's python3 in a live child, points the walk at its _PyRuntime and
// interpreter loop, and PythonSymbols names the frames a walk would report.
TEST(PythonFrames, StoreAndSymbolsOnALivePython) {
    const std::string real = real_python();
    if (real.empty())
        GTEST_SKIP() << kPython << " not installed";
    auto rt = detect_python(real);
    ASSERT_TRUE(rt.ok()) << rt.error().message();
    ASSERT_GT(rt->eval_size, 0u) << "_PyEval_EvalFrameDefault in .dynsym";

    const std::string script = "def top():\n"      // 1
                               "    middle()\n"    // 2
                               "def middle():\n"   // 3
                               "    leaf()\n"      // 4
                               "def leaf():\n"     // 5
                               "    while True:\n" // 6
                               "        pass\n"    // 7
                               "top()\n";          // 8
    Child c;
    c.pid = spawn(real, {"-c", script});
    ASSERT_GT(c.pid, 0);
    const auto pid = static_cast<uint32_t>(c.pid);

    auto owned = std::make_unique<PyMaps>();
    PyMaps& maps = *owned;
    Store store(std::move(owned), python_store_options());
    // python3's own mapping appears once exec is done.
    uint64_t bias = 0;
    for (int i = 0; i < 200; ++i) {
        auto b = python_bias(*rt, c.pid, real);
        if (b) {
            bias = *b;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(store.add_process(pid));
    ASSERT_EQ(maps.python.count(pid), 1u);
    const hp_py_proc& v = maps.python.at(pid);
    EXPECT_EQ(v.runtime, rt->runtime_addr + bias);
    EXPECT_EQ(v.eval_lo, rt->eval_addr + bias);
    EXPECT_EQ(v.eval_hi, rt->eval_addr + rt->eval_size + bias);
    EXPECT_EQ(v.version >> 8, (3u << 8) | 11u);
    EXPECT_EQ(v.frame_code, rt->offsets.frame_code);
    EXPECT_EQ(v.tstate_native_thread_id, rt->offsets.tstate_native_thread_id);
    EXPECT_EQ(store.stats().python_processes, 1u);
    const PythonProcess pp = store.python(pid);
    ASSERT_TRUE(pp.runtime);
    EXPECT_EQ(pp.bias, bias);

    // Frames as the BPF walk reports them, from the reader; then named by PythonSymbols.
    PythonSymbols symbols({.lookup = [&](uint32_t p) { return store.python(p); }});
    ProcessVmMemory mem(c.pid);
    std::vector<uint64_t> words;
    for (int i = 0; i < 500 && words.size() != 4; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        PythonReader reader(*rt, bias, mem);
        auto threads = reader.threads();
        if (!threads || threads->empty())
            continue;
        auto frames = reader.frames(threads->back().current_frame);
        if (!frames)
            continue;
        words.clear();
        for (const PythonFrame& f : *frames) {
            const uint64_t idx =
                f.instr < 0 ? HP_PY_FRAME_INSTR_UNKNOWN : static_cast<uint64_t>(f.instr) / 2;
            words.push_back(py(f.code, idx, f.is_entry));
        }
    }
    ASSERT_EQ(words.size(), 4u);
    symbols.note(pid, words);
    EXPECT_EQ(symbols.stats().code_reads, 4u);
    symbols.note(pid, words); // cached
    EXPECT_EQ(symbols.stats().code_reads, 4u);
    const char* names[] = {"leaf", "middle", "top", "<module>"};
    const int lines[] = {6, 4, 2, 8};
    for (size_t i = 0; i < 4; ++i) {
        auto s = symbols.resolve(pid, words[i]);
        ASSERT_TRUE(s.has_value()) << i;
        EXPECT_EQ(s->function, names[i]);
        EXPECT_EQ(s->file, "<string>");
        if (i == 0)
            EXPECT_TRUE(s->line == 6 || s->line == 7) << s->line;
        else
            EXPECT_EQ(s->line, lines[i]) << names[i];
    }

    // The process exits: its codes stay until released, then are unknown.
    kill(c.pid, SIGKILL);
    waitpid(c.pid, nullptr, 0);
    c.pid = -1;
    EXPECT_TRUE(symbols.resolve(pid, words[1]).has_value()) << "cached past the exit";
    symbols.remove_process(pid);
    store.remove_process(pid);
    EXPECT_FALSE(symbols.resolve(pid, words[1]).has_value());
    EXPECT_TRUE(maps.python.empty());
    EXPECT_EQ(store.stats().python_processes, 0u);
}

// A CPython the offsets table does not know is counted by version, never walked.
TEST(PythonFrames, UnsupportedVersionIsCountedNotWalked) {
    const std::string prog = self_dir() + "/fake_cpython";
    ASSERT_EQ(access(prog.c_str(), X_OK), 0) << prog;
    Child c;
    c.pid = spawn(prog, {});
    ASSERT_GT(c.pid, 0);
    auto owned = std::make_unique<PyMaps>();
    PyMaps& maps = *owned;
    Store store(std::move(owned), python_store_options());
    // Wait for the exec (the child's maps name fake_cpython).
    for (int i = 0; i < 200; ++i) {
        std::error_code ec;
        if (std::filesystem::read_symlink("/proc/" + std::to_string(c.pid) + "/exe", ec)
                .filename() == "fake_cpython")
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(store.add_process(static_cast<uint32_t>(c.pid)));
    ASSERT_TRUE(store.add_process(static_cast<uint32_t>(c.pid))); // the recapture: once
    const StoreStats st = store.stats();
    ASSERT_EQ(st.interpreter_unsupported.count("cpython 3.12"), 1u);
    EXPECT_EQ(st.interpreter_unsupported.at("cpython 3.12"), 1u);
    EXPECT_TRUE(maps.python.empty());
    EXPECT_EQ(st.python_processes, 0u);
    EXPECT_FALSE(store.python(static_cast<uint32_t>(c.pid)).runtime);
}
