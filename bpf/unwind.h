/* The ABI of user-stack unwinding without frame pointers (bpf/lib/hp_unwind.h walks it,
 * unwind/ in userspace fills it): fixed-width fields, no pointers. Shared by BPF C (types
 * from vmlinux.h) and C++ (types from <linux/types.h>).
 *
 * Three maps:
 *   hp_unw_mappings  LPM trie {pid, address} -> the mapping's table and load bias
 *   hp_unw_pages     hash {table, 64 KiB page of the file's addresses} -> its rows
 *   hp_unw_rows      array of rows, sorted by address within each page
 * A row holds from its address up to the next row's (or the page's end) the rule that
 * gives the caller's registers: the CFA (the stack pointer before the call), the return
 * address at CFA - 8, and where the caller's rbp was saved. */
#ifndef HOSTPROF_BPF_UNWIND_H
#define HOSTPROF_BPF_UNWIND_H

#define HP_UNW_PAGE_SHIFT 16
#define HP_UNW_PAGE_SIZE (1U << HP_UNW_PAGE_SHIFT)
/* Steps of the binary search within a page: at most 2^16 rows in a page. */
#define HP_UNW_SEARCH_STEPS 17
#define HP_UNW_MAX_FRAMES 127

/* hp_unw_row.kind */
enum hp_unw_row_kind {
	HP_UNW_CFA_RSP = 1, /* CFA = rsp + cfa_off */
	HP_UNW_CFA_RBP = 2, /* CFA = rbp + cfa_off */
	/* The standard lazy-binding .plt stubs: CFA = rsp + 8, plus 8 once the stub has
	 * pushed its index, i.e. when (rip & 15) >= cfa_off. */
	HP_UNW_PLT = 3,
	/* A signal trampoline (__restore_rt): the interrupted registers are in the
	 * rt_sigframe's ucontext at rsp. */
	HP_UNW_SIGNAL = 4,
	/* The outermost frame (the return address is undefined: _start, clone, clone3). */
	HP_UNW_END = 5,
	/* Code with no CFI here (a gap between FDEs): a frame-pointer step is tried. */
	HP_UNW_NONE = 6,
	/* A rule this walker cannot express (a DWARF expression): the walk stops. */
	HP_UNW_INVALID = 7,
	/* Go's runtime.asmcgocall on the g0 stack, around its call of the C function: it
	 * saved the goroutine's g at rsp + rbp_off and the depth of the goroutine's stack
	 * (g.stack.hi - the goroutine's SP at asmcgocall's entry, which holds the return
	 * address) at rsp + cfa_off. The caller's SP is g.stack.hi - depth + 8 (g.stack.hi at
	 * g + 8), its rbp unknown. Only with HP_UNW_ROW_GO. */
	HP_UNW_GO_CGO = 8,
};
/* Or'ed into hp_unw_row.kind of rows built from Go's .gopclntab (counted apart). */
#define HP_UNW_ROW_GO 0x80
#define HP_UNW_KIND_MASK 0x7f

/* hp_unw_row.rbp */
enum hp_unw_rbp_rule {
	HP_UNW_RBP_SAME = 0,   /* the caller's rbp is the current one */
	HP_UNW_RBP_OFFSET = 1, /* saved at CFA + rbp_off */
	/* Any other rule (in a register, an expression): unknown in the caller. The walk
	 * goes on (rsp-based rules do not need it) and a later rbp-based rule stops it. */
	HP_UNW_RBP_UNKNOWN = 2,
};

struct hp_unw_row {
	__u16 pc_lo; /* the row's first address, within its page */
	__u8 kind;   /* enum hp_unw_row_kind */
	__u8 rbp;    /* enum hp_unw_rbp_rule */
	__s16 cfa_off;
	__s16 rbp_off;
};

struct hp_unw_page_key {
	__u32 table; /* a file's table id */
	__u32 page;  /* file address >> HP_UNW_PAGE_SHIFT */
};

struct hp_unw_page {
	__u32 first; /* index of its first row in hp_unw_rows */
	__u32 count; /* rows, >= 1; the first one starts at the page's offset 0 */
};

/* hp_unw_mapping.kind */
enum hp_unw_mapping_kind {
	HP_UNW_MAP_TABLE = 1,	/* rows in table `table` */
	HP_UNW_MAP_FP = 2,	/* no CFI at all (JIT code, a file without .eh_frame) */
	HP_UNW_MAP_PENDING = 3, /* the file's table is being built or did not fit */
};

/* The LPM trie key: the prefix covers pid (32 bits) then the address (big-endian). */
struct hp_unw_mapping_key {
	__u32 prefixlen;
	__u32 pid; /* big-endian, like addr: the trie compares bytes */
	__u64 addr;
};

struct hp_unw_mapping {
	__u32 kind;  /* enum hp_unw_mapping_kind */
	__u32 table; /* HP_UNW_MAP_TABLE */
	__u64 bias;  /* file address = address - bias */
	/* The whole mapping [start, end): the walker reuses this entry, without a trie
	 * lookup, for the next frames inside it. */
	__u64 start, end;
};

/* Why a user stack ended, in `hp_unw_stats` (a per-CPU array, summed by userspace) after
 * the frame counters. */
enum hp_unw_stat {
	HP_UNW_STAT_FRAMES_CFI,	 /* frames whose caller came from a CFI row */
	HP_UNW_STAT_FRAMES_FP,	 /* ... from a frame-pointer step */
	HP_UNW_STAT_FRAMES_GO,	 /* ... from a row built from Go's pclntab */
	HP_UNW_STAT_STACKS,	 /* stacks walked with tables */
	HP_UNW_STAT_FALLBACK_FP, /* stacks of processes without tables yet: bpf_get_stack */
	HP_UNW_STAT_END_OF_STACK,
	HP_UNW_STAT_NO_TABLE,	   /* an address in no mapping, or a FP step that failed */
	HP_UNW_STAT_TABLE_PENDING, /* a mapping whose table is not ready */
	HP_UNW_STAT_BAD_READ,	   /* a stack read failed (paged out, garbage) */
	HP_UNW_STAT_DEPTH_LIMIT,   /* HP_UNW_MAX_FRAMES reached */
	HP_UNW_STAT_INVALID_RULE,  /* a row this walker cannot follow */
	HP_UNW_STAT_NO_REGS,	   /* the task's user registers could not be read */
	HP_UNW_STAT_MAX,
};

#endif /* HOSTPROF_BPF_UNWIND_H */
