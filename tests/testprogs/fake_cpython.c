// A program that looks like a CPython interpreter of a version the offsets table does not
// have (3.12): a `_PyRuntime` symbol and a `Py_Version` of 0x030c00f0. The unwind store
// must count it as an unsupported interpreter and never point the Python walk at it.
#include <unistd.h>

__attribute__((used)) char _PyRuntime[4096];
__attribute__((used)) const unsigned long Py_Version = 0x030c00f0UL;

int main(void)
{
	for (;;)
		pause();
}
