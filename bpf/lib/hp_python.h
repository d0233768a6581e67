/* Python frames of the current thread: the walk of CPython's interpreter frames (3.11:
 * thread state -> cframe -> current_frame -> previous ...), for processes userspace found
 * a supported interpreter in (hp_py_procs, bpf/python.h). Native frames come from
 * hp_unwind.h; userspace splices the two.
 *
 * The walk is one global function (verified once per program, not at every call site),
 * taking scalars only (5.10's verifier takes no pointer arguments to global functions): its
 * result lives in a per-CPU map, like the native walk's. */
#ifndef HOSTPROF_BPF_LIB_HP_PYTHON_H
#define HOSTPROF_BPF_LIB_HP_PYTHON_H

#include "../python.h"

/* Set by userspace: walk Python frames at all (hp_py_procs is filled). */
const volatile bool cfg_python = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* pid */
	__type(value, struct hp_py_proc);
} hp_py_procs SEC(".maps");

/* tid -> its thread state (checked at each use by the state's native_thread_id), or none
 * found until retry_ns: a thread of a Python process that runs no Python (a C library's
 * thread) is not looked for at every sample. */
struct hp_py_thread {
	__u64 tstate;
	__u64 retry_ns;
};
#define HP_PY_RETRY_NS 1000000000ULL /* 1 s */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct hp_py_thread);
} hp_py_threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HP_PY_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hp_py_stats SEC(".maps");

/* The walk in progress on this CPU. */
struct hp_py_walk {
	__u32 n; /* frames in frames[] */
	__u32 pad;
	__u64 eval_lo, eval_hi; /* from the process's hp_py_proc */
	__u64 frames[HP_PY_MAX_FRAMES];
	__u8 buf[HP_PY_FRAME_READ]; /* the frame being read */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hp_py_walk);
} hp_py_walks SEC(".maps");

static __always_inline void hp_py_add(__u32 stat, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&hp_py_stats, &stat);

	if (v)
		*v += n;
}

static __always_inline void hp_py_count(__u32 stat)
{
	hp_py_add(stat, 1);
}

static __always_inline __u64 hp_py_ptr(__u64 addr)
{
	__u64 v = 0;

	if (addr == 0 || bpf_probe_read_user(&v, sizeof(v), (void *)addr) != 0)
		return 0;
	return v;
}

/* The thread state is the thread's own: its native_thread_id is the tid. */
static __always_inline bool hp_py_is_thread(const struct hp_py_proc *p, __u64 tstate, __u32 tid)
{
	return tstate != 0 && hp_py_ptr(tstate + p->tstate_native_thread_id) == tid;
}

/* The sampled thread's PyThreadState: cached, else the GIL holder's when it is this thread
 * (a thread running Python holds the GIL), else found among the interpreter's threads (a
 * thread blocked in C code released the GIL). 0: none. */
static __always_inline __u64 hp_py_tstate(const struct hp_py_proc *p, __u32 tid, __u64 now)
{
	struct hp_py_thread *c = bpf_map_lookup_elem(&hp_py_threads, &tid);
	struct hp_py_thread fresh = {};
	__u64 t, interp;
	__u32 i;

	if (c) {
		if (c->tstate != 0 && hp_py_is_thread(p, c->tstate, tid)) {
			hp_py_count(HP_PY_STAT_TSTATE_CACHED);
			return c->tstate;
		}
		if (c->tstate == 0 && now < c->retry_ns)
			return 0;
	}
	hp_py_count(HP_PY_STAT_TSTATE_SEARCHED);
	t = hp_py_ptr(p->runtime + p->runtime_tstate_current);
	if (!hp_py_is_thread(p, t, tid)) {
		interp = hp_py_ptr(p->runtime + p->runtime_interpreters_head);
		t = interp ? hp_py_ptr(interp + p->interp_threads_head) : 0;
		for (i = 0; i < HP_PY_MAX_THREADS; i++) {
			if (t == 0 || hp_py_is_thread(p, t, tid))
				break;
			t = hp_py_ptr(t + p->tstate_next);
		}
		if (i == HP_PY_MAX_THREADS)
			t = 0;
	}
	fresh.tstate = t;
	fresh.retry_ns = t ? 0 : now + HP_PY_RETRY_NS;
	bpf_map_update_elem(&hp_py_threads, &tid, &fresh, BPF_ANY);
	return t;
}

