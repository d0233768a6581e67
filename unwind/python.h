// CPython: find the interpreter in an ELF file (the python3 executable or libpython3.X.so),
// its version and the struct offsets of that version, and read a live process's Python
// threads and frames from outside (process_vm_readv), resolving code objects to
// {qualname, filename, first line} and instruction offsets to lines.
//
// Userspace only: the symbolizer's half of issue 23. The BPF walk (bpf/lib/) will report
// frames as (code object address, instruction offset); PythonReader::code() and
// python_addr_to_line() turn those into names and lines.
//
// Offsets are a table per minor version, each entry checked against CPython's own headers
// with offsetof (tests/unit/unwind_python_test.cpp compiles a C program against
// /usr/include/python3.X when the headers are installed). Only 3.11 is in the table today;
// other versions are refused with a reason (ENOTSUP), never read with a guessed layout.
#pragma once

#include <libelf.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"

namespace hostprof::unwind {

// Byte offsets of the fields the walk and the symbolizer read (x86-64, 8-byte pointers).
struct PythonOffsets {
    // _PyRuntimeState
    uint16_t runtime_interpreters_head = 0; // interpreters.head (PyInterpreterState*)
    uint16_t runtime_tstate_current = 0;    // gilstate.tstate_current (the GIL holder)
    uint16_t runtime_autotss_key =
        0;                     // gilstate.autoTSSkey (Py_tss_t: {int init; pthread_key_t key})
    uint32_t runtime_size = 0; // sizeof(_PyRuntimeState) (== st_size of _PyRuntime)
    // PyInterpreterState
    uint16_t interp_next = 0;         // next
    uint16_t interp_threads_head = 0; // threads.head (PyThreadState*)
    // PyThreadState
    uint16_t tstate_next = 0;
    uint16_t tstate_interp = 0;
    uint16_t tstate_cframe = 0;           // cframe (_PyCFrame*)
    uint16_t tstate_thread_id = 0;        // pthread_self()
    uint16_t tstate_native_thread_id = 0; // the kernel's tid
    // _PyCFrame
    uint16_t cframe_current_frame = 0; // current_frame (_PyInterpreterFrame*)
    // _PyInterpreterFrame
    uint16_t frame_code = 0;       // f_code (PyCodeObject*)
    uint16_t frame_previous = 0;   // previous
    uint16_t frame_prev_instr = 0; // prev_instr (_Py_CODEUNIT*)
    uint16_t frame_is_entry = 0; // is_entry (bool): first frame of a _PyEval_EvalFrameDefault call
    uint16_t frame_owner = 0;    // owner (char): 0 thread, 1 generator, 2 frame object
    // PyCodeObject
    uint16_t code_filename = 0;
    uint16_t code_name = 0;
    uint16_t code_qualname = 0;
    uint16_t code_firstlineno = 0; // int
    uint16_t code_linetable = 0;   // PyBytesObject*
    uint16_t code_code = 0;        // co_code_adaptive: the first code unit (_PyCode_CODE)
    // Objects
    uint16_t object_type = 0;          // ob_type
    uint16_t varobject_size = 0;       // ob_size
    uint16_t bytes_data = 0;           // PyBytesObject.ob_sval
    uint16_t unicode_length = 0;       // PyASCIIObject.length (code points)
    uint16_t unicode_state = 0;        // PyASCIIObject.state (bit field, 4 bytes)
    uint16_t unicode_ascii_data = 0;   // sizeof(PyASCIIObject): data of a compact ASCII string
    uint16_t unicode_compact_data = 0; // sizeof(PyCompactUnicodeObject): of a compact non-ASCII one
    uint16_t codeunit_size = 0;        // sizeof(_Py_CODEUNIT)
};

struct PythonVersion {
    int major = 0, minor = 0, micro = 0;
    std::string str() const;
};

// The offsets for a minor version; ENOTSUP with the reason when not in the table.
Result<PythonOffsets> python_offsets(int major, int minor);

struct PythonSegment {
    uint64_t vaddr = 0, offset = 0, filesz = 0;
};

struct PythonRuntime {
    PythonVersion version;
    std::string version_source; // "Py_Version" or ".rodata string"
    PythonOffsets offsets;
    uint64_t runtime_addr = 0;           // file address (p_vaddr space) of _PyRuntime
    uint64_t runtime_size = 0;           // its st_size
    std::vector<PythonSegment> segments; // PT_LOADs, for the load bias of a mapping
    // The interpreter loop, _PyEval_EvalFrameDefault (file addresses; 0 when the symbol is
    // not in the file): its native frames are where Python frames go.
    uint64_t eval_addr = 0, eval_size = 0;

