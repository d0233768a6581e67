#!/usr/bin/env bash
# deploy/Dockerfile cannot drift from scripts/install-deps.sh, and its runtime stage has
# every shared library the built binary links.
#   dockerfile_test.sh SOURCE_DIR HOSTPROF_BINARY
set -euo pipefail
src=$1
bin=$2
df="$src/deploy/Dockerfile"
fail=0
err() { echo "FAIL: $*" >&2; fail=1; }

# Stages: the build stage (first FROM) and the runtime stage (last FROM), both Debian 12.
mapfile -t froms < <(grep -nE '^FROM ' "$df")
[[ ${#froms[@]} -ge 2 ]] || err "Dockerfile must be multi-stage (found ${#froms[@]} FROM)"
for f in "${froms[@]}"; do
  [[ "$f" =~ FROM\ debian:(12|bookworm) ]] || err "stage not on Debian 12: $f"
done
runtime_line=${froms[-1]%%:*}
build_part=$(sed -n "1,$((runtime_line - 1))p" "$df")
runtime_part=$(sed -n "${runtime_line},\$p" "$df")

# The build stage installs with the script (no --runtime), then compiles as non-root.
grep -qE 'install-deps\.sh[[:space:]]*(\\|&&|$)' <<<"$build_part" ||
  err "build stage does not run scripts/install-deps.sh"
grep -qE '^COPY .*scripts/install-deps\.sh' <<<"$build_part" ||
  err "build stage does not copy scripts/install-deps.sh"
user_line=$(grep -nE '^USER ' <<<"$build_part" | tail -1 | cut -d: -f1 || true)
cmake_line=$(grep -nE 'cmake --build' <<<"$build_part" | head -1 | cut -d: -f1 || true)
[[ -n "$cmake_line" ]] || err "build stage has no cmake --build"
if [[ -z "$user_line" ]]; then
  err "build stage never switches to a non-root USER"
else
  user=$(sed -n "${user_line}p" <<<"$build_part" | awk '{print $2}')
  [[ "$user" != root && "$user" != 0 && "$user" != 0:0 ]] || err "build runs as root ($user)"
  [[ -n "$cmake_line" && $user_line -lt $cmake_line ]] || err "USER comes after the compile"
fi
grep -q 'install-deps\.sh --runtime' <<<"$runtime_part" ||
  err "runtime stage does not run install-deps.sh --runtime"
# No package list of its own anywhere: apt-get install only inside the script.
if grep -qE 'apt-get +install|apt +install' "$df"; then
  err "Dockerfile installs packages itself; use scripts/install-deps.sh"
fi

# Every library the binary links belongs to a package of the runtime list.
mapfile -t runtime_pkgs < <("$src/scripts/install-deps.sh" --list-runtime)
[[ ${#runtime_pkgs[@]} -gt 0 ]] || err "install-deps.sh --list-runtime printed nothing"
ldd_out=$(ldd "$bin")
if grep -q 'not found' <<<"$ldd_out"; then err "unresolved libraries: $(grep 'not found' <<<"$ldd_out")"; fi
checked=0
while read -r lib; do
  [[ -n "$lib" ]] || continue
  owner=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true)
  pkg=${owner%%:*}
  if [[ -z "$pkg" ]]; then
    err "$lib belongs to no Debian package"
    continue
  fi
  found=0
  for p in "${runtime_pkgs[@]}"; do [[ "$p" == "$pkg" ]] && found=1; done
  [[ $found -eq 1 ]] || err "$lib comes from $pkg, which install-deps.sh --runtime does not install"
  checked=$((checked + 1))
done < <(awk '/=>/ {print $3} /^[[:space:]]*\/[^ ]+ \(/ {print $1}' <<<"$ldd_out")
[[ $checked -ge 5 ]] || err "only $checked libraries checked: is $bin dynamically linked?"

# Each runtime package is a real, installed package name (the binary runs here).
for p in "${runtime_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    err "runtime package $p is not installed here: misspelled or not needed?"
done

[[ $fail -eq 0 ]] && echo "dockerfile_test: ok ($checked libraries, ${#runtime_pkgs[@]} runtime packages)"
exit $fail
