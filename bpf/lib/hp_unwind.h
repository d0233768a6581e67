/* User-stack unwinding without frame pointers: the walk over the unwind tables of
 * bpf/unwind.h, which userspace (unwind/store.cpp) fills per file and per process.
 *
 * One frame is one call of hp_unw_step(), a global function: the verifier checks it once,
 * not once per frame, so the caller's bounded loop of HP_UNW_MAX_FRAMES calls stays cheap
 * to verify on every kernel from 5.6 (no bpf_loop, no tail calls). Global functions take
 * no pointers before 5.12, so the walk's registers and frames live in a per-CPU map.
 *
 * Starting registers: the task's saved user registers (at the top of its kernel stack),
 * which is where every entry from user mode (a syscall, an interrupt, a fault) put them:
 * the same for a perf_event sample, the scheduler tick, sched_switch and a syscall. */
#ifndef HOSTPROF_BPF_LIB_HP_UNWIND_H
#define HOSTPROF_BPF_LIB_HP_UNWIND_H

#include "../unwind.h"

/* Set by userspace: walk with tables at all (the maps are filled), and the kernel's
 * THREAD_SIZE (16 KiB on x86-64, 32 KiB with KASAN). */
const volatile bool cfg_unwind = false;
const volatile __u64 cfg_thread_size = 16384;

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 131072);
	__type(key, struct hp_unw_mapping_key);
	__type(value, struct hp_unw_mapping);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} hp_unw_mappings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct hp_unw_page_key);
	__type(value, struct hp_unw_page);
} hp_unw_pages SEC(".maps");

/* Sized by userspace from the unwind memory budget. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hp_unw_row);
	__uint(map_flags, BPF_F_MMAPABLE);
} hp_unw_rows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HP_UNW_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hp_unw_stats SEC(".maps");

/* The walk in progress on this CPU. */
struct hp_unw_walk {
	__u64 pc, sp, bp;
	__u32 pid;
	__u32 n;	/* frames in frames[] */
	__u32 stop;	/* enum hp_unw_stat: why it ended */
	__u8 exact_pc;	/* pc is where the code was interrupted, not a return address */
	__u8 bp_known;	/* bp holds the frame's rbp */
	__u8 leaf_kind; /* enum hp_unw_mapping_kind of the leaf's mapping */
	__u8 pad;
	/* The last mapping and page looked up: most frames of a stack are in the same
	 * mapping (and often page) as the one before. */
	struct hp_unw_mapping m;
	__u32 page_table, page_no; /* page_table 0: none cached */
	struct hp_unw_page page;
	__u64 frames[HP_UNW_MAX_FRAMES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hp_unw_walk);
} hp_unw_walks SEC(".maps");

static __always_inline void hp_unw_count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&hp_unw_stats, &stat);

	if (v)
		*v += 1;
}

/* x86-64 user space ends below this; anything above is no user address. */
#define HP_UNW_USER_END 0x00007fffffffffffULL

/* A frame-pointer step: the caller's rbp at [rbp], its return address at [rbp + 8]. */
static __always_inline int hp_unw_fp_step(struct hp_unw_walk *w, __u32 why)
{
	__u64 saved[2];

	if (!w->bp_known || w->bp == 0 || w->bp < w->sp ||
	    bpf_probe_read_user(saved, sizeof(saved), (void *)w->bp) != 0) {
		w->stop = why;
		return 0;
	}
	w->sp = w->bp + 16;
	w->bp = saved[0];
	w->pc = saved[1];
	w->exact_pc = 0;
	hp_unw_count(HP_UNW_STAT_FRAMES_FP);
	return 1;
}

/* The signal trampoline's frame: rsp points at the rt_sigframe's ucontext (its return
 * address, pretcode, was popped), whose sigcontext holds the interrupted registers
 * (uc_flags, uc_link and the 24-byte stack_t come first: the sigcontext is at +40; in it,
 * r8-r15, rdi, rsi, then rbp at +80, rsp at +120, rip at +128). */
