// Go unwind rows from .gopclntab (unwind/gopclntab.h), checked against an oracle we did not
// write the data of: the instructions `go tool objdump` prints for the Go test programs
// (tests/testprogs/go_*), simulated per function (SP adjustments, pushes and pops, the saves
// and restores of BP) along every branch, compared at every instruction address. Also the
// crafted tables of tests/data/fuzz/gopclntab and corrupt or truncated real tables.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include "common/unique_fd.h"
#include "unwind/gopclntab.h"

using namespace hostprof;
using namespace hostprof::unwind;

namespace {

#ifdef HOSTPROF_GO_TESTPROGS_DIR
const std::string kProgs = HOSTPROF_GO_TESTPROGS_DIR;
const std::string kGo = HOSTPROF_GO;
#else
const std::string kProgs;
const std::string kGo;
#endif

#define REQUIRE_GO()                                                                               \
    do {                                                                                           \
        if (kProgs.empty())                                                                        \
            GTEST_SKIP() << "built without a Go toolchain (golang-go)";                            \
    } while (0)

std::string prog(const std::string& name) {
    return kProgs + "/" + name;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream b;
    b << in.rdbuf();
    return b.str();
}

std::string run(const std::string& cmd) {
    std::string out;
    std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(cmd.c_str(), "r"), ::pclose);
    if (!p)
        return out;
    char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p.get())) > 0)
        out.append(buf, n);
    return out;
}

// --- The oracle: go tool objdump, simulated ---------------------------------------------

struct Insn {
    uint64_t addr = 0;
    size_t len = 0;
    std::string op, args; // Go assembler syntax: "SUBQ", "$0x18, SP"
    std::string hex;      // the bytes, as go tool objdump prints them
};
struct Func {
    std::string name;
    std::vector<Insn> insns;
};

std::vector<Func> objdump(const std::string& bin) {
    const std::string text = run("'" + kGo + "' tool objdump '" + bin + "' 2>/dev/null");
    std::vector<Func> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("TEXT ", 0) == 0) {
            out.push_back({line.substr(5, line.find("(SB)") - 5), {}});
            continue;
        }
        if (out.empty())
            continue;
        std::vector<std::string> f; // the tab-separated fields that are not empty
        std::string cur;
        for (char c : line + "\t") {
            if (c == '\t') {
                if (!cur.empty() && cur.find_first_not_of(' ') != std::string::npos)
                    f.push_back(cur);
                cur.clear();
            } else {
                cur += c;
            }
        }
        if (f.size() < 4 || f[1].rfind("0x", 0) != 0)
            continue;
        Insn i;
        i.addr = std::stoull(f[1], nullptr, 16);
        i.len = f[2].size() / 2;
        i.hex = f[2];
        std::string asm_ = f[3];
        asm_.erase(asm_.find_last_not_of(' ') + 1);
        const size_t sp = asm_.find(' ');
        i.op = asm_.substr(0, sp);
        i.args = sp == std::string::npos ? "" : asm_.substr(sp + 1);
        out.back().insns.push_back(i);
    }
    return out;
}

// GNU objdump (AT&T syntax), rewritten into the Go syntax simulate() reads: it decodes the
// AVX2/SHA instructions Go 1.19's disassembler prints as "?".
std::string att_operand(std::string o) {
    o.erase(0, o.find_first_not_of(' '));
    o.erase(o.find_last_not_of(' ') + 1);
    static const std::map<std::string, std::string> regs = {
        {"%rsp", "SP"}, {"%esp", "SP"}, {"%sp", "SP"}, {"%spl", "SP"},
        {"%rbp", "BP"}, {"%ebp", "BP"}, {"%bp", "BP"}, {"%bpl", "BP"}};
    if (auto it = regs.find(o); it != regs.end())
        return it->second;
    if (o.size() > 1 && o[0] == '$') { // immediates: signed, as Go prints them
        const uint64_t v = std::stoull(o.substr(1), nullptr, 0);
        const int64_t sv = static_cast<int64_t>(v);
        char b[40];
        // The magnitude in unsigned arithmetic: -INT64_MIN does not fit an int64_t.
        std::snprintf(b, sizeof b, sv < 0 ? "$-0x%lx" : "$0x%lx",
                      static_cast<unsigned long>(sv < 0 ? ~v + 1 : v));
        return b;
    }
    const size_t paren = o.find("(%rsp)");
    if (paren != std::string::npos && paren + 6 == o.size())
        return (paren == 0 ? std::string("0") : o.substr(0, paren)) + "(SP)";
    return o;
}

