/* Burns CPU in two known functions in a fixed 3:1 ratio, under a known call chain:
 *   main -> run_workload -> hot_three_quarters / hot_one_quarter -> spin
 * Built with frame pointers and without inlining (tests/CMakeLists.txt).
 * Usage: cpu_ratio SECONDS */
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

__attribute__((noinline)) void done(void)
{
	__asm__ volatile("" ::: "memory");
}

/* Calls done() so that it is not a leaf: GCC omits the frame pointer of leaf functions
 * even with -fno-omit-frame-pointer, and a frame-pointer walk from a frameless leaf
 * skips its caller. */
__attribute__((noinline)) void spin(unsigned long iterations)
{
	for (unsigned long i = 0; i < iterations; i++)
		sink += i;
	done();
}

__attribute__((noinline)) void hot_three_quarters(unsigned long k)
{
	spin(3 * k);
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void hot_one_quarter(unsigned long k)
{
	spin(k);
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void run_workload(double seconds)
{
	struct timespec start, now;

	unsigned int seed = 1;

	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		/* A varying round length: a fixed one can beat with the sampling period and
		 * bias which function the samples fall in (seen: 4.6:1 on a quiet machine). */
		unsigned long k = 100000 + (unsigned long)(rand_r(&seed) % 200000);

		hot_three_quarters(k);
		hot_one_quarter(k);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 < seconds);
}

int main(int argc, char **argv)
{
	run_workload(argc > 1 ? atof(argv[1]) : 5.0);
	return 0;
}
