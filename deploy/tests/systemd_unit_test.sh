#!/usr/bin/env bash
# deploy/systemd/hostprof.service: `systemd-analyze verify` finds nothing to say about it
# (it exits 0 on unknown keys and bad values, so any output is a failure), its offline
# security exposure stays low, and its capability set is the one docs/deployment.md lists.
#   systemd_unit_test.sh SOURCE_DIR HOSTPROF_BINARY
set -euo pipefail
src=$1
bin=$2
unit="$src/deploy/systemd/hostprof.service"
if ! command -v systemd-analyze >/dev/null; then
  if [[ -n "${CI:-}" ]]; then echo "FAIL: systemd-analyze missing (package systemd)" >&2; exit 1; fi
  echo "SKIP: systemd-analyze missing (install the systemd package)"; exit 0
fi
fail=0
err() { echo "FAIL: $*" >&2; fail=1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# verify checks that ExecStart's binary exists: point it at the one just built.
sed "s|/usr/local/bin/hostprof|$bin|g" "$unit" >"$tmp/hostprof.service"
out=$(cd "$tmp" && systemd-analyze verify "$tmp/hostprof.service" 2>&1) || err "systemd-analyze verify failed"
[[ -z "$out" ]] || err "systemd-analyze verify: $out"

# Overall exposure (0 safest .. 10 unsafe); BPF agents cannot reach the bottom, but
# dropping a hardening option should show.
sec=$(systemd-analyze security --offline=true "$tmp/hostprof.service" 2>&1 || true)
score=$(sed -n 's/.*Overall exposure level for hostprof.service: \([0-9.]*\).*/\1/p' <<<"$sec")
if [[ -z "$score" ]]; then
  err "no exposure score from systemd-analyze security: $sec"
elif awk -v s="$score" 'BEGIN { exit !(s > 4.5) }'; then
  err "exposure $score > 4.5: a hardening option was lost"
fi

# Capabilities: bounding and ambient sets equal the documented list.
doc=$(awk '/^## Capabilities/ {on=1; next} /^## / {on=0} on' "$src/docs/deployment.md" |
      sed -n 's/^| `\(CAP_\)\{0,1\}\([A-Z_]*\)` |.*/CAP_\2/p' | sort | tr '\n' ' ')
[[ -n "$doc" ]] || err "no capability table under '## Capabilities' in docs/deployment.md"
for key in CapabilityBoundingSet AmbientCapabilities; do
  got=$(sed -n "s/^$key=//p" "$unit" | tr ' ' '\n' | sed '/^$/d' | sort | tr '\n' ' ')
  [[ "$got" == "$doc" ]] || err "$key is '$got', docs/deployment.md lists '$doc'"
done
for opt in ProtectSystem=strict ProtectHome= PrivateTmp=yes NoNewPrivileges=yes MemoryMax=; do
  grep -q "^$opt" "$unit" || err "missing $opt"
done

[[ $fail -eq 0 ]] && echo "systemd_unit_test: ok (exposure $score)"
exit $fail
