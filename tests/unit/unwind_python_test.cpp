// CPython detection, offsets and the userspace frame reader (unwind/python.h), checked
// against what we did not write: CPython's headers (offsetof, tests/data/python/offsets.c),
// CPython's own co_lines() for the line table decoder, and a live python3 process read from
// outside (a child of the test: process_vm_readv needs no privilege for it).
#include "unwind/python.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace hostprof;
using namespace hostprof::unwind;

namespace {

const char* kPython = "/usr/bin/python3.11";

bool exists(const std::string& p) {
    return access(p.c_str(), R_OK) == 0;
}

std::string run(const std::string& cmd, int* status = nullptr) {
    std::string out;
    FILE* f = popen(cmd.c_str(), "r");
    if (!f)
        return out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        out.append(buf, n);
    const int st = pclose(f);
    if (status)
        *status = st;
    return out;
}

} // namespace

TEST(UnwindPython, DetectsDebianPython311) {
    if (!exists(kPython))
        GTEST_SKIP() << kPython << " not installed";
    auto rt = detect_python(kPython);
    ASSERT_TRUE(rt.ok()) << rt.error().message();
    EXPECT_EQ(rt->version.major, 3);
    EXPECT_EQ(rt->version.minor, 11);
    EXPECT_EQ(rt->version_source, "Py_Version");
    EXPECT_NE(rt->runtime_addr, 0u);
    EXPECT_EQ(rt->runtime_size, rt->offsets.runtime_size);
    EXPECT_FALSE(rt->segments.empty());
    // The version the interpreter itself reports.
    const std::string v =
        run(std::string(kPython) + " -c 'import sys; print(\"%d.%d.%d\" % sys.version_info[:3])'");
    EXPECT_EQ(rt->version.str() + "\n", v);
}

// Every offset of the 3.11 table equals offsetof() against the installed headers.
TEST(UnwindPython, Offsets311MatchCPythonHeaders) {
    if (!exists("/usr/include/python3.11/internal/pycore_frame.h"))
        GTEST_SKIP() << "python3.11-dev headers not installed";
    char dir[] = "/tmp/hp_pyoff_XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    const std::string exe = std::string(dir) + "/offsets";
    int st = 0;
    const std::string cc = run(
        "cc -I/usr/include/python3.11 " HOSTPROF_TEST_DATA "/python/offsets.c -o " + exe + " 2>&1",
        &st);
    ASSERT_EQ(st, 0) << cc;
    std::istringstream out(run(exe));
    std::remove(exe.c_str());
    rmdir(dir);
    std::map<std::string, uint64_t> got;
    std::string k;
    std::string v;
    while (out >> k >> v)
        got[k] = std::stoull(v, nullptr, k == "PY_VERSION_HEX" ? 16 : 10);
    auto o = python_offsets(3, 11);
    ASSERT_TRUE(o.ok());
    const std::map<std::string, uint64_t> want = {
        {"_PyRuntimeState.interpreters.head", o->runtime_interpreters_head},
        {"_PyRuntimeState.gilstate.tstate_current", o->runtime_tstate_current},
        {"_PyRuntimeState.gilstate.autoTSSkey", o->runtime_autotss_key},
        {"sizeof._PyRuntimeState", o->runtime_size},
        {"PyInterpreterState.next", o->interp_next},
        {"PyInterpreterState.threads.head", o->interp_threads_head},
        {"PyThreadState.next", o->tstate_next},
        {"PyThreadState.interp", o->tstate_interp},
        {"PyThreadState.cframe", o->tstate_cframe},
        {"PyThreadState.thread_id", o->tstate_thread_id},
        {"PyThreadState.native_thread_id", o->tstate_native_thread_id},
        {"_PyCFrame.current_frame", o->cframe_current_frame},
        {"_PyInterpreterFrame.f_code", o->frame_code},
        {"_PyInterpreterFrame.previous", o->frame_previous},
        {"_PyInterpreterFrame.prev_instr", o->frame_prev_instr},
        {"_PyInterpreterFrame.is_entry", o->frame_is_entry},
        {"_PyInterpreterFrame.owner", o->frame_owner},
        {"PyCodeObject.co_qualname", o->code_qualname},
        {"PyCodeObject.co_name", o->code_name},
        {"PyCodeObject.co_filename", o->code_filename},
        {"PyCodeObject.co_firstlineno", o->code_firstlineno},
        {"PyCodeObject.co_linetable", o->code_linetable},
        {"PyCodeObject.co_code_adaptive", o->code_code},
        {"PyObject.ob_type", o->object_type},
        {"PyVarObject.ob_size", o->varobject_size},
        {"PyASCIIObject.length", o->unicode_length},
        {"PyASCIIObject.state", o->unicode_state},
        {"sizeof.PyASCIIObject", o->unicode_ascii_data},
        {"sizeof.PyCompactUnicodeObject", o->unicode_compact_data},
        {"PyBytesObject.ob_sval", o->bytes_data},
        {"sizeof._Py_CODEUNIT", o->codeunit_size},
    };
    for (const auto& [name, off] : want) {
        auto it = got.find(name);
        ASSERT_NE(it, got.end()) << name << " not printed by offsets.c";
        EXPECT_EQ(it->second, off) << name;
    }
    EXPECT_EQ(got["PY_VERSION_HEX"] >> 16, 0x30bu);
    // And the real binary's _PyRuntime has that size.
    if (exists(kPython)) {
        auto rt = detect_python(kPython);
        ASSERT_TRUE(rt.ok()) << rt.error().message();
        EXPECT_EQ(rt->runtime_size, got["sizeof._PyRuntimeState"]);
    }
}