#define HP_UNW_SIGCONTEXT 40
static __always_inline int hp_unw_signal_step(struct hp_unw_walk *w)
{
	__u64 regs[9]; /* rbp, rbx, rdx, rax, rcx, rsp, rip: from +80 */
	__u32 n;

	if (bpf_probe_read_user(regs, sizeof(regs), (void *)(w->sp + HP_UNW_SIGCONTEXT + 80)) !=
	    0) {
		w->stop = HP_UNW_STAT_BAD_READ;
		return 0;
	}
	/* The trampoline's frame holds the address of __restore_rt itself (the handler's
	 * return address), not an address after a call: +1, so that symbolizers, which look
	 * up return addresses at -1, find __restore_rt and not the function before it. */
	n = w->n - 1;
	if (n < HP_UNW_MAX_FRAMES)
		w->frames[n] += 1;
	w->bp = regs[0];
	w->sp = regs[5];
	w->pc = regs[6];
	w->bp_known = 1;
	w->exact_pc = 1; /* the interrupted instruction itself */
	hp_unw_count(HP_UNW_STAT_FRAMES_CFI);
	return 1;
}

/* Go's asmcgocall on the g0 stack, in or around its call of a C function: the goroutine's
 * SP is g.stack.hi - depth, from the g and depth it saved at rsp + g_off and rsp +
 * depth_off (bpf/unwind.h, HP_UNW_GO_CGO); there is the return address into its caller.
 * Another stack: no "above the current SP" check, but sane values. */
#define HP_UNW_GO_STACK_HI 8		 /* offsetof(g, stack.hi) */
#define HP_UNW_GO_MAX_DEPTH (1ULL << 30) /* Go's maximum stack is 1 GB */
static __always_inline int hp_unw_go_cgo_step(struct hp_unw_walk *w, __s16 depth_off, __s16 g_off)
{
	__u64 g = 0, hi = 0, depth = 0, sp, ra = 0;

	if (bpf_probe_read_user(&depth, sizeof(depth), (void *)(w->sp + depth_off)) != 0 ||
	    bpf_probe_read_user(&g, sizeof(g), (void *)(w->sp + g_off)) != 0 || g == 0 ||
	    bpf_probe_read_user(&hi, sizeof(hi), (void *)(g + HP_UNW_GO_STACK_HI)) != 0 ||
	    depth == 0 || depth >= HP_UNW_GO_MAX_DEPTH || hi <= depth) {
		w->stop = HP_UNW_STAT_BAD_READ;
		return 0;
	}
	sp = hi - depth;
	if (sp > HP_UNW_USER_END || bpf_probe_read_user(&ra, sizeof(ra), (void *)sp) != 0) {
		w->stop = HP_UNW_STAT_BAD_READ;
		return 0;
	}
	w->sp = sp + 8;
	w->pc = ra;
	w->bp_known = 0;
	w->exact_pc = 0;
	hp_unw_count(HP_UNW_STAT_FRAMES_GO);
	return 1;
}

/* Records the current frame and steps to its caller. 1: go on; 0: the walk ended
 * (w->stop says why). A global function: verified once. */
