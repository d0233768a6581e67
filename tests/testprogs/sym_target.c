// Symbolizer target: prints the addresses of three functions (one line each, "name 0xADDR"),
// then waits until stdin closes, so a test can symbolize it live and after it exits.
#include <stdio.h>
#include <unistd.h>

__attribute__((noinline)) int sym_target_alpha(int x)
{
	return x * 3 + 1;
}
__attribute__((noinline)) int sym_target_beta(int x)
{
	return sym_target_alpha(x) ^ 0x55;
}
__attribute__((noinline)) int sym_target_gamma(int x)
{
	return sym_target_beta(x) + 7;
}

int main(void)
{
	printf("sym_target_alpha %p\n", (void *)&sym_target_alpha);
	printf("sym_target_beta %p\n", (void *)&sym_target_beta);
	printf("sym_target_gamma %p\n", (void *)&sym_target_gamma);
	fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0)
		;
	return sym_target_gamma((int)c) == 12345;
}
