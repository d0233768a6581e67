/* Built -O2 -fomit-frame-pointer (tests/CMakeLists.txt), as Debian builds its packages:
 * the call chains the unwinder must walk without frame pointers. One mode per argument:
 *   chain    main -> chain_a -> chain_b -> chain_leaf
 *   qsort    main -> sort_loop -> qsort (libc) -> by_weight (a callback) -> weigh
 *   signal   main -> signal_loop -> (a SIGPROF handler: on_signal -> signal_leaf),
 *            interrupting whatever it ran: the walk crosses the signal frame
 *   plt      main -> plt_loop -> memset (libc, through the PLT)
 *   deep     main -> recurse x 110 -> deep_leaf
 *   threads  4 threads: start_thread -> thread_main -> thread_work -> thread_leaf
 *   sleep    main -> sleep_loop -> nanosleep (off-CPU)
 *   vdso     main -> vdso_loop -> clock_gettime (the vDSO: no system call)
 * It runs until killed. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

volatile unsigned long sink;

#define NOINLINE __attribute__((noinline))

static NOINLINE void spin(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		sink += i ^ (sink >> 3);
}

NOINLINE void chain_leaf(void)
{
	spin(200000);
}
NOINLINE void chain_b(void)
{
	chain_leaf();
	sink++;
}
NOINLINE void chain_a(void)
{
	chain_b();
	sink++;
}

NOINLINE void weigh(void)
{
	spin(2000);
}
NOINLINE int by_weight(const void *a, const void *b)
{
	weigh();
	return *(const int *)a - *(const int *)b;
}
NOINLINE void sort_loop(void)
{
	int v[64];
	for (;;) {
		for (int i = 0; i < 64; i++)
			v[i] = (i * 7919) % 64;
		qsort(v, 64, sizeof(int), by_weight);
	}
}

NOINLINE void signal_leaf(void)
{
	spin(5000000);
}
NOINLINE void on_signal(int sig)
{
	(void)sig;
	signal_leaf();
	sink++;
}
NOINLINE void signal_loop(void)
{
	struct sigaction sa;
	struct itimerval it = {{0, 20000}, {0, 20000}};
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGPROF, &sa, NULL);
	setitimer(ITIMER_PROF, &it, NULL);
	for (;;)
		spin(1000);
}

static char buf[1 << 20];
NOINLINE void plt_loop(void)
{
	for (;;) {
		memset(buf, (int)sink, sizeof(buf));
		sink += buf[sink & 1023];
	}
}

NOINLINE void deep_leaf(void)
{
	spin(200000);
}
NOINLINE int recurse(int n)
{
	if (n == 0) {
		deep_leaf();
		return 0;
	}
	int r = recurse(n - 1);
	sink += r;
	return r + 1;
}

NOINLINE void thread_leaf(void)
{
	spin(200000);
}
NOINLINE void thread_work(void)
{
	thread_leaf();
	sink++;
}
NOINLINE void *thread_main(void *arg)
{
	(void)arg;
	for (;;)
		thread_work();
	return NULL;
}

NOINLINE void sleep_loop(void)
{
	struct timespec ts = {0, 5000000};
	for (;;)
		nanosleep(&ts, NULL);
}

NOINLINE void vdso_loop(void)
{
	struct timespec ts;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		sink += ts.tv_nsec;
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "chain";

	if (!strcmp(mode, "qsort"))
		sort_loop();
	else if (!strcmp(mode, "signal"))
		signal_loop();
	else if (!strcmp(mode, "plt"))
		plt_loop();
	else if (!strcmp(mode, "deep"))
		for (;;)
			recurse(110);
	else if (!strcmp(mode, "vdso"))
		vdso_loop();
	else if (!strcmp(mode, "sleep"))
		sleep_loop();
	else if (!strcmp(mode, "threads")) {
		pthread_t t[4];
		for (int i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, thread_main, NULL);
		pthread_join(t[0], NULL);
	} else
		for (;;)
			chain_a();
	return 0;
}