std::vector<Func> gnu_objdump(const std::string& bin) {
    const std::string text = run("objdump -d -w --insn-width=16 '" + bin + "' 2>/dev/null");
    std::vector<Func> out;
    std::istringstream in(text);
    std::string line;
    static const std::regex head("^[0-9a-f]+ <(.*)>:$");
    std::smatch m;
    while (std::getline(in, line)) {
        if (std::regex_match(line, m, head)) {
            out.push_back({m[1].str(), {}});
            continue;
        }
        const size_t t1 = line.find('\t'), t2 = line.find('\t', t1 + 1);
        if (out.empty() || t1 == std::string::npos || t2 == std::string::npos)
            continue;
        Insn i;
        i.addr = std::stoull(line.substr(0, t1), nullptr, 16);
        const std::string hex = line.substr(t1 + 1, t2 - t1 - 1);
        std::istringstream hs(hex);
        for (std::string byte; hs >> byte;)
            ++i.len;
        std::string asm_ = line.substr(t2 + 1);
        if (size_t c = asm_.find(" #"); c != std::string::npos)
            asm_.resize(c);
        std::istringstream a(asm_);
        std::string mn, rest;
        a >> mn;
        std::getline(a, rest);
        while (mn == "rep" || mn == "repz" || mn == "repnz" || mn == "lock" || mn == "notrack" ||
               mn == "bnd" || mn == "data16" || mn == "cs" || mn == "ds") {
            std::istringstream r(rest);
            r >> mn;
            std::getline(r, rest);
        }
        std::vector<std::string> ops;
        int depth = 0;
        std::string cur;
        for (char c : rest) {
            depth += c == '(' ? 1 : c == ')' ? -1 : 0;
            if (c == ',' && depth == 0) {
                ops.push_back(cur);
                cur.clear();
            } else {
                cur += c;
            }
        }
        if (cur.find_first_not_of(' ') != std::string::npos)
            ops.push_back(cur);
        std::string op;
        for (char c : mn)
            op += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        const bool r64 = rest.find("%r") != std::string::npos;
        if (op == "RETQ" || op == "RET")
            op = "RET";
        else if (op == "INT3")
            op = "INT";
        else if (op == "PUSHF" || op == "POPF")
            op += "Q";
        else if ((op == "SUB" || op == "ADD" || op == "MOV" || op == "LEA") && r64)
            op += "Q";
        else if (op == "PUSH" || op == "POP")
            op += "Q";
        if (op[0] == 'J' && ops.size() == 1 && ops[0].find_first_not_of(' ') != std::string::npos &&
            ops[0][ops[0].find_first_not_of(' ')] != '*') {
            std::istringstream t(ops[0]); // "40bdc8 <runtime.mallocgc+0x8c8>"
            std::string target;
            t >> target;
            i.args = "0x" + target;
        } else if (op == "CALL") {
            i.args = rest;
        } else {
            for (size_t k = 0; k < ops.size(); ++k)
                i.args += (k ? ", " : "") + att_operand(ops[k]);
        }
        i.op = op;
        out.back().insns.push_back(i);
    }
    return out;
}

// The state before an instruction. Booleans are "known on every path".
struct State {
    int64_t delta = 0;
    bool saved = false;  // the caller's BP is at CFA - 16
    bool caller = true;  // BP is the caller's
    bool framed = false; // BP = CFA - 16
    bool operator==(const State& o) const {
        return delta == o.delta && saved == o.saved && caller == o.caller && framed == o.framed;
    }
};

struct Simulated {
    std::map<uint64_t, State> at; // reached instructions
    bool spwrite = false;         // an SP write the simulation does not model
    bool conflict = false;        // two paths reach an instruction with different deltas
    bool undecoded = false;       // the disassembler printed "?" (Go 1.19's: no AVX2)
};

// The immediate of ADDQ/SUBQ $imm, SP: "$0x18" / "$-0x80"; from the bytes when Go's
// disassembler printed it as a symbol ("$sync.(*Mutex).lockSlow+424(SB)" in a PIE).
int64_t imm(const std::string& s, const std::string& hex) {
    const bool neg = s.size() > 1 && s[1] == '-';
    const std::string digits = s.substr(neg ? 2 : 1);
    if (!digits.empty() && std::isdigit(static_cast<unsigned char>(digits[0]))) {
        const int64_t v = std::stoll(digits, nullptr, 0);
        return neg ? -v : v;
    }
    auto byte = [&](size_t i) { return std::stoul(hex.substr(2 * i, 2), nullptr, 16); };
    if (hex.size() == 8 && hex.rfind("4883", 0) == 0) // imm8
        return static_cast<int8_t>(byte(3));
    if (hex.size() == 14 && hex.rfind("4881", 0) == 0) // imm32
        return static_cast<int32_t>(byte(3) | byte(4) << 8 | byte(5) << 16 | byte(6) << 24);
    ADD_FAILURE() << "immediate " << s << " of " << hex;
    return 0;
}
// "0x18(SP)" / "0(SP)" -> displacement; false for anything else.
bool sp_mem(const std::string& s, int64_t& disp) {
    static const std::regex re("^(-?0x[0-9a-f]+|0)\\(SP\\)$");
    std::smatch m;
    if (!std::regex_match(s, m, re))
        return false;
    disp = std::stoll(m[1].str(), nullptr, 0);
    return true;
}

