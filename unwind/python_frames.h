// Python frames in a stack (the words of bpf/python.h): what one means, and how the
// Python frames a record carries go into its native user stack.
#pragma once

#include <linux/types.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "bpf/python.h"

namespace hostprof::unwind {

// A user-stack word that is a Python frame, not a native address.
inline bool is_python_frame(uint64_t word) {
    return (word & HP_PY_FRAME_MARK) != 0;
}
// Its code object's address.
inline uint64_t python_frame_code(uint64_t word) {
    return word & HP_PY_FRAME_ADDR_MASK;
}
// Its instruction as a byte offset from the code's first code unit; -1 when unknown.
inline int64_t python_frame_instr_bytes(uint64_t word) {
    const uint64_t idx = (word >> HP_PY_FRAME_INSTR_SHIFT) & HP_PY_FRAME_INSTR_UNKNOWN;
    return idx == HP_PY_FRAME_INSTR_UNKNOWN ? -1 : static_cast<int64_t>(idx * 2);
}

// The user stack with Python frames in it, leaf first, into `out` (returns the words
// written, at most out.size()). `native`: the native user frames, leaf first (the leaf an
// exact pc, the others return addresses); `python`: the thread's Python frames, innermost
// first, each group of them up to an HP_PY_FRAME_ENTRY one run by one call of the
// interpreter loop, whose code is [eval_lo, eval_hi). Each native frame in the loop is
// replaced by its group, in order; groups left over (a native stack cut short, an
// unknown loop) go at the root end, where their callers are. The ENTRY bit is cleared:
// it only serves the splice, and would split a stack into two.
inline size_t splice_python_frames(std::span<const uint64_t> native,
                                   std::span<const uint64_t> python, uint64_t eval_lo,
                                   uint64_t eval_hi, std::span<uint64_t> out) {
    size_t n = 0, p = 0;
    auto put = [&](uint64_t w) {
        if (n < out.size())
            out[n++] = w;
    };
    auto put_group = [&] {
        while (p < python.size()) {
            const uint64_t w = python[p++];
            put(w & ~HP_PY_FRAME_ENTRY);
            if (w & HP_PY_FRAME_ENTRY)
                break;
        }
    };
    for (size_t i = 0; i < native.size(); ++i) {
        // A return address is the instruction after the call: the call's is one before.
        const uint64_t pc = i == 0 ? native[i] : native[i] - 1;
        if (eval_lo < eval_hi && pc >= eval_lo && pc < eval_hi && p < python.size()) {
            put_group();
            continue;
        }
        put(native[i]);
    }
    while (p < python.size())
        put_group();
    return n;
}

} // namespace hostprof::unwind
