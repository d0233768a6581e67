/* Call chain main -> f -> g -> leaf, built -O2 -fomit-frame-pointer (make.sh): the
 * unwind-table tests look for rows covering each function. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) long leaf(long n) {
    volatile long acc = 0;
    for (long i = 0; i < n; ++i)
        acc += i * i;
    return acc;
}

__attribute__((noinline)) long g(long n) {
    long buf[32];
    for (int i = 0; i < 32; ++i)
        buf[i] = leaf(n + i);
    return buf[n & 31] + buf[3];
}

__attribute__((noinline)) long f(long n) {
    return g(n) + g(n + 1) * 3;
}

int main(int argc, char** argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    printf("%ld\n", f(n));
    return 0;
}