Simulated simulate(const Func& f) {
    // Calls that do not return: the code after them is another path's (e.g. the morestack
    // call at the end, with delta 0).
    static const std::regex noreturn("throw|fatal|panic|Panic|abort");
    Simulated sim;
    std::map<uint64_t, size_t> index;
    for (size_t i = 0; i < f.insns.size(); ++i)
        index[f.insns[i].addr] = i;
    std::vector<size_t> work{0};
    sim.at[f.insns.at(0).addr] = State{};
    auto reach = [&](uint64_t addr, const State& s) {
        auto it = index.find(addr);
        if (it == index.end())
            return; // a tail call out of the function
        auto [cur, fresh] = sim.at.try_emplace(addr, s);
        if (fresh) {
            work.push_back(it->second);
            return;
        }
        State m = cur->second;
        if (m.delta != s.delta) {
            sim.conflict = true;
            if (std::getenv("GO_ORACLE_DEBUG"))
                std::printf("%s: 0x%lx reached with %ld and %ld\n", f.name.c_str(),
                            static_cast<unsigned long>(addr), long(m.delta), long(s.delta));
        }
        m.saved = m.saved && s.saved;
        m.caller = m.caller && s.caller;
        m.framed = m.framed && s.framed;
        if (!(m == cur->second)) {
            cur->second = m;
            work.push_back(it->second);
        }
    };
    for (size_t steps = 0; !work.empty() && steps < 1000000; ++steps) {
        const size_t k = work.back();
        work.pop_back();
        const Insn& in = f.insns[k];
        State s = sim.at[in.addr];
        const std::string& op = in.op;
        const size_t comma = in.args.rfind(", ");
        const std::string dst = comma == std::string::npos ? in.args : in.args.substr(comma + 2);
        const std::string src = comma == std::string::npos ? "" : in.args.substr(0, comma);
        int64_t d = 0;
        bool falls = true;
        if (op == "?")
            sim.undecoded = true;
        if (op == "RET" || op == "UD2" || op == "INT" || op == "JMP") {
            falls = false;
            if (op == "JMP" && in.args.rfind("0x", 0) == 0)
                reach(std::stoull(in.args, nullptr, 16), s);
        } else if (op == "CALL" && std::regex_search(in.args, noreturn)) {
            falls = false;
        } else if (op.size() >= 2 && op[0] == 'J') { // conditional
            if (in.args.rfind("0x", 0) == 0)
                reach(std::stoull(in.args, nullptr, 16), s);
        } else if ((op == "SUBQ" || op == "ADDQ") && dst == "SP" && src[0] == '$') {
            s.delta += (op == "SUBQ" ? 1 : -1) * imm(src, in.hex);
        } else if (op == "PUSHQ" || op == "PUSHFQ") {
            if (in.args == "BP" && s.delta == 0 && s.caller)
                s.saved = true;
            s.delta += 8;
        } else if (op == "POPQ" || op == "POPFQ") {
            if (in.args == "BP") {
                s.caller = s.delta == 8 && s.saved;
                s.framed = false;
            }
            s.delta -= 8;
            if (s.delta < 8)
                s.saved = false;
        } else if (op == "MOVQ" && src == "BP" && sp_mem(dst, d)) {
            if (d == s.delta - 8 && s.caller)
                s.saved = true;
        } else if (dst == "BP" && op.rfind("CMP", 0) != 0 && op.rfind("TEST", 0) != 0 &&
                   op.rfind("BT", 0) != 0 && op != "PUSHQ") {
            const bool restore = op == "MOVQ" && sp_mem(src, d) && d == s.delta - 8 && s.saved;
            const bool lea = op == "LEAQ" && sp_mem(src, d) && d == s.delta - 8;
            const bool mov_sp = op == "MOVQ" && src == "SP" && s.delta == 8;
            s.caller = restore;
            s.framed = lea || mov_sp;
        } else if (dst == "SP" && op.rfind("CMP", 0) != 0 && op.rfind("TEST", 0) != 0) {
            sim.spwrite = true;
            falls = false;
            if (std::getenv("GO_ORACLE_DEBUG"))
                std::printf("%s: SP write %s %s\n", f.name.c_str(), op.c_str(), in.args.c_str());
        }
        if (falls && k + 1 < f.insns.size())
            reach(f.insns[k + 1].addr, s);
    }
    return sim;
}

struct Compared {
    size_t functions = 0, insns = 0, end_insns = 0, skipped = 0;
    std::vector<std::string> mismatches;
    std::set<std::string> end_functions, invalid_functions;
};

Compared compare(const std::vector<Row>& rows, const std::vector<Func>& funcs,
                 const std::regex& which) {
    Compared c;
    for (const Func& f : funcs) {
        if (f.insns.empty() || !std::regex_search(f.name, which))
            continue;
        const Row* first = find(rows, f.insns[0].addr);
        if (!first || first->kind == (HP_UNW_NONE | HP_UNW_ROW_GO))
            continue; // not Go code (cgo's C functions, crt)
        ++c.functions;
        const Simulated sim = simulate(f);
        for (const auto& [addr, st] : sim.at) {
            const Row* r = find(rows, addr);
            char where[64];
            std::snprintf(where, sizeof where, " at 0x%lx: ", static_cast<unsigned long>(addr));
            if (!r || !(r->kind & HP_UNW_ROW_GO)) {
                c.mismatches.push_back(f.name + where + "no Go row");
                continue;
            }
            const int kind = r->kind & HP_UNW_KIND_MASK;
            if (kind == HP_UNW_END) {
                ++c.end_insns;
                c.end_functions.insert(f.name);
                continue;
            }
            if (kind == HP_UNW_INVALID) {
                c.invalid_functions.insert(f.name);
                ++c.skipped;
                continue;
            }
            if (sim.spwrite || sim.conflict || sim.undecoded) {
                ++c.skipped;
                continue;
            }
            ++c.insns;
            std::string bad;
            if (kind == HP_UNW_CFA_RSP) {
                if (r->cfa_off - 8 != st.delta)
                    bad = "delta " + std::to_string(r->cfa_off - 8) + ", objdump " +
                          std::to_string(st.delta);
            } else if (kind == HP_UNW_CFA_RBP) {
                if (r->cfa_off != 16 || !st.framed)
                    bad = "CFA = rbp + " + std::to_string(r->cfa_off) + " but BP is not the frame";
            } else {
                bad = "kind " + std::to_string(kind);
            }
            if (r->rbp == HP_UNW_RBP_SAME && !st.caller)
                bad += " rbp SAME but BP changed";
            if (r->rbp == HP_UNW_RBP_OFFSET && (r->rbp_off != -16 || !st.saved))
                bad += " rbp at CFA" + std::to_string(r->rbp_off) + " but not saved there";
            if (!bad.empty())
                c.mismatches.push_back(f.name + where + bad);
        }
    }
    return c;
}

