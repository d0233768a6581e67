/* Blocks for 100 ms at a time in a known function:
 *   main -> sleepy_function -> nanosleep
 * Usage: offcpu_sleep CALLS */
#include <stdlib.h>
#include <time.h>

__attribute__((noinline)) void sleepy_function(void)
{
	struct timespec ts = {0, 100 * 1000 * 1000};

	nanosleep(&ts, NULL);
	__asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
	int calls = argc > 1 ? atoi(argv[1]) : 10;

	for (int i = 0; i < calls; i++)
		sleepy_function();
	return 0;
}
