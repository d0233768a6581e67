#!/usr/bin/env python3
"""Makes tests/data/symbolizer/malformed/* from base.elf (gcc -O1 -o base.elf base.c).
Each file breaks one thing the ELF reader must reject cleanly. Run from this directory."""
import struct

base = bytearray(open("base.elf", "rb").read())
# ELF64 header fields
e_phoff, = struct.unpack_from("<Q", base, 0x20)
e_shoff, = struct.unpack_from("<Q", base, 0x28)
e_phnum, = struct.unpack_from("<H", base, 0x38)
e_shnum, = struct.unpack_from("<H", base, 0x3C)
e_shstrndx, = struct.unpack_from("<H", base, 0x3E)

def shdr(i):
    return e_shoff + i * 64

def section_by_type(t):
    for i in range(e_shnum):
        if struct.unpack_from("<I", base, shdr(i) + 4)[0] == t:
            return i
    raise SystemExit("no section of type %d" % t)

def write(name, data):
    open("malformed/" + name, "wb").write(bytes(data))

write("truncated.elf", base[:200])                  # cut inside the program headers
b = bytearray(base); struct.pack_into("<Q", b, 0x28, len(base) + 4096)
write("shoff_past_eof.elf", b)                      # section headers after the end
b = bytearray(base); struct.pack_into("<H", b, 0x3E, e_shnum + 5)
write("shstrndx_out_of_range.elf", b)
b = bytearray(base); struct.pack_into("<H", b, 0x3C, 0xFFF0)
write("huge_shnum.elf", b)                          # 65520 sections in a small file
symtab = section_by_type(2)                         # SHT_SYMTAB
b = bytearray(base); struct.pack_into("<Q", b, shdr(symtab) + 0x20, 1 << 40)
write("huge_symtab_size.elf", b)                    # symbol table size of 1 TiB
strtab = struct.unpack_from("<I", base, shdr(symtab) + 0x28)[0]   # sh_link
off, = struct.unpack_from("<Q", base, shdr(strtab) + 0x18)
size, = struct.unpack_from("<Q", base, shdr(strtab) + 0x20)
b = bytearray(base); b[off + size - 1] = ord("X")
write("unterminated_strtab.elf", b)                 # last byte of .strtab is not NUL
b = bytearray(base); struct.pack_into("<H", b, 0x38, 0)
write("zero_phdrs.elf", b)                          # ET_DYN without program headers
for i in range(e_shnum):                            # .note.gnu.build-id: n_descsz huge
    if struct.unpack_from("<I", base, shdr(i) + 4)[0] == 7:
        noff, = struct.unpack_from("<Q", base, shdr(i) + 0x18)
        namesz, descsz, ntype = struct.unpack_from("<III", base, noff)
        if ntype == 3:
            b = bytearray(base); struct.pack_into("<I", b, noff + 4, 0x7FFFFFF0)
            write("oversized_note.elf", b)
            break
write("not_elf.bin", b"#!/bin/sh\necho not an ELF file\n" + bytes(64))
write("empty.elf", b"")