const Func* by_name(const std::vector<Func>& funcs, const std::string& name) {
    for (const Func& f : funcs)
        if (f.name == name)
            return &f;
    return nullptr;
}

GoTable build(const std::string& path) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = build_go_rows(path);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_TRUE(r.ok()) << (r ? "" : r.error().message());
    if (!r)
        return {};
    const auto& n = r->counts;
    std::printf("%s: %s, %zu rows in %.1f ms (%zu functions: %zu frames, %zu END, %zu without "
                "a recognised BP save, %zu with INVALID ranges, %zu gaps)\n",
                path.c_str(), r->version.c_str(), r->rows.size(), ms, n.functions, n.frames,
                n.end_functions, n.unknown_frames, n.invalid_ranges, n.gaps);
    return std::move(r).value();
}

// --- Against the oracle -----------------------------------------------------------------

class GoOracle : public ::testing::TestWithParam<std::string> {};

// Every reachable instruction of every Go function, as two disassemblers decode it: Go's own
// (`go tool objdump`) and GNU objdump (which also decodes the AVX2 code Go 1.19's does not).
TEST_P(GoOracle, EveryInstructionMatchesObjdump) {
    REQUIRE_GO();
    const std::string bin = prog(GetParam());
    const GoTable t = build(bin);
    ASSERT_FALSE(t.rows.empty());
    for (const Row& r : t.rows)
        ASSERT_TRUE(r.kind & HP_UNW_ROW_GO);
    const bool cgo = GetParam().rfind("go_cgo", 0) == 0;
    for (const bool gnu : {false, true}) {
        SCOPED_TRACE(gnu ? "GNU objdump" : "go tool objdump");
        const std::vector<Func> funcs = gnu ? gnu_objdump(bin) : objdump(bin);
        ASSERT_GT(funcs.size(), 1000u) << bin;
        const Compared c = compare(t.rows, funcs, std::regex("."));
        if (std::getenv("GO_ORACLE_DEBUG"))
            for (const Func& f : funcs)
                std::printf("oracle %d %s %zu\n", gnu, f.name.c_str(), simulate(f).at.size());
        std::printf("%s, %s: %zu functions, %zu instructions agree; %zu in END functions, %zu "
                    "skipped (INVALID rows, SP writes, undecoded); %zu mismatches\n",
                    GetParam().c_str(), gnu ? "GNU objdump" : "go tool objdump", c.functions,
                    c.insns, c.end_insns, c.skipped, c.mismatches.size());
        for (size_t i = 0; i < c.mismatches.size() && i < 20; ++i)
            ADD_FAILURE() << c.mismatches[i];
        EXPECT_GT(c.functions, 1000u);
        EXPECT_GT(c.insns, 50000u);
        // The named samples are all compared, instruction by instruction.
        for (const std::string name :
             {"main.main", "main.hashLoop", "main.scanLoop", "crypto/sha256.block.abi0",
              "crypto/sha256.Sum256", "internal/bytealg.IndexByte.abi0", "runtime.mallocgc",
              "runtime.schedule", "runtime.memmove", "runtime.main", "runtime.gcDrain"}) {
            if (cgo && name != "main.main" && name.rfind("runtime.", 0) != 0)
                continue;
            if (!gnu && name == "crypto/sha256.block.abi0")
                continue; // AVX2: "?"
            const Func* f = by_name(funcs, name);
            ASSERT_TRUE(f) << name;
            const Compared one = compare(t.rows, {*f}, std::regex("."));
            EXPECT_EQ(one.functions, 1u) << name;
            const size_t code = static_cast<size_t>(std::count_if(
                f->insns.begin(), f->insns.end(), [](const Insn& i) { return i.op != "INT"; }));
            EXPECT_GE(one.insns, code * 9 / 10) << name << " (most reachable)";
            EXPECT_TRUE(one.mismatches.empty()) << name;
        }
        // The stack's bottoms and the stack switches end the walk; nothing of ours does.
        for (const char* name : {"runtime.goexit.abi0", "runtime.mstart.abi0",
                                 "runtime.rt0_go.abi0", "runtime.mcall", "runtime.morestack.abi0",
                                 "runtime.systemstack.abi0", "runtime.asmcgocall.abi0", "gogo"}) {
            const Func* f = by_name(funcs, name);
            ASSERT_TRUE(f) << name;
            const Row* r = find(t.rows, f->insns[0].addr);
            ASSERT_TRUE(r) << name;
            EXPECT_EQ(r->kind, HP_UNW_END | HP_UNW_ROW_GO) << name;
        }
        for (const std::string& name : c.end_functions)
            EXPECT_TRUE(name.rfind("runtime.", 0) == 0 || name.rfind("time.", 0) == 0 ||
                        name.rfind("syscall.", 0) == 0 || name == "gogo")
                << name << " ends the stack";
    }
}

