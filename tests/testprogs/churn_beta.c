/* A short-lived process for the churn test (tests/bpf/churn_bpf_test.cpp): spins about
 * MS milliseconds (default 5) of CPU in churn_beta_work, then exits. Its twin churn_alpha.c
 * is the same program under other names, so a sample attributed to the wrong executable
 * shows as the other twin's function name. Usage: churn_beta [MS] */
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

__attribute__((noinline)) void churn_beta_leaf(void)
{
	__asm__ volatile("" ::: "memory");
}

/* Not a leaf (it calls churn_beta_leaf), so it keeps its frame pointer. */
__attribute__((noinline)) void churn_beta_work(long ms)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int i = 0; i < 10000; i++)
			sink += (unsigned long)i;
		churn_beta_leaf();
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

int main(int argc, char **argv)
{
	churn_beta_work(argc > 1 ? atol(argv[1]) : 5);
	return 0;
}
