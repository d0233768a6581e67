#!/usr/bin/env bash
# Alert rules: `promtool check rules` (syntax, PromQL, templates) and `promtool test rules`
# (deploy/prometheus/hostprof-rules.test.yaml: each alert fires on a synthetic series and
# stays quiet on a healthy one).
#   promtool_rules_test.sh check|test SOURCE_DIR
set -euo pipefail
mode=$1
dir="$2/deploy/prometheus"
if ! command -v promtool >/dev/null; then
  if [[ -n "${CI:-}" ]]; then echo "FAIL: promtool missing (Debian package prometheus)" >&2; exit 1; fi
  echo "SKIP: promtool missing (apt-get install prometheus)"; exit 0
fi
cd "$dir"
case "$mode" in
  check) promtool check rules hostprof-rules.yaml ;;
  test) promtool test rules hostprof-rules.test.yaml ;;
  *) echo "usage: $0 check|test SOURCE_DIR" >&2; exit 2 ;;
esac