// go_cgo_pie is linked by the system linker: its table has no section of its own (it is in
// .data.rel.ro) and is found by the scan.
INSTANTIATE_TEST_SUITE_P(Progs, GoOracle,
                         ::testing::Values("go_hot", "go_hot_pie", "go_cgo", "go_cgo_pie"));

// asmcgocall's call of C on the g0 stack: from the instruction after its save of the
// goroutine stack's depth to its restore of SP, a GO_CGO row whose offsets are the slots
// the disassembly shows it saving g and the depth at; END in the rest of the function (the
// switch itself, the path without a g).
class GoCgoSwitch : public ::testing::TestWithParam<std::string> {};

TEST_P(GoCgoSwitch, AsmcgocallsCallIntoCIsCrossed) {
    REQUIRE_GO();
    const std::string bin = prog(GetParam());
    const GoTable t = build(bin);
    EXPECT_EQ(t.counts.cgo_switches, 1u);
    // "MOVQ DI, 0x30(SP)" (Go) and "%rdi, 0x30(SP)" (GNU, operands in AT&T order).
    auto args = [](std::string a) {
        static const std::map<std::string, std::string> regs = {
            {"%rax", "AX"}, {"%rdx", "DX"}, {"%rsi", "SI"}, {"%rdi", "DI"}};
        a.erase(0, a.find_first_not_of(" *")); // CALL *%rax
        for (const auto& [att, go] : regs)
            for (size_t p; (p = a.find(att)) != std::string::npos &&
                           (p + att.size() == a.size() || !std::isalnum(a[p + att.size()]));)
                a.replace(p, att.size(), go);
        a.erase(0, a.find_first_not_of(' '));
        a.erase(a.find_last_not_of(' ') + 1);
        return a;
    };
    static const std::regex save("^DI, (0x[0-9a-f]+)\\(SP\\)$");
    for (const bool gnu : {false, true}) {
        SCOPED_TRACE(gnu ? "GNU objdump" : "go tool objdump");
        const std::vector<Func> funcs = gnu ? gnu_objdump(bin) : objdump(bin);
        const Func* f = by_name(funcs, "runtime.asmcgocall.abi0");
        ASSERT_TRUE(f);
        const auto& in = f->insns;
        // MOVQ DI, g(SP); MOVQ 0x8(DI), DI; SUBQ DX, DI; MOVQ DI, depth(SP)
        size_t k = 0;
        std::smatch g, depth;
        std::string a0, a3;
        for (; k + 4 < in.size(); ++k) {
            a0 = args(in[k].args);
            a3 = args(in[k + 3].args);
            if (in[k].op == "MOVQ" && std::regex_match(a0, g, save) &&
                args(in[k + 1].args) == "0x8(DI), DI" && in[k + 2].op == "SUBQ" &&
                args(in[k + 2].args) == "DX, DI" && in[k + 3].op == "MOVQ" &&
                std::regex_match(a3, depth, save))
                break;
        }
        ASSERT_LT(k + 4, in.size()) << "the saves of g and depth";
        const int g_off = std::stoi(g[1].str(), nullptr, 16);
        const int depth_off = std::stoi(depth[1].str(), nullptr, 16);
        const uint64_t lo = in[k + 4].addr;
        size_t call = k + 4;
        while (call < in.size() && !(in[call].op == "CALL" && args(in[call].args) == "AX"))
            ++call;
        ASSERT_LT(call, in.size()) << "CALL AX";
        size_t restore = call;
        while (restore < in.size() &&
               !(in[restore].op == "MOVQ" && args(in[restore].args) == "SI, SP"))
            ++restore;
        ASSERT_LT(restore, in.size()) << "MOVQ SI, SP";
        const uint64_t hi = in[restore].addr; // still on g0 there
        std::printf("%s: g at SP+%d, depth at SP+%d, C called at 0x%lx, rows over [0x%lx, "
                    "0x%lx]\n",
                    GetParam().c_str(), g_off, depth_off, static_cast<unsigned long>(in[call].addr),
                    static_cast<unsigned long>(lo), static_cast<unsigned long>(hi));
        size_t cgo = 0;
        for (const Insn& i : in) {
            const Row* r = find(t.rows, i.addr);
            ASSERT_TRUE(r) << std::hex << i.addr;
            if (i.addr >= lo && i.addr <= hi) {
                ++cgo;
                EXPECT_EQ(r->kind, HP_UNW_GO_CGO | HP_UNW_ROW_GO) << std::hex << i.addr;
                EXPECT_EQ(r->cfa_off, depth_off);
                EXPECT_EQ(r->rbp_off, g_off);
                EXPECT_EQ(r->rbp, HP_UNW_RBP_UNKNOWN);
            } else {
                EXPECT_EQ(r->kind, HP_UNW_END | HP_UNW_ROW_GO) << std::hex << i.addr;
            }
        }
        EXPECT_GE(cgo, 4u);
        // The C function's return address: the walker looks up its rule at - 1.
        const Row* r = find(t.rows, in[call].addr + in[call].len - 1);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->kind, HP_UNW_GO_CGO | HP_UNW_ROW_GO);
        // The same from the packed table the kernel reads.
        const PackedTable p = pack(t.rows);
        const hp_unw_row* pr = find_packed(p, in[call].addr + in[call].len - 1);
        ASSERT_TRUE(pr);
        EXPECT_EQ(pr->kind, HP_UNW_GO_CGO | HP_UNW_ROW_GO);
        EXPECT_EQ(pr->cfa_off, depth_off);
        EXPECT_EQ(pr->rbp_off, g_off);
    }
}

