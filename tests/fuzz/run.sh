#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz/) and runs each for SECONDS (default
# 10), seeded from tests/data. A crash, leak or sanitizer report fails the run.
#   tests/fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DHOSTPROF_FUZZ=ON -DHOSTPROF_BUILD_TESTS=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target fuzz_elf fuzz_maps fuzz_perf_map fuzz_kallsyms
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
data=tests/data/symbolizer
mkdir -p "$work"/{elf,maps,perf_map,kallsyms}
cp "$data"/malformed/* "$data"/base.elf "$data"/minidebuginfo.elf "$work/elf/"
cp /proc/self/maps "$work/maps/self"
cp "$data"/perf-garbage.map "$work/perf_map/"
cp "$data"/kallsyms.txt "$work/kallsyms/"
for t in elf maps perf_map kallsyms; do
  echo "fuzz_$t: ${secs}s"
  ./build-fuzz/tests/fuzz/fuzz_$t -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
    -artifact_prefix="$work/" "$work/$t" 2>"$work/$t.log" || { tail -50 "$work/$t.log"; exit 1; }
  grep -E '^(Done|#[0-9]+ +DONE)' "$work/$t.log" | tail -1 || true
done
