#!/usr/bin/env bash
# Renders the measured kernel matrix (tests/vm/run.sh's results) as the Markdown section
# that run.sh --docs puts between the matrix markers of docs/kernel-support.md.
#   tests/vm/docs.sh RESULTS_DIR KERNEL...
set -euo pipefail
dir=$1
shift
kernels=("$@")
root=$(cd "$(dirname "$0")/../.." && pwd)

field() { # KERNEL KIND NAME: the rest of the first matching line after its name
  sed -n "s/^MATRIX $1 $2 $3 //p" "$dir/$1.txt" | head -1
}
cell() { # KERNEL CHECK
  local line
  line=$(grep -E "^MATRIX $1 $2 (PASS|FAIL) " "$dir/$1.txt" | head -1 | cut -d' ' -f4)
  echo "${line:--}"
}

commit=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
echo
echo "Measured by \`tests/vm/run.sh --docs\` on $(date -u +%Y-%m-%d) (hostprof $commit, qemu TCG, 2 vCPUs):"
echo

# Checks x kernels.
header="| check |"
rule="|---|"
for k in "${kernels[@]}"; do
  header+=" $k |"
  rule+="---|"
done
echo "$header"
echo "$rule"
checks=$(for k in "${kernels[@]}"; do
  grep -E "^MATRIX $k [^ ]+ (PASS|FAIL) " "$dir/$k.txt" | cut -d' ' -f3
done | awk '!seen[$0]++')
for c in $checks; do
  row="| \`$c\` |"
  for k in "${kernels[@]}"; do row+=" $(cell "$k" "$c") |"; done
  echo "$row"
done
row="| package |"
for k in "${kernels[@]}"; do row+=" \`$(sed -n "s/^MATRIX $k package //p" "$dir/$k.txt")\` |"; done
echo "$row"
row="| time in the VM |"
for k in "${kernels[@]}"; do row+=" $(sed -n "s/^MATRIX $k done \([^ ]*\).*/\1/p" "$dir/$k.txt") |"; done
echo "$row"
echo

# Features x kernels, as hostprof probe found them.
echo "What \`hostprof probe\` found:"
echo
echo "${header/| check |/| feature |}"
echo "$rule"
features=$(for k in "${kernels[@]}"; do sed -n "s/^MATRIX $k feature \([^ ]*\) .*/\1/p" "$dir/$k.txt"; done |
  awk '!seen[$0]++')
for f in $features; do
  row="| $f |"
  for k in "${kernels[@]}"; do
    row+=" $(field "$k" feature "$f" | cut -d' ' -f1) |"
  done
  echo "$row"
done
echo

# Per kernel: what is missing, and what was chosen instead.
echo "What each kernel lacks, and the fallback taken:"
echo
for k in "${kernels[@]}"; do
  echo "- **$k** (\`$(field "$k" boot PASS | cut -d, -f1)\`):"
  missing=0
  while read -r name detail; do
    echo "  - no \`$name\`: $detail"
    missing=1
  done < <(sed -n "s/^MATRIX $k feature \([^ ]*\) no \(.*\)/\1 \2/p" "$dir/$k.txt")
  [[ $missing -eq 1 ]] || echo "  - nothing hostprof probes for is missing"
  while read -r hook mode reason; do
    echo "  - \`$hook\`: $mode, $reason"
  done < <(sed -n "s/^MATRIX $k plan //p" "$dir/$k.txt" |
    grep -E 'not used|hash map|unavailable|fallback' || true)
  caps=$(field "$k" run PASS | sed -n 's/.*capabilities kept: //p')
  [[ -z $caps ]] || echo "  - capabilities kept after attaching: $caps"
done
