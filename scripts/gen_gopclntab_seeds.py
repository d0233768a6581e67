#!/usr/bin/env python3
"""Writes the crafted .gopclntab seeds in tests/data/fuzz/gopclntab (small synthetic tables
in each format: three functions, a frame, a TOPFRAME function, a gap; broken ones; and the
1.18 table in a minimal ELF file, whole and truncated).
   scripts/gen_gopclntab_seeds.py [DIR]"""
import os
import struct
import sys

MAGIC = {"12": 0xFFFFFFFB, "116": 0xFFFFFFFA, "118": 0xFFFFFFF0, "120": 0xFFFFFFF1}
TEXT = 0x1000


def zz(v):
    return (v << 1) if v >= 0 else ((-v << 1) - 1)


def uvarint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        out += bytes([b | (0x80 if v else 0)])
        if not v:
            return out


def pcsp(segs):
    out, val = b"", -1
    for size, delta in segs:
        out += uvarint(zz(delta - val)) + uvarint(size)
        val = delta
    return out + b"\0"


# (name, entry offset, [(bytes, sp delta)], flag)
FUNCS = [
    ("main.f", 0x00, [(0x10, 0), (0x28, 0x18), (0x08, 0)], 0),
    ("runtime.goexit", 0x40, [(0x10, 0)], 1),
    ("main.g", 0x60, [(0x20, 0)], 0),  # a gap of 0x10 before it
]
ETEXT = 0x80


def build(ver, funcs=FUNCS, etext=ETEXT, nfunc=None, quantum=1):
    nfunc = len(funcs) if nfunc is None else nfunc
    names = b"".join(f[0].encode() + b"\0" for f in funcs)
    name_off, o = [], 0
    for f in funcs:
        name_off.append(o)
        o += len(f[0]) + 1
    tabs = [pcsp(f[2]) for f in funcs]
    if ver == "12":  # one table: header, functab, _funcs, names, pcsp
        hdr = struct.pack("<IBBBBQ", MAGIC[ver], 0, 0, quantum, 8, nfunc)
        ft_size = len(funcs) * 16 + 8
        fsz = 8 + 4 * 7
        funcs_at = len(hdr) + ft_size
        names_at = funcs_at + fsz * len(funcs)
        pc_at = names_at + len(names)
        pc_offs, o = [], pc_at
        for t in tabs:
            pc_offs.append(o)
            o += len(t)
        ft, fb = b"", b""
        for i, f in enumerate(funcs):
            ft += struct.pack("<QQ", TEXT + f[1], funcs_at + i * fsz)
            fb += struct.pack("<QiiiIIIIi", TEXT + f[1], names_at + name_off[i], 0, 0,
                              pc_offs[i], 0, 0, 0, 0)[:fsz]
        ft += struct.pack("<Q", TEXT + etext)
        return hdr + ft + fb + names + b"".join(tabs)
    v118 = ver in ("118", "120")
    nwords = 8 if v118 else 7
    hdr_size = 8 + 8 * nwords
    pctab = b"\0" + b"".join(tabs)
    pc_offs, o = [], 1
    for t in tabs:
        pc_offs.append(o)
        o += len(t)
    names_at = hdr_size
    pctab_at = names_at + len(names)
    functab_at = pctab_at + len(pctab)
    esz = 8 if v118 else 16
    ft_size = len(funcs) * esz + (4 if v118 else 8)
    fsz = {"116": 44, "118": 40, "120": 44}[ver]
    ft, fb = b"", b""
    for i, f in enumerate(funcs):
        funcoff = ft_size + i * fsz
        if v118:
            ft += struct.pack("<II", f[1], funcoff)
            body = struct.pack("<IiiIIIIII", f[1], name_off[i], 0, 0, pc_offs[i], 0, 0, 0, 0)
        else:
            ft += struct.pack("<QQ", TEXT + f[1], funcoff)
            body = struct.pack("<QiiIIIIII", TEXT + f[1], name_off[i], 0, 0, pc_offs[i], 0, 0, 0, 0)
        if ver == "120":
            body += struct.pack("<i", 0)
        body += bytes([0, f[3], 0, 0])
        fb += body
    ft += struct.pack("<I", etext) if v118 else struct.pack("<Q", TEXT + etext)
    words = [nfunc, 0] + ([TEXT] if v118 else []) + [names_at, 0, 0, pctab_at, functab_at]
    hdr = struct.pack("<IBBBB", MAGIC[ver], 0, 0, quantum, 8) + struct.pack("<%dQ" % nwords, *words)
    return hdr + names + pctab + ft + fb


def elf(table):
    """A minimal ELF64 x86-64 file: .text at TEXT (main.f's prologue saves BP, the rest is
    INT3) and .gopclntab after it, in one executable PT_LOAD."""
    code = bytearray(b"\xcc" * ETEXT)
    code[0x10:0x1A] = bytes.fromhex("48896c2410" "488d6c2410")  # MOVQ BP, 0x10(SP); LEAQ
    text_off, tab_off = 0x100, 0x200
    shstr = b"\0.text\0.gopclntab\0.shstrtab\0"
    str_off = tab_off + len(table)
    sh_off = (str_off + len(shstr) + 7) & ~7
    body = bytearray(sh_off)
    body[text_off:text_off + len(code)] = code
    body[tab_off:tab_off + len(table)] = table
    body[str_off:str_off + len(shstr)] = shstr
    base = TEXT - text_off
    ehdr = struct.pack("<4sBBBBB7sHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, b"\0" * 7, 2, 62,
                       1, TEXT, 64, sh_off, 0, 64, 56, 1, 64, 4, 3)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, sh_off, sh_off, 0x1000)
    body[0:64] = ehdr
    body[64:64 + 56] = phdr

    def sh(name, typ, flags, addr, off, size):
        return struct.pack("<IIQQQQIIQQ", name, typ, flags, addr, off, size, 0, 0, 1, 0)
    shdrs = sh(0, 0, 0, 0, 0, 0) + sh(1, 1, 6, TEXT, text_off, len(code)) + \
        sh(7, 1, 2, base + tab_off, tab_off, len(table)) + sh(18, 3, 0, 0, str_off, len(shstr))
    return bytes(body) + shdrs


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "tests", "data", "fuzz", "gopclntab")
    os.makedirs(d, exist_ok=True)
    out = {}
    for v in MAGIC:
        out["ok_v%s.bin" % v] = build(v)
    good = build("118")
    out["ok_v118.elf"] = elf(good)
    out["bad_truncated.elf"] = elf(good)[:0x230]
    out["bad_truncated.bin"] = good[: len(good) - 7]
    out["bad_magic.bin"] = b"\xfe" + good[1:]
    out["bad_quantum.bin"] = build("118", quantum=4)
    out["bad_nfunc_huge.bin"] = build("118", nfunc=1 << 40)
    long_f = [("main.f", 0x00, [(0x10, 0), (0x48, 0x18)], 0)] + FUNCS[1:]
    out["bad_pcsp_past_next.bin"] = build("120", funcs=long_f)
    swapped = [FUNCS[0], FUNCS[2], FUNCS[1]]
    out["bad_order.bin"] = build("116", funcs=swapped)
    out["bad_etext_before_end.bin"] = build("12", etext=0x70)
    for name, data in out.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
