// The struct offsets of CPython 3.11 as its own headers define them: compiled and run by
// tests/unit/unwind_python_test.cpp against /usr/include/python3.11 (Debian's python3.11-dev)
// and compared with unwind/python.cpp's table. Prints "struct.field offset" per line.
//   cc -I/usr/include/python3.11 offsets.c -o offsets && ./offsets
#define Py_BUILD_CORE 1
#include <Python.h>
#include <internal/pycore_runtime.h>
#include <internal/pycore_interp.h>
#include <internal/pycore_frame.h>
#include <internal/pycore_code.h>
#include <stddef.h>
#include <stdio.h>
#define P(s, f) printf("%s.%s %zu\n", #s, #f, offsetof(s, f))
int main(void) {
    P(_PyRuntimeState, interpreters.head);
    P(_PyRuntimeState, gilstate.tstate_current);
    P(_PyRuntimeState, gilstate.autoTSSkey);
    P(PyInterpreterState, next);
    P(PyInterpreterState, threads.head);
    P(PyThreadState, next);
    P(PyThreadState, interp);
    P(PyThreadState, cframe);
    P(PyThreadState, thread_id);
    P(PyThreadState, native_thread_id);
    P(_PyCFrame, current_frame);
    P(_PyInterpreterFrame, f_code);
    P(_PyInterpreterFrame, previous);
    P(_PyInterpreterFrame, prev_instr);
    P(_PyInterpreterFrame, owner);
    P(_PyInterpreterFrame, is_entry);
    P(PyCodeObject, co_qualname);
    P(PyASCIIObject, length);
    P(PyCodeObject, co_name);
    P(PyCodeObject, co_filename);
    P(PyCodeObject, co_firstlineno);
    P(PyCodeObject, co_linetable);
    P(PyCodeObject, co_code_adaptive);
    P(PyObject, ob_type);
    P(PyVarObject, ob_size);
    P(PyASCIIObject, state);
    P(PyCompactUnicodeObject, utf8_length);
    P(PyCompactUnicodeObject, utf8);
    P(PyBytesObject, ob_sval);
    printf("sizeof.PyASCIIObject %zu\n", sizeof(PyASCIIObject));
    printf("sizeof.PyCompactUnicodeObject %zu\n", sizeof(PyCompactUnicodeObject));
    printf("PY_VERSION_HEX %x\n", PY_VERSION_HEX);
    printf("sizeof._Py_CODEUNIT %zu\n", sizeof(_Py_CODEUNIT));
    printf("sizeof._PyRuntimeState %zu\n", sizeof(_PyRuntimeState));
    return 0;
}
