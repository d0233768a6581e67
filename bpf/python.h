/* The ABI of Python frames in stacks (bpf/lib/hp_python.h walks CPython's frames, unwind/
 * in userspace finds the interpreters and fills hp_py_procs): fixed-width fields, no
 * pointers. Shared by BPF C (types from vmlinux.h) and C++ (types from <linux/types.h>).
 *
 * A stack record carries, after its native frames, the Python frames of the sampled
 * thread (innermost first), each one 64-bit word:
 *   bit 63     HP_PY_FRAME_MARK (a user address never has it)
 *   bit 62     HP_PY_FRAME_ENTRY: the outermost Python frame of one call of the
 *              interpreter loop (_PyEval_EvalFrameDefault), CPython's `is_entry`
 *   bits 47-61 the instruction: code units from the code's first one; all ones when unknown
 *   bits 0-46  the code object's address (a user address: below 2^47)
 * Userspace puts each group of frames (up to an ENTRY one) in place of the native frame of
 * the interpreter loop that runs it, and reads names and lines from the code objects. */
#ifndef HOSTPROF_BPF_PYTHON_H
#define HOSTPROF_BPF_PYTHON_H

#define HP_PY_MAX_FRAMES 96
#define HP_PY_MAX_THREADS 64 /* thread states looked through for the sampled thread's */

#define HP_PY_FRAME_MARK (1ULL << 63)
#define HP_PY_FRAME_ENTRY (1ULL << 62)
#define HP_PY_FRAME_INSTR_SHIFT 47
#define HP_PY_FRAME_INSTR_UNKNOWN 0x7fffULL
#define HP_PY_FRAME_ADDR_MASK ((1ULL << 47) - 1)

/* Bytes of an _PyInterpreterFrame read at once: every field the walk needs lies below. */
#define HP_PY_FRAME_READ 80

/* Value of hp_py_procs (key: pid): a process running a CPython the offsets table knows. */
struct hp_py_proc {
	__u64 runtime; /* address of _PyRuntime in the process */
	/* The interpreter loop's code [eval_lo, eval_hi) in the process: its native frames
	 * are where the Python frames go. 0, 0: unknown (the frames go at the stack's root). */
	__u64 eval_lo, eval_hi;
	__u32 version; /* major << 16 | minor << 8 | micro */
	/* Offsets (bytes) of the fields walked (unwind/python.h, PythonOffsets). */
	__u16 runtime_interpreters_head;
	__u16 runtime_tstate_current;
	__u16 interp_threads_head;
	__u16 tstate_next;
	__u16 tstate_cframe;
	__u16 tstate_native_thread_id;
	__u16 cframe_current_frame;
	__u16 frame_code; /* all frame_ offsets + 8 <= HP_PY_FRAME_READ */
	__u16 frame_previous;
	__u16 frame_prev_instr;
	__u16 frame_is_entry;
	__u16 frame_owner;
	__u16 code_code; /* the first code unit from the code object's address */
	__u16 pad;
};

/* Counters in `hp_py_stats` (a per-CPU array, summed by userspace). */
enum hp_py_stat {
	HP_PY_STAT_STACKS,	    /* samples of Python processes with Python frames */
	HP_PY_STAT_FRAMES,	    /* Python frames emitted */
	HP_PY_STAT_NO_THREAD,	    /* a thread of a Python process with no thread state */
	HP_PY_STAT_NO_FRAME,	    /* a thread state with no Python frame running */
	HP_PY_STAT_BAD_READ,	    /* a read of the interpreter's memory failed mid-walk */
	HP_PY_STAT_TRUNCATED,	    /* HP_PY_MAX_FRAMES reached */
	HP_PY_STAT_TSTATE_CACHED,   /* the thread's state came from the per-thread cache */
	HP_PY_STAT_TSTATE_SEARCHED, /* ... from a look through the interpreter's threads */
	HP_PY_STAT_MAX,
};

#endif /* HOSTPROF_BPF_PYTHON_H */
