#!/usr/bin/env bash
# Checks (or with --fix, applies) clang-format over our C, C++ and BPF sources: the style
# of .clang-format (and bpf/.clang-format for the BPF programs). ./dev.sh test runs it.
# Not checked: tests/data/ (fixtures whose line numbers the tests expect) and generated
# files (bpf/vmlinux/).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "check-format: clang-format not found (scripts/install-deps.sh --test)" >&2; exit 1; }
mapfile -t files < <(find agent bench bpf common exporters kernel-compat symbolizer tests unwind \
  -path tests/data -prune -o -path bpf/vmlinux -prune -o \
  -type f \( -name '*.c' -o -name '*.h' -o -name '*.cpp' \) -print | sort)
if [[ ${1:-} == --fix ]]; then
  clang-format -i "${files[@]}"
  exit 0
fi
if ! clang-format --dry-run -Werror "${files[@]}" 2>/tmp/check-format.$$; then
  grep -E '^[^ ].*: error:' /tmp/check-format.$$ | cut -d: -f1 | sort -u | sed 's/^/  not formatted: /' >&2
  rm -f /tmp/check-format.$$
  echo "check-format: run scripts/check-format.sh --fix" >&2
  exit 1
fi
rm -f /tmp/check-format.$$
echo "check-format: ${#files[@]} files formatted"