// Every Go binary has asmcgocall (the runtime calls C-ABI code through it without cgo too).
INSTANTIATE_TEST_SUITE_P(Progs, GoCgoSwitch,
                         ::testing::Values("go_hot", "go_hot_pie", "go_cgo", "go_cgo_pie"));

TEST(GoUnwind, AsmcgocallWithoutTheExpectedCodeStaysEnd) {
    REQUIRE_GO();
    // The same table over code whose depth store is not there: no GO_CGO row.
    const std::string bin = prog("go_cgo");
    const GoTable t = build(bin);
    ASSERT_EQ(t.counts.cgo_switches, 1u);
    const auto funcs = objdump(bin);
    const Func* f = by_name(funcs, "runtime.asmcgocall.abi0");
    ASSERT_TRUE(f);
    std::string data = slurp(bin);
    // Patch "48 89 7c 24 <depth>" after "48 8b 7f 08; 48 29 d7" (MOVQ 8(DI), DI; SUBQ DX,
    // DI) into a store of SI.
    const std::string pat = "\x48\x8b\x7f\x08\x48\x29\xd7\x48\x89\x7c\x24";
    size_t at = data.find(pat);
    ASSERT_NE(at, std::string::npos);
    ASSERT_EQ(data.find(pat, at + 1), std::string::npos) << "the pattern is unique";
    data[at + 9] = '\x74';
    char path[] = "/tmp/hostprof-go-cgo-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(fd);
    auto r = build_go_rows(std::string(path));
    ::unlink(path);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->counts.cgo_switches, 0u);
    for (const Insn& i : f->insns) {
        const Row* row = find(r->rows, i.addr);
        ASSERT_TRUE(row);
        EXPECT_EQ(row->kind, HP_UNW_END | HP_UNW_ROW_GO) << std::hex << i.addr;
    }
}

TEST(GoUnwind, FramelessAsmLeafIsRspPlus8Throughout) {
    REQUIRE_GO();
    const GoTable t = build(prog("go_hot"));
    const auto funcs = objdump(prog("go_hot"));
    const Func* f = by_name(funcs, "internal/bytealg.IndexByte.abi0");
    ASSERT_TRUE(f);
    for (const Insn& i : f->insns) {
        const Row* r = find(t.rows, i.addr);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->kind, HP_UNW_CFA_RSP | HP_UNW_ROW_GO);
        EXPECT_EQ(r->cfa_off, 8) << std::hex << i.addr;
        EXPECT_EQ(r->rbp, HP_UNW_RBP_SAME);
    }
}

TEST(GoUnwind, Sha256BlockKeepsTheCallersBpInItsFrame) {
    REQUIRE_GO();
    // crypto/sha256.block has a frame (0x220 bytes in Go 1.19) and then uses BP as a
    // general register: a frame-pointer walk loses its caller, the rows do not.
    const GoTable t = build(prog("go_hot"));
    const auto funcs = gnu_objdump(prog("go_hot")); // Go 1.19's does not decode AVX2
    const Func* f = by_name(funcs, "crypto/sha256.block.abi0");
    ASSERT_TRUE(f);
    const Simulated sim = simulate(*f);
    size_t clobbered = 0, offset_rows = 0;
    for (const auto& [addr, st] : sim.at) {
        const Row* r = find(t.rows, addr);
        ASSERT_TRUE(r);
        if (!st.caller && !st.framed)
            ++clobbered;
        if (r->rbp == HP_UNW_RBP_OFFSET) {
            ++offset_rows;
            EXPECT_EQ(r->rbp_off, -16);
            EXPECT_GT(r->cfa_off, 8);
        }
    }
    EXPECT_GT(clobbered, 100u) << "BP used as a general register";
    EXPECT_GT(offset_rows, sim.at.size() * 9 / 10);
}

TEST(GoUnwind, FrameTooLargeForRspOffsetUsesTheFramePointer) {
    REQUIRE_GO();
    const GoTable t = build(prog("go_hot"));
    const auto funcs = objdump(prog("go_hot"));
    const Func* f = by_name(funcs, "main.bigFrame");
    ASSERT_TRUE(f);
    size_t rbp_based = 0, invalid = 0;
    for (const Insn& i : f->insns) {
        const Row* r = find(t.rows, i.addr);
        ASSERT_TRUE(r);
        rbp_based += (r->kind & HP_UNW_KIND_MASK) == HP_UNW_CFA_RBP;
        invalid += (r->kind & HP_UNW_KIND_MASK) == HP_UNW_INVALID;
    }
    EXPECT_GT(rbp_based, f->insns.size() / 2);
    EXPECT_LE(invalid, 6u) << "only the prologue's save and the epilogue's restore";
    // ... and the oracle agrees where the rule is rbp-based (main.* are compared).
    const Compared c = compare(t.rows, funcs, std::regex("^main\\.bigFrame$"));
    EXPECT_TRUE(c.mismatches.empty()) << c.mismatches.front();
    EXPECT_GT(c.insns, 10u);
}