    // file address = process address - bias, for a mapping of this file at `start` with
    // file offset `offset`; false when no segment holds that offset.
    bool bias_for(uint64_t start, uint64_t offset, uint64_t& bias) const;
};

// ENOENT: no CPython interpreter in this file (no _PyRuntime); ENOTSUP: CPython of a version
// not in the table (the version is in the message); EINVAL: not a usable ELF file.
// `version`, when given, is set as soon as the version is known (also for ENOTSUP).
Result<PythonRuntime> detect_python(Elf* elf, const std::string& name,
                                    PythonVersion* version = nullptr);
Result<PythonRuntime> detect_python(int fd, const std::string& name,
                                    PythonVersion* version = nullptr);
Result<PythonRuntime> detect_python(const std::string& path);

// 3.11+ co_linetable (Objects/locations.md): the line of the instruction at byte offset
// `addrq` from the first code unit; co_firstlineno for addrq < 0 (as PyCode_Addr2Line), 0
// for no line (a "no location" entry, an offset past the table, or a corrupt table).
int python_addr_to_line(std::span<const uint8_t> linetable, int firstlineno, int64_t addrq);

// Reads another process's memory. The seam for tests.
class ProcessMemory {
  public:
    virtual ~ProcessMemory() = default;
    // All `size` bytes or false.
    virtual bool read(uint64_t addr, void* buf, size_t size) = 0;
};

// process_vm_readv: needs ptrace access to the process (root, or a child of ours).
class ProcessVmMemory final : public ProcessMemory {
  public:
    explicit ProcessVmMemory(int pid) : pid_(pid) {}
    bool read(uint64_t addr, void* buf, size_t size) override;

  private:
    int pid_;
};

// Finds the mapping of `runtime`'s file in /proc/PID/maps (matched by the path as the
// kernel shows it, e.g. "/usr/bin/python3.11") and returns its load bias.
Result<uint64_t> python_bias(const PythonRuntime& runtime, int pid, const std::string& path,
                             const std::string& proc_root = "/proc");

struct PythonFrame {
    uint64_t frame = 0; // _PyInterpreterFrame address
    uint64_t code = 0;  // PyCodeObject address
    int64_t instr = -1; // byte offset of prev_instr from the first code unit (-2: none yet)
    uint8_t owner = 0;
    bool is_entry = false; // the last Python frame of this _PyEval_EvalFrameDefault call
};

struct PythonThread {
    uint64_t tstate = 0;
    uint64_t thread_id = 0;        // pthread_t
    uint64_t native_thread_id = 0; // tid
    uint64_t current_frame = 0;
};

struct PythonCode {
    std::string qualname; // co_qualname ("Class.method", "<module>")
    std::string name;     // co_name
    std::string filename; // co_filename
    int firstlineno = 0;
    std::vector<uint8_t> linetable;
};

struct PythonReaderOptions {
    size_t max_threads = 1024;
    size_t max_frames = 1024;
    size_t max_string = 4096;          // bytes of a name or filename (longer: truncated)
    size_t max_linetable = 256 * 1024; // bytes (longer: lines are 0)
    size_t max_cached_codes = 16384;   // code objects kept (LRU)
};

class PythonReader {
  public:
    // `bias`: process address = file address + bias.
    PythonReader(PythonRuntime runtime, uint64_t bias, ProcessMemory& mem,
                 PythonReaderOptions opt = {});

    uint64_t runtime_address() const { return runtime_.runtime_addr + bias_; }

    // Every thread state of every interpreter (EIO: memory unreadable; ELOOP: a list longer
    // than max_threads).
    Result<std::vector<PythonThread>> threads();
    // The thread state holding the GIL (0 when none).
    Result<uint64_t> gil_holder();
    // The frames from `first` (a thread's current_frame), innermost first.
    Result<std::vector<PythonFrame>> frames(uint64_t first);
    // A code object's strings and line table, read once and cached (bounded, LRU).
    Result<PythonCode> code(uint64_t code_addr);
    // The line of a frame.
    Result<int> line(const PythonFrame& f);

    size_t cached_codes() const { return lru_.size(); }
    size_t code_reads() const { return code_reads_; }

  private:
    bool read_u64(uint64_t addr, uint64_t& v);
    Result<std::string> read_unicode(uint64_t addr);
    Result<PythonCode> read_code(uint64_t code_addr);

    PythonRuntime runtime_;
    uint64_t bias_;
    ProcessMemory& mem_;
    PythonReaderOptions opt_;
    std::list<std::pair<uint64_t, PythonCode>> lru_; // most recent first
    std::unordered_map<uint64_t, std::list<std::pair<uint64_t, PythonCode>>::iterator> index_;
    size_t code_reads_ = 0;
};

} // namespace hostprof::unwind