TEST(UnwindPython, RefusesOtherVersionsWithAReason) {
    for (auto [ma, mi] : {std::pair{3, 10}, {3, 9}, {3, 12}, {3, 13}, {2, 7}}) {
        auto o = python_offsets(ma, mi);
        ASSERT_FALSE(o.ok());
        EXPECT_EQ(o.error().err, ENOTSUP);
        EXPECT_NE(o.error().context.find(std::to_string(ma) + "." + std::to_string(mi)),
                  std::string::npos);
    }
}

TEST(UnwindPython, NonPythonAndCorruptFilesAreErrors) {
    auto r = detect_python("/bin/true");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().err, ENOENT) << r.error().message();
    auto r2 = detect_python(HOSTPROF_TEST_DATA "/python/offsets.c");
    ASSERT_FALSE(r2.ok());
    auto r3 = detect_python("/nonexistent/python3");
    ASSERT_FALSE(r3.ok());
    if (!exists(kPython))
        return;
    // The real interpreter, truncated and with random bytes flipped: an error or a result,
    // never a crash.
    FILE* f = fopen(kPython, "rb");
    ASSERT_NE(f, nullptr);
    std::vector<char> bytes(32 << 20);
    bytes.resize(fread(bytes.data(), 1, bytes.size(), f));
    fclose(f);
    std::mt19937 rng(23);
    for (int round = 0; round < 12; ++round) {
        std::vector<char> b = bytes;
        if (round % 2 == 0) {
            b.resize(rng() % b.size());
        } else {
            for (int i = 0; i < 2000; ++i)
                b[rng() % b.size()] = static_cast<char>(rng());
        }
        char path[] = "/tmp/hp_pycorrupt_XXXXXX";
        const int fd = mkstemp(path);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(write(fd, b.data(), b.size()), static_cast<ssize_t>(b.size()));
        auto res = detect_python(fd, path);
        if (res.ok()) {
            EXPECT_EQ(res->version.minor, 11);
        }
        close(fd);
        unlink(path);
    }
}

// The decoder against CPython's own co_lines(), for every instruction of every code object
// of a source with long jumps, no-location entries and multi-line expressions.
TEST(UnwindPython, LineTableMatchesCoLines) {
    if (!exists(kPython))
        GTEST_SKIP() << kPython << " not installed";
    const char* script = R"PY(
import sys
src = '''
def f(a, b):
    x = (a +
         b)
    try:
        y = x / 0
    except ZeroDivisionError:
        y = 0
    return [i * y
            for i in range(3)]
''' + '\n' * 300 + '''
class C:
    def m(self):
        with open('/dev/null') as fh:
            pass
        return lambda: (
            1)
async def g():
    await h()
'''
co = compile(src, 'x.py', 'exec')
def walk(c):
    yield c
    for k in c.co_consts:
        if hasattr(k, 'co_code'):
            yield from walk(k)
for c in walk(co):
    lines = []
    for s, e, l in c.co_lines():
        lines.append('%d,%d,%d' % (s, e, -1 if l is None else l))
    print(c.co_qualname, c.co_firstlineno, c.co_linetable.hex() or '-', ' '.join(lines))
)PY";
    char path[] = "/tmp/hp_pyline_XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, script, strlen(script)), static_cast<ssize_t>(strlen(script)));
    close(fd);
    std::istringstream out(run(std::string(kPython) + " " + path));
    unlink(path);
    std::string ln;
    int codes = 0, checked = 0;
    while (std::getline(out, ln)) {
        std::istringstream in(ln);
        std::string name, hex, range;
        int first = 0;
        in >> name >> first >> hex;
        std::vector<uint8_t> table;
        for (size_t i = 0; hex != "-" && i + 1 < hex.size(); i += 2)
            table.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
        ++codes;
        while (in >> range) {
            int s = 0, e = 0, l = 0;
            ASSERT_EQ(std::sscanf(range.c_str(), "%d,%d,%d", &s, &e, &l), 3);
            for (int a = s; a < e; a += 2) {
                EXPECT_EQ(python_addr_to_line(table, first, a), l < 0 ? 0 : l)
                    << name << " offset " << a;
                ++checked;
            }
        }
        EXPECT_EQ(python_addr_to_line(table, first, -2), first);
    }
    EXPECT_GE(codes, 6);
    EXPECT_GT(checked, 100);
}

