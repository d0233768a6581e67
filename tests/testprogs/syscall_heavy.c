/* Spends its time in system calls, so its samples have kernel frames (the syscall
 * entry path) under the user frame that made the call:
 *   main -> make_syscalls -> write(2) to /dev/null
 * Usage: syscall_heavy SECONDS */
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static char buf[65536];

__attribute__((noinline)) void make_syscalls(double seconds)
{
	int fd = open("/dev/null", O_WRONLY);
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		for (int i = 0; i < 1000; i++)
			if (write(fd, buf, sizeof(buf)) < 0)
				break;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 < seconds);
	close(fd);
}

int main(int argc, char **argv)
{
	make_syscalls(argc > 1 ? atof(argv[1]) : 5.0);
	return 0;
}
