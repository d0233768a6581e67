#!/bin/sh
# Generates the syscall-name table of the build's architecture from the kernel UAPI
# header (e.g. /usr/include/x86_64-linux-gnu/asm/unistd_64.h): one `{nr, "name"},` line
# per `#define __NR_name nr`. Run by CMake at build time (kernel-compat/CMakeLists.txt); the
# output is included by kernel-compat/syscall_table.cpp. Nothing here is hand-typed.
# Usage: gen_syscall_table.sh UNISTD_H OUTPUT MAX_NR
set -eu
in=$1
out=$2
max=$3
tmp="$out.tmp"
awk -v max="$max" -v src="$in" '
BEGIN { n = 0 }
$1 == "#define" && $2 ~ /^__NR_[A-Za-z0-9_]+$/ && $3 ~ /^[0-9]+$/ {
    name = substr($2, 6)
    nr = $3 + 0
    if (nr >= max) {
        printf "gen_syscall_table: %s = %d is not below HP_SYS_MAX_NR (%d)\n", name, nr, max > "/dev/stderr"
        exit 1
    }
    lines[n++] = sprintf("{%d, \"%s\"},", nr, name)
}
END {
    if (n == 0) {
        printf "gen_syscall_table: no __NR_ definitions in %s\n", src > "/dev/stderr"
        exit 1
    }
    printf "// Generated from %s by scripts/gen_syscall_table.sh. Do not edit.\n", src
    for (i = 0; i < n; i++)
        print lines[i]
}' "$in" > "$tmp"
mv "$tmp" "$out"