TEST(UnwindPython, LineTableGarbageIsNoCrash) {
    std::mt19937 rng(11);
    for (int i = 0; i < 2000; ++i) {
        std::vector<uint8_t> t(rng() % 64);
        for (auto& b : t)
            b = static_cast<uint8_t>(rng());
        (void)python_addr_to_line(t, 1, rng() % 256);
    }
    EXPECT_EQ(python_addr_to_line({}, 5, 0), 0);
    EXPECT_EQ(python_addr_to_line({}, 5, -2), 5);
}

namespace {

// Memory of a fake process: a map of pages; unmapped reads fail.
class FakeMemory : public ProcessMemory {
  public:
    std::map<uint64_t, std::vector<uint8_t>> blocks;
    bool read(uint64_t addr, void* buf, size_t size) override {
        for (auto& [base, bytes] : blocks)
            if (addr >= base && addr - base <= bytes.size() &&
                size <= bytes.size() - (addr - base)) {
                std::memcpy(buf, bytes.data() + (addr - base), size);
                return true;
            }
        return false;
    }
    void put64(uint64_t addr, uint64_t v) {
        for (auto& [base, bytes] : blocks)
            if (addr >= base && addr + 8 <= base + bytes.size()) {
                std::memcpy(bytes.data() + (addr - base), &v, 8);
                return;
            }
    }
};

} // namespace

TEST(UnwindPython, ReaderSurvivesCyclesAndUnreadableMemory) {
    PythonRuntime rt;
    rt.version = {3, 11, 2};
    rt.offsets = python_offsets(3, 11).value();
    rt.runtime_addr = 0x1000;
    FakeMemory mem;
    mem.blocks[0x1000] = std::vector<uint8_t>(4096);
    mem.blocks[0x10000] = std::vector<uint8_t>(4096);
    // A frame whose previous is itself.
    mem.put64(0x10000 + rt.offsets.frame_previous, 0x10000);
    mem.put64(0x10000 + rt.offsets.frame_code, 0xdead0000);
    PythonReaderOptions opt;
    opt.max_frames = 64;
    PythonReader r(rt, 0, mem, opt);
    auto fr = r.frames(0x10000);
    ASSERT_FALSE(fr.ok());
    EXPECT_EQ(fr.error().err, ELOOP);
    auto c = r.code(0xdead0000);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().err, EIO);
    // An interpreter whose thread list loops.
    mem.put64(0x1000 + rt.offsets.runtime_interpreters_head, 0x10000 + 512);
    mem.put64(0x10000 + 512 + rt.offsets.interp_threads_head, 0x10000 + 1024);
    mem.put64(0x10000 + 1024 + rt.offsets.tstate_next, 0x10000 + 1024);
    auto th = r.threads();
    ASSERT_FALSE(th.ok());
    EXPECT_EQ(th.error().err, ELOOP);
    // Nothing mapped at all.
    PythonReader r2(rt, 0x7f0000000000, mem);
    EXPECT_FALSE(r2.threads().ok());
    EXPECT_FALSE(r2.frames(0x123).ok());
}