__noinline int hp_unw_step(void)
{
	struct hp_unw_mapping_key mkey = {};
	struct hp_unw_page_key pkey = {};
	struct hp_unw_mapping *m;
	struct hp_unw_page *page;
	struct hp_unw_row *row;
	struct hp_unw_walk *w;
	__u32 zero = 0, n, lo, hi, count, first, i, idx;
	__u64 pc, rel, cfa, ra, saved_bp;
	__u8 kind;
	__u16 off;

	w = bpf_map_lookup_elem(&hp_unw_walks, &zero);
	if (!w)
		return 0;
	n = w->n;
	if (n >= HP_UNW_MAX_FRAMES) {
		w->stop = HP_UNW_STAT_DEPTH_LIMIT;
		return 0;
	}
	if (w->pc == 0) {
		w->stop = HP_UNW_STAT_END_OF_STACK; /* a zero return address ends a stack */
		return 0;
	}
	if (w->pc > HP_UNW_USER_END) {
		w->stop = HP_UNW_STAT_BAD_READ; /* no user address: garbage on the stack */
		return 0;
	}
	/* A return address is the instruction after the call: its rule is the call's. */
	pc = w->exact_pc ? w->pc : w->pc - 1;
	m = &w->m;
	if (pc < m->start || pc >= m->end) {
		mkey.prefixlen = 32 + 64;
		mkey.pid = __builtin_bswap32(w->pid);
		mkey.addr = __builtin_bswap64(pc);
		m = bpf_map_lookup_elem(&hp_unw_mappings, &mkey);
		if (!m) {
			/* No mapping of this process holds it: not code (or a mapping newer
			 * than userspace's last read of the process). Not recorded. */
			w->stop = HP_UNW_STAT_NO_TABLE;
			return 0;
		}
		w->m = *m;
		m = &w->m;
	}
	w->frames[n] = w->pc;
	w->n = n + 1;
	if (n == 0)
		w->leaf_kind = m->kind;
	if (m->kind == HP_UNW_MAP_PENDING)
		return hp_unw_fp_step(w, HP_UNW_STAT_TABLE_PENDING);
	if (m->kind != HP_UNW_MAP_TABLE)
		return hp_unw_fp_step(w, HP_UNW_STAT_NO_TABLE);

	rel = pc - m->bias;
	pkey.table = m->table;
	pkey.page = (__u32)(rel >> HP_UNW_PAGE_SHIFT);
	page = &w->page;
	if (w->page_table != pkey.table || w->page_no != pkey.page) {
		page = bpf_map_lookup_elem(&hp_unw_pages, &pkey);
		if (!page)
			return hp_unw_fp_step(w, HP_UNW_STAT_NO_TABLE);
		w->page = *page;
		w->page_table = pkey.table;
		w->page_no = pkey.page;
		page = &w->page;
	}
	/* The last row of the page whose pc_lo <= off: it is in [lo, hi). */
	off = (__u16)(rel & (HP_UNW_PAGE_SIZE - 1));
	first = page->first;
	count = page->count;
	lo = 0;
	hi = count;
	for (i = 0; i < HP_UNW_SEARCH_STEPS; i++) {
		__u32 mid;

		if (hi - lo <= 1)
			break;
		mid = lo + (hi - lo) / 2;
		idx = first + mid;
		row = bpf_map_lookup_elem(&hp_unw_rows, &idx);
		if (!row) {
			w->stop = HP_UNW_STAT_INVALID_RULE;
			return 0;
		}
		if (row->pc_lo <= off)
			lo = mid;
		else
			hi = mid;
	}
	idx = first + lo;
	row = bpf_map_lookup_elem(&hp_unw_rows, &idx);
	if (!row) {
		w->stop = HP_UNW_STAT_INVALID_RULE;
		return 0;
	}

	kind = row->kind & HP_UNW_KIND_MASK;
	switch (kind) {
	case HP_UNW_CFA_RSP:
		cfa = w->sp + row->cfa_off;
		break;
	case HP_UNW_CFA_RBP:
		if (!w->bp_known) {
			w->stop = HP_UNW_STAT_INVALID_RULE;
			return 0;
		}
		cfa = w->bp + row->cfa_off;
		break;
	case HP_UNW_PLT:
		cfa = w->sp + 8 + ((w->pc & 15) >= (__u64)row->cfa_off ? 8 : 0);
		break;
	case HP_UNW_SIGNAL:
		return hp_unw_signal_step(w);
	case HP_UNW_END:
		w->stop = HP_UNW_STAT_END_OF_STACK;
		return 0;
	case HP_UNW_NONE:
		return hp_unw_fp_step(w, HP_UNW_STAT_NO_TABLE);
	case HP_UNW_GO_CGO:
		return hp_unw_go_cgo_step(w, row->cfa_off, row->rbp_off);
	default:
		w->stop = HP_UNW_STAT_INVALID_RULE;
		return 0;
	}
	if (bpf_probe_read_user(&ra, sizeof(ra), (void *)(cfa - 8)) != 0) {
		w->stop = HP_UNW_STAT_BAD_READ;
		return 0;
	}
	if (row->rbp == HP_UNW_RBP_OFFSET) {
		if (bpf_probe_read_user(&saved_bp, sizeof(saved_bp),
					(void *)(cfa + row->rbp_off)) != 0) {
			w->stop = HP_UNW_STAT_BAD_READ;
			return 0;
		}
		w->bp = saved_bp;
		w->bp_known = 1;
	} else if (row->rbp == HP_UNW_RBP_UNKNOWN) {
		w->bp_known = 0;
	}
	if (cfa <= w->sp && kind != HP_UNW_CFA_RBP) {
		/* The stack grows down: a caller's frame is above. No progress: a loop. */
		w->stop = HP_UNW_STAT_BAD_READ;
		return 0;
	}
	w->sp = cfa;
	w->pc = ra;
	w->exact_pc = 0;
	hp_unw_count((row->kind & HP_UNW_ROW_GO) ? HP_UNW_STAT_FRAMES_GO : HP_UNW_STAT_FRAMES_CFI);
	return 1;
}

