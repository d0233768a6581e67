/* Blocks for 100 ms at a time in a known function:
 *   main -> sleepy_function -> nanosleep(2)
 * The system call is made inline: libc is built without frame pointers, and a
 * frame-pointer walk from inside libc's wrapper would skip sleepy_function.
 * Usage: offcpu_sleep CALLS */
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>

__attribute__((noinline)) void sleepy_function(void)
{
	struct timespec ts = {0, 100 * 1000 * 1000};
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "0"((long)SYS_nanosleep), "D"(&ts), "S"(0L)
			 : "rcx", "r11", "memory");
	(void)ret;
}

int main(int argc, char **argv)
{
	int calls = argc > 1 ? atoi(argv[1]) : 10;

	for (int i = 0; i < calls; i++)
		sleepy_function();
	return 0;
}