// A python3 child running top() -> middle() -> leaf() (a busy loop), read from outside.
TEST(UnwindPython, LiveChildFrameChain) {
    if (!exists(kPython))
        GTEST_SKIP() << kPython << " not installed";
    char real[PATH_MAX];
    ASSERT_NE(realpath(kPython, real), nullptr);
    auto rt = detect_python(real);
    ASSERT_TRUE(rt.ok()) << rt.error().message();

    const char* script = "def top():\n"      // 1
                         "    middle()\n"    // 2
                         "def middle():\n"   // 3
                         "    leaf()\n"      // 4
                         "def leaf():\n"     // 5
                         "    while True:\n" // 6
                         "        pass\n"    // 7
                         "top()\n";          // 8
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        execl(real, real, "-c", script, static_cast<char*>(nullptr));
        _exit(127);
    }
    struct Kill {
        pid_t pid;
        ~Kill() {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    } guard{pid};

    ProcessVmMemory mem(pid);
    std::vector<std::tuple<std::string, std::string, int, int>>
        chain; // qualname, file, first, line
    std::string last_error;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        auto bias = python_bias(*rt, pid, real);
        if (!bias) {
            last_error = bias.error().message();
            continue;
        }
        PythonReader reader(*rt, *bias, mem);
        auto threads = reader.threads();
        if (!threads || threads->empty()) {
            last_error = threads ? "no threads" : threads.error().message();
            continue;
        }
        const PythonThread& t = threads->back(); // the main thread: the first created
        EXPECT_EQ(t.native_thread_id, static_cast<uint64_t>(pid));
        auto frames = reader.frames(t.current_frame);
        if (!frames) {
            last_error = frames.error().message();
            continue;
        }
        chain.clear();
        bool ok = true;
        for (const PythonFrame& f : *frames) {
            auto c = reader.code(f.code);
            auto l = reader.line(f);
            if (!c || !l) {
                ok = false;
                last_error = (!c ? c.error() : l.error()).message();
                break;
            }
            chain.emplace_back(c->qualname, c->filename, c->firstlineno, *l);
        }
        if (ok && chain.size() == 4 && std::get<0>(chain[0]) == "leaf") {
            // The GIL holder is this thread (the only one, busy).
            auto g = reader.gil_holder();
            ASSERT_TRUE(g.ok());
            EXPECT_EQ(*g, t.tstate);
            // Read again: the code objects come from the cache.
            const size_t reads = reader.code_reads();
            for (const PythonFrame& f : *frames)
                ASSERT_TRUE(reader.code(f.code).ok());
            EXPECT_EQ(reader.code_reads(), reads);
            EXPECT_EQ(reader.cached_codes(), 4u);
            EXPECT_TRUE(frames->back().is_entry);
            break;
        }
    }
    ASSERT_EQ(chain.size(), 4u) << last_error;
    EXPECT_EQ(std::get<0>(chain[0]), "leaf");
    EXPECT_EQ(std::get<0>(chain[1]), "middle");
    EXPECT_EQ(std::get<0>(chain[2]), "top");
    EXPECT_EQ(std::get<0>(chain[3]), "<module>");
    for (const auto& c : chain)
        EXPECT_EQ(std::get<1>(c), "<string>");
    EXPECT_EQ(std::get<2>(chain[0]), 5);
    EXPECT_EQ(std::get<2>(chain[1]), 3);
    EXPECT_EQ(std::get<2>(chain[2]), 1);
    EXPECT_EQ(std::get<2>(chain[3]), 1);
    const int leaf_line = std::get<3>(chain[0]);
    EXPECT_TRUE(leaf_line == 6 || leaf_line == 7) << leaf_line;
    EXPECT_EQ(std::get<3>(chain[1]), 4);
    EXPECT_EQ(std::get<3>(chain[2]), 2);
    EXPECT_EQ(std::get<3>(chain[3]), 8);
}

// Non-ASCII names and a long path come back as UTF-8.
TEST(UnwindPython, LiveChildUnicodeNames) {
    if (!exists(kPython))
        GTEST_SKIP() << kPython << " not installed";
    char real[PATH_MAX];
    ASSERT_NE(realpath(kPython, real), nullptr);
    auto rt = detect_python(real);
    ASSERT_TRUE(rt.ok()) << rt.error().message();
    const char* script = "class Ünï:\n"
                         "    def 函数(self):\n"
                         "        while True:\n"
                         "            pass\n"
                         "Ünï().函数()\n";
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        execl(real, real, "-c", script, static_cast<char*>(nullptr));
        _exit(127);
    }
    struct Kill {
        pid_t pid;
        ~Kill() {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    } guard{pid};
    ProcessVmMemory mem(pid);
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline && got.empty()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        auto bias = python_bias(*rt, pid, real);
        if (!bias)
            continue;
        PythonReader reader(*rt, *bias, mem);
        auto threads = reader.threads();
        if (!threads || threads->empty())
            continue;
        auto frames = reader.frames(threads->back().current_frame);
        if (!frames || frames->size() != 2)
            continue;
        auto c = reader.code(frames->front().code);
        if (c && c->name == "函数")
            got = c->qualname;
    }
    EXPECT_EQ(got, "Ünï.函数");
}
