#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz/) and runs each for SECONDS (default
# 10), seeded from tests/data. A crash, leak, timeout or sanitizer report fails the run.
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
shift || true
all=(elf build_id maps perf_map kallsyms config flags web_config query unwind_cfi gopclntab line_table)
targets=("${@:-${all[@]}}")
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DHOSTPROF_FUZZ=ON -DHOSTPROF_BUILD_TESTS=OFF -DHOSTPROF_WERROR=ON >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]/#/fuzz_}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sym=tests/data/symbolizer
fz=tests/data/fuzz
for t in "${all[@]}"; do mkdir -p "$work/$t"; done
cp "$sym"/malformed/* "$sym"/base.elf "$sym"/minidebuginfo.elf "$sym"/dwarf.elf "$work/elf/"
cp "$sym"/malformed/* "$sym"/base.elf "$work/build_id/"
cp /proc/self/maps "$work/maps/self"
cp "$sym"/perf-garbage.map "$work/perf_map/"
cp "$sym"/kallsyms.txt "$work/kallsyms/"
for t in maps perf_map config flags web_config query unwind_cfi gopclntab; do cp "$fz/$t"/* "$work/$t/"; done
cp tests/data/unwind/*.elf "$work/unwind_cfi/"
# .debug_line of a test program (DWARF 5), and of the same built for DWARF 4.
objcopy -O binary --only-section=.debug_line "$sym"/dwarf.elf "$work/line_table/dwarf5"
printf 'int f(int x) { return x * 3; }\nint main(int c, char** v) { (void)v; return f(c); }\n' |
  cc -gdwarf-4 -O1 -x c - -o "$work/dwarf4.elf"
objcopy -O binary --only-section=.debug_line "$work/dwarf4.elf" "$work/line_table/dwarf4"
for t in "${targets[@]}"; do
  echo "fuzz_$t: ${secs}s"
  # -timeout: one input taking longer than 10 s (e.g. a regex blow-up) is a failure.
  ./build-fuzz/tests/fuzz/fuzz_$t -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
    -timeout=10 -artifact_prefix="$work/" "$work/$t" 2>"$work/$t.log" \
    || { tail -50 "$work/$t.log"; exit 1; }
  grep -E '^(Done|#[0-9]+ +DONE)' "$work/$t.log" | tail -1 || true
done