TEST(GoUnwind, StrippedPieAndSectionlessCopiesGiveTheSameRows) {
    REQUIRE_GO();
    const GoTable plain = build(prog("go_hot"));
    const GoTable stripped = build(prog("go_hot_stripped"));
    EXPECT_EQ(stripped.rows, plain.rows) << "-ldflags=-s -w changes no code";
    EXPECT_EQ(plain.version.rfind("go1.", 0), 0u) << plain.version;
    EXPECT_EQ(plain.magic, stripped.magic);

    // Without section headers: the table is found by its header in the loadable bytes.
    std::string bytes = slurp(prog("go_hot"));
    ASSERT_GT(bytes.size(), 64u);
    const uint64_t zero = 0;
    std::memcpy(&bytes[0x28], &zero, 8); // e_shoff
    std::memset(&bytes[0x3c], 0, 4);     // e_shnum, e_shstrndx
    UniqueFd fd(::memfd_create("go-noshdr", MFD_CLOEXEC));
    ASSERT_TRUE(fd);
    ASSERT_EQ(::write(fd.get(), bytes.data(), bytes.size()), ssize_t(bytes.size()));
    auto scanned = build_go_rows(fd.get(), "go_hot without sections");
    ASSERT_TRUE(scanned.ok()) << scanned.error().message();
    EXPECT_EQ(scanned->rows, plain.rows);
    GoOptions no_scan;
    no_scan.scan = false;
    auto r = build_go_rows(fd.get(), "go_hot without sections", no_scan);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().err, ENOENT);

    // The system linker merges the table into .data.rel.ro: only the scan finds it.
    EXPECT_EQ(build_go_rows(prog("go_cgo_pie"), no_scan).error().err, ENOENT);
    EXPECT_TRUE(build_go_rows(prog("go_cgo_pie")).ok());

    const GoTable pie = build(prog("go_hot_pie"));
    EXPECT_GT(pie.rows.size(), plain.rows.size() / 2);
    EXPECT_NE(pie.pclntab_addr, 0u);
}

TEST(GoUnwind, CgoCCodeIsNotCovered) {
    REQUIRE_GO();
    const GoTable t = build(prog("go_cgo"));
    // C functions of the same .text (cgo's own and ours) are not Go: NONE or no row.
    const std::string nm = run("'" + kGo + "' tool nm '" + prog("go_cgo") + "'");
    std::istringstream in(nm);
    std::string line;
    size_t checked = 0;
    while (std::getline(in, line)) {
        std::istringstream l(line);
        std::string addr, type, name;
        if (!(l >> addr >> type >> name) || (type != "T" && type != "t"))
            continue;
        const bool c_code =
            name == "c_work" || name.rfind("x_cgo_", 0) == 0 ||
            (name.rfind("_cgo_", 0) == 0 && name.find("_Cfunc_") != std::string::npos);
        if (!c_code)
            continue;
        const Row* r = find(t.rows, std::stoull(addr, nullptr, 16));
        EXPECT_TRUE(!r || r->kind == (HP_UNW_NONE | HP_UNW_ROW_GO))
            << name << " at " << addr << ": kind " << (r ? int(r->kind) : -1);
        ++checked;
    }
    EXPECT_GT(checked, 3u);
}

TEST(GoUnwind, PackedLookupAgrees) {
    REQUIRE_GO();
    const GoTable t = build(prog("go_hot"));
    const PackedTable p = pack(t.rows);
    for (size_t i = 0; i + 1 < t.rows.size(); ++i) {
        for (uint64_t pc : {t.rows[i].pc, (t.rows[i].pc + t.rows[i + 1].pc) / 2}) {
            const hp_unw_row* k = find_packed(p, pc);
            const Row* r = find(t.rows, pc);
            ASSERT_TRUE(r);
            if (r->kind == (HP_UNW_NONE | HP_UNW_ROW_GO) && !k)
                continue;
            ASSERT_TRUE(k) << std::hex << pc;
            EXPECT_EQ(k->kind, r->kind);
            EXPECT_EQ(k->cfa_off, r->cfa_off);
            EXPECT_EQ(k->rbp, r->rbp);
        }
    }
}

TEST(GoUnwind, TheGoToolchainsOwnBinary) {
    REQUIRE_GO();
    const std::string go = std::filesystem::canonical(kGo).string();
    const GoTable t = build(go);
    EXPECT_GT(t.rows.size(), 10000u);
    EXPECT_GT(t.counts.frames, t.counts.functions / 2);
    EXPECT_EQ(t.counts.unknown_frames, 0u);
}

TEST(GoUnwind, NotGoBinaries) {
    auto r = build_go_rows("/proc/self/exe");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().err, ENOENT) << r.error().message();
    r = build_go_rows("/nonexistent/go-binary");
    ASSERT_FALSE(r.ok());
    r = build_go_rows(std::string(HOSTPROF_TEST_DATA) + "/fuzz/README.md");
    ASSERT_FALSE(r.ok());
}

// --- Crafted and corrupt tables ----------------------------------------------------------

