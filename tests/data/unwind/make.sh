#!/bin/sh
# Regenerates the unwind-table test objects from nofp.c (gcc, binutils):
#   nofp.elf           -O2 -fomit-frame-pointer, PIE, .eh_frame + .eh_frame_hdr, .symtab
#   nofp-stripped.elf  the same after strip (strip keeps .eh_frame)
#   nocfi.elf          no CFI at all: compiled without unwind tables, .eh_frame removed
#   debugframe.elf     .debug_frame only (-fno-asynchronous-unwind-tables -g, .eh_frame removed)
#   split.elf + split.debug  the same split: code stripped, .debug_frame (compressed) in the debug file
set -eu
cd "$(dirname "$0")"
CFLAGS="-O2 -fomit-frame-pointer"
gcc $CFLAGS -o nofp.elf nofp.c
strip -o nofp-stripped.elf nofp.elf
gcc $CFLAGS -fno-asynchronous-unwind-tables -fno-unwind-tables -o nocfi.tmp nofp.c
objcopy --remove-section=.eh_frame --remove-section=.eh_frame_hdr nocfi.tmp nocfi.elf
gcc $CFLAGS -fno-asynchronous-unwind-tables -fno-unwind-tables -g -o debugframe.tmp nofp.c
objcopy --remove-section=.eh_frame --remove-section=.eh_frame_hdr debugframe.tmp debugframe.elf
# (objcopy warns that the notes of a debug-only file are in no segment: harmless)
objcopy --only-keep-debug --compress-debug-sections=zlib debugframe.elf split.debug 2>/dev/null
objcopy --strip-all --add-gnu-debuglink=split.debug debugframe.elf split.elf
rm -f nocfi.tmp debugframe.tmp
