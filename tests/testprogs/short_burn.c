/* A short-lived process: burns about MS milliseconds of CPU in one known function, then
 * exits. The profiler must symbolize it although /proc/PID is gone a few milliseconds
 * after its first sample. Built with frame pointers and without inlining.
 * Usage: short_burn [MS]   (default 20) */
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

static double elapsed_ms(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

__attribute__((noinline)) void short_burn_tick(void)
{
	__asm__ volatile("" ::: "memory");
}

/* The function the test looks for. CPU time, not wall time: a preempted run still burns
 * its full budget on a busy machine. */
__attribute__((noinline)) void short_burn_hot(double ms)
{
	struct timespec start, now;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &start);
	do {
		for (unsigned long i = 0; i < 20000; i++)
			sink += i;
		short_burn_tick();
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
	} while (elapsed_ms(&start, &now) < ms);
}

int main(int argc, char **argv)
{
	double ms = argc > 1 ? atof(argv[1]) : 20.0;

	short_burn_hot(ms);
	return 0;
}
