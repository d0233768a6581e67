/* Makes a known set of system calls for the syscall-latency test:
 *   N nanosleep(10 ms) and M getppid, each through syscall(2) so that glibc does not
 *   substitute clock_nanosleep; then one read(2) on a pipe that a child fills 50 ms later,
 *   issued by slow_read() with an inline `syscall` instruction, so the user stack's leaf
 *   frame is inside slow_read (a libc wrapper would hide it from frame-pointer unwinding);
 *   K close(-1) that fail with EBADF. The helper child sleeps with usleep (glibc's
 *   clock_nanosleep), so nanosleep is made N times exactly by this program's processes.
 * Prints "slow_read 0x<address>" first, so the test can match the outlier's user frames.
 * Usage: syscall_latency N M K [LINGER_MS]: LINGER_MS, the time to stay alive after the slow
 * read, lets an agent read the process's mappings before it exits. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) long slow_read(int fd, char *buf, unsigned long len)
{
	/* GCC gives a leaf no frame even with -fno-omit-frame-pointer, and then the unwinder
	 * goes from slow_read straight to main's caller: taking the frame address makes it
	 * push one, so main is in the stack. */
	void *volatile frame = __builtin_frame_address(0);
	long ret;

	(void)frame;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "0"((long)SYS_read), "D"((long)fd), "S"(buf), "d"(len)
			 : "rcx", "r11", "memory");
	return ret;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10;
	int m = argc > 2 ? atoi(argv[2]) : 100;
	int k = argc > 3 ? atoi(argv[3]) : 0;
	int linger_ms = argc > 4 ? atoi(argv[4]) : 0;
	struct timespec ten_ms = {0, 10 * 1000 * 1000};
	int fds[2];
	char c = 0;
	pid_t child;

	printf("slow_read %p\n", (void *)slow_read);
	fflush(stdout);
	for (int i = 0; i < n; i++)
		syscall(SYS_nanosleep, &ten_ms, NULL);
	for (int i = 0; i < m; i++)
		syscall(SYS_getppid);
	for (int i = 0; i < k; i++)
		syscall(SYS_close, -1);

	if (pipe(fds) != 0)
		return 1;
	child = fork();
	if (child < 0)
		return 1;
	if (child == 0) {
		usleep(50 * 1000);
		if (write(fds[1], "x", 1) != 1)
			_exit(1);
		_exit(0);
	}
	if (slow_read(fds[0], &c, 1) != 1)
		return 1;
	waitpid(child, NULL, 0);
	if (linger_ms > 0)
		usleep((useconds_t)linger_ms * 1000);
	return c == 'x' ? 0 : 1;
}