/* The current task's user registers, saved at the top of its kernel stack. 0 when they
 * cannot be read or are not user-mode registers. */
static __always_inline int hp_unw_user_regs(__u64 *pc, __u64 *sp, __u64 *bp)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	void *stack = BPF_CORE_READ(t, stack);
	struct pt_regs *regs;
	__u64 cs = 0;

	if (!stack || !BPF_CORE_READ(t, mm))
		return 0; /* a kernel thread has no user registers */
	regs = (struct pt_regs *)(stack + cfg_thread_size - bpf_core_type_size(struct pt_regs));
	if (bpf_probe_read_kernel(&cs, sizeof(cs), &regs->cs) != 0 || (cs & 3) != 3)
		return 0;
	*pc = BPF_CORE_READ(regs, ip);
	*sp = BPF_CORE_READ(regs, sp);
	*bp = BPF_CORE_READ(regs, bp);
	return 1;
}

/* Walks the current task's user stack into the per-CPU walk state, and returns it (the
 * frames in w->frames[0, w->n), leaf first), or NULL when this process has no tables (yet)
 * or its registers cannot be read: the caller then takes bpf_get_stack's frame-pointer
 * walk. */
static __always_inline struct hp_unw_walk *hp_unwind_user(__u32 pid)
{
	struct hp_unw_walk *w;
	__u32 zero = 0, i;
	__u64 pc, sp, bp;

	if (!cfg_unwind)
		return NULL;
	w = bpf_map_lookup_elem(&hp_unw_walks, &zero);
	if (!w)
		return NULL;
	if (!hp_unw_user_regs(&pc, &sp, &bp)) {
		hp_unw_count(HP_UNW_STAT_NO_REGS);
		return NULL;
	}
	w->pc = pc;
	w->sp = sp;
	w->bp = bp;
	w->pid = pid;
	w->n = 0;
	w->stop = HP_UNW_STAT_DEPTH_LIMIT;
	w->exact_pc = 1;
	w->bp_known = 1;
	w->leaf_kind = 0;
	w->m.start = w->m.end = 0;
	w->page_table = 0;
	for (i = 0; i < HP_UNW_MAX_FRAMES + 1; i++) {
		if (!hp_unw_step())
			break;
	}
	if (w->n == 0 || w->leaf_kind == HP_UNW_MAP_PENDING) {
		/* Nothing known of the leaf: the process is new to userspace, or the table of
		 * its code is not built yet; frame pointers are the best there is. */
		hp_unw_count(HP_UNW_STAT_FALLBACK_FP);
		return NULL;
	}
	hp_unw_count(HP_UNW_STAT_STACKS);
	hp_unw_count(w->stop);
	return w;
}

/* Copies a walk's frames to dst: a record's frames[] after its kernel frames (at most
 * HP_UNW_MAX_FRAMES of each, so the copy ends inside an array of twice that). Returns the
 * frames copied. */
static __always_inline __u32 hp_unw_copy(__u64 *dst, struct hp_unw_walk *w)
{
	__u32 u = w->n & 0xff;

	if (u > HP_UNW_MAX_FRAMES)
		u = HP_UNW_MAX_FRAMES;
	if (u > 0 && bpf_probe_read_kernel(dst, u * sizeof(__u64), w->frames) != 0)
		u = 0;
	return u;
}

#endif /* HOSTPROF_BPF_LIB_HP_UNWIND_H */