/* A field of the frame in w->buf at a byte offset from the process's offsets. */
static __always_inline __u64 hp_py_field64(struct hp_py_walk *w, __u16 off)
{
	if (off > HP_PY_FRAME_READ - sizeof(__u64))
		return 0;
	return *(__u64 *)(w->buf + off);
}

static __always_inline __u8 hp_py_field8(struct hp_py_walk *w, __u16 off)
{
	if (off > HP_PY_FRAME_READ - 1)
		return 0;
	return w->buf[off];
}

/* CPython 3.12's shim frames (owned by the C stack) run no Python code. */
#define HP_PY_OWNED_BY_CSTACK 3

/* Walks the current thread's Python frames into this CPU's hp_py_walks (innermost
 * first). Returns the frames found (0: not a Python process, no thread state, no frame).
 * A global function: verified once. */
__noinline int hp_py_walk(__u32 pid, __u32 tid, __u64 now)
{
	struct hp_py_proc *p = bpf_map_lookup_elem(&hp_py_procs, &pid);
	struct hp_py_walk *w;
	__u64 t, f, code, instr, first, idx;
	__u32 zero = 0, i, n = 0;

	if (!p)
		return 0;
	w = bpf_map_lookup_elem(&hp_py_walks, &zero);
	if (!w)
		return 0;
	w->n = 0;
	t = hp_py_tstate(p, tid, now);
	if (t == 0) {
		hp_py_count(HP_PY_STAT_NO_THREAD);
		return 0;
	}
	f = hp_py_ptr(hp_py_ptr(t + p->tstate_cframe) + p->cframe_current_frame);
	if (f == 0) {
		hp_py_count(HP_PY_STAT_NO_FRAME);
		return 0;
	}
	w->eval_lo = p->eval_lo;
	w->eval_hi = p->eval_hi;
	for (i = 0; i < HP_PY_MAX_FRAMES; i++) {
		if (bpf_probe_read_user(w->buf, HP_PY_FRAME_READ, (void *)f) != 0) {
			hp_py_count(HP_PY_STAT_BAD_READ);
			break;
		}
		code = hp_py_field64(w, p->frame_code);
		if (code != 0 && code <= HP_PY_FRAME_ADDR_MASK &&
		    hp_py_field8(w, p->frame_owner) != HP_PY_OWNED_BY_CSTACK) {
			/* prev_instr: the instruction running (or the one before the first,
			 * in a frame not started yet) */
			instr = hp_py_field64(w, p->frame_prev_instr);
			first = code + p->code_code;
			idx = HP_PY_FRAME_INSTR_UNKNOWN;
			if (instr >= first && (instr - first) / 2 < HP_PY_FRAME_INSTR_UNKNOWN)
				idx = (instr - first) / 2;
			n = w->n;
			if (n < HP_PY_MAX_FRAMES) {
				w->frames[n] =
				    HP_PY_FRAME_MARK | (idx << HP_PY_FRAME_INSTR_SHIFT) | code |
				    (hp_py_field8(w, p->frame_is_entry) ? HP_PY_FRAME_ENTRY : 0);
				w->n = n + 1;
			}
		}
		f = hp_py_field64(w, p->frame_previous);
		if (f == 0)
			break;
	}
	if (i == HP_PY_MAX_FRAMES)
		hp_py_count(HP_PY_STAT_TRUNCATED);
	n = w->n;
	if (n > 0) {
		hp_py_count(HP_PY_STAT_STACKS);
		hp_py_add(HP_PY_STAT_FRAMES, n);
	}
	return n;
}

/* Walks the current thread's Python frames and copies them to dst (room for
 * HP_PY_MAX_FRAMES); returns how many, with the interpreter loop's range in *lo, *hi. */
static __always_inline __u32 hp_python_frames(__u32 pid, __u32 tid, __u64 now, __u64 *dst,
					      __u64 *lo, __u64 *hi)
{
	struct hp_py_walk *w;
	__u32 zero = 0, n;

	if (!cfg_python || hp_py_walk(pid, tid, now) <= 0)
		return 0;
	w = bpf_map_lookup_elem(&hp_py_walks, &zero);
	if (!w)
		return 0;
	n = w->n & 0x7f;
	if (n > HP_PY_MAX_FRAMES)
		n = HP_PY_MAX_FRAMES;
	if (n > 0 && bpf_probe_read_kernel(dst, n * sizeof(__u64), w->frames) != 0)
		return 0;
	*lo = w->eval_lo;
	*hi = w->eval_hi;
	return n;
}

#endif /* HOSTPROF_BPF_LIB_HP_PYTHON_H */