Result<GoTable> decode_bytes(const std::string& b, bool with_code = true) {
    GoImage img;
    img.pclntab = reinterpret_cast<const uint8_t*>(b.data());
    img.pclntab_size = b.size();
    if (with_code)
        img.code.push_back({0x1000, img.pclntab, b.size()});
    return decode_pclntab(img);
}

TEST(GoUnwind, CraftedTables) {
    const std::string dir = std::string(HOSTPROF_TEST_DATA) + "/fuzz/gopclntab/";
    size_t ok = 0, bad = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        if (e.path().extension() == ".elf") {
            // The 1.18 table in a minimal ELF file, whose code has main.f's BP save (MOVQ BP,
            // 0x10(SP) at 0x1010) and INT3 in the gap.
            auto r = build_go_rows(e.path().string());
            if (name.rfind("bad_", 0) == 0) {
                ++bad;
                EXPECT_FALSE(r.ok()) << name;
                continue;
            }
            ++ok;
            ASSERT_TRUE(r.ok()) << name << ": " << r.error().message();
            std::vector<Row> want(7);
            const uint64_t pcs[] = {0x1000, 0x1010, 0x1015, 0x1038, 0x1040, 0x1060, 0x1080};
            const int kinds[] = {1, 1, 1, 1, HP_UNW_END, 1, HP_UNW_NONE};
            const int16_t cfa[] = {8, 0x20, 0x20, 8, 0, 8, 0};
            for (size_t i = 0; i < want.size(); ++i) {
                want[i].pc = pcs[i];
                want[i].kind = uint8_t(kinds[i] | HP_UNW_ROW_GO);
                want[i].cfa_off = cfa[i];
            }
            want[2].rbp = HP_UNW_RBP_OFFSET;
            want[2].rbp_off = -16;
            EXPECT_EQ(r->rows, want) << name;
            EXPECT_EQ(r->counts.frames, 1u);
            continue;
        }
        auto r = decode_bytes(slurp(e.path().string()));
        if (name.rfind("ok_", 0) == 0) {
            ++ok;
            ASSERT_TRUE(r.ok()) << name << ": " << r.error().message();
            // main.f [0x1000, 0x1040): delta 0, 0x18, 0; goexit END; a gap; main.g; then NONE.
            const std::vector<std::pair<uint64_t, int>> want = {
                {0x1000, 8},           {0x1010, 0x20},         {0x1038, 8},
                {0x1040, -HP_UNW_END}, {0x1050, -HP_UNW_NONE}, {0x1060, 8},
                {0x1080, -HP_UNW_NONE}};
            ASSERT_EQ(r->rows.size(), want.size()) << name;
            for (size_t i = 0; i < want.size(); ++i) {
                EXPECT_EQ(r->rows[i].pc, want[i].first) << name << " row " << i;
                if (want[i].second > 0) {
                    EXPECT_EQ(r->rows[i].kind, HP_UNW_CFA_RSP | HP_UNW_ROW_GO) << name << i;
                    EXPECT_EQ(r->rows[i].cfa_off, want[i].second) << name << " row " << i;
                } else {
                    EXPECT_EQ(r->rows[i].kind, -want[i].second | HP_UNW_ROW_GO) << name << i;
                }
            }
        } else {
            ++bad;
            EXPECT_FALSE(r.ok()) << name;
            if (name == "bad_quantum.bin" && !r.ok()) {
                EXPECT_EQ(r.error().err, ENOTSUP);
            }
        }
    }
    EXPECT_GE(ok, 4u);
    EXPECT_GE(bad, 5u);
}

TEST(GoUnwind, TruncatedAndFlippedRealTablesNeverCrash) {
    REQUIRE_GO();
    // The real table of the test program, from its section.
    const std::string bin = slurp(prog("go_hot"));
    const std::string sh = run("readelf -SW '" + prog("go_hot") + "' | grep ' .gopclntab '");
    std::istringstream in(sh.substr(sh.find(".gopclntab")));
    std::string name, type, addr, off, size;
    in >> name >> type >> addr >> off >> size;
    const std::string table =
        bin.substr(std::stoull(off, nullptr, 16), std::stoull(size, nullptr, 16));
    ASSERT_TRUE(decode_bytes(table, false).ok());
    for (size_t cut :
         {size_t{0}, size_t{7}, size_t{15}, size_t{72}, table.size() / 3, table.size() / 2})
        EXPECT_FALSE(decode_bytes(table.substr(0, cut), false).ok()) << cut;
    std::mt19937 rng(22);
    size_t rejected = 0;
    for (int i = 0; i < 300; ++i) {
        std::string t = table;
        for (int k = 0; k < 4; ++k)
            t[rng() % std::min<size_t>(t.size(), i % 2 ? 4096 : t.size())] ^=
                char(1 << (rng() % 8));
        rejected += !decode_bytes(t, false).ok();
    }
    std::printf("flipped tables rejected: %zu of 300\n", rejected);
    // Truncated files: libelf or we refuse them, nothing crashes.
    for (size_t cut : {size_t{64}, bin.size() / 4, bin.size() / 2, bin.size() - 4096}) {
        UniqueFd fd(::memfd_create("go-cut", MFD_CLOEXEC));
        ASSERT_EQ(::write(fd.get(), bin.data(), cut), ssize_t(cut));
        auto r = build_go_rows(fd.get(), "cut");
        if (cut < bin.size() / 2) {
            EXPECT_FALSE(r.ok()) << cut;
        }
    }
}

} // namespace
