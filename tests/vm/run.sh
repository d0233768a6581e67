#!/usr/bin/env bash
# The kernel matrix: boots Debian's own kernel packages under qemu (TCG, no KVM needed)
# with a busybox initramfs holding the built hostprof, and runs tests/vm/init.sh's checks
# inside each. One line per kernel and check, from the VM's serial console:
#   MATRIX <kernel> <check> PASS|FAIL <detail>
# Exit status 0 only when every check of every kernel passed. See tests/vm/README.md.
#
#   tests/vm/run.sh [--kernels "5.10 6.1 6.12"] [--build DIR] [--timeout SECONDS] [--docs]
#                   [--debug-script FILE]
#
# --docs rewrites the measured section of docs/kernel-support.md from this run;
# --debug-script runs FILE (sourced by the VM's init, as root) instead of the checks.
# Environment: HOSTPROF_VM_CACHE (kernels, apt state; default ~/.cache/hostprof-vm),
# HOSTPROF_VM_KERNELS, HOSTPROF_VM_MIRROR (default http://deb.debian.org).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build
KERNELS=${HOSTPROF_VM_KERNELS:-"5.10 6.1 6.12"}
TIMEOUT=300
DOCS=0
DEBUG_SCRIPT=""
CACHE=${HOSTPROF_VM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/hostprof-vm}
MIRROR=${HOSTPROF_VM_MIRROR:-http://deb.debian.org}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

while [[ $# -gt 0 ]]; do
  case "$1" in
    --kernels) KERNELS=$2; shift 2 ;;
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --docs) DOCS=1; shift ;;
    --debug-script) DEBUG_SCRIPT=$(realpath "$2"); shift 2 ;;
    *) sed -n '2,15p' "$0" >&2; exit 2 ;;
  esac
done

log() { echo "vm: $*" >&2; }
die() { echo "vm: $*" >&2; exit 1; }

for tool in qemu-system-x86_64 busybox apt-get dpkg-deb strings xz timeout; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh --test)"
done
[[ -x $BUILD/hostprof ]] || die "$BUILD/hostprof not built"
for p in cpu_ratio offcpu_sleep unwind_target; do
  [[ -x $BUILD/tests/$p ]] || die "$BUILD/tests/$p not built"
done
mkdir -p "$CACHE/kernels"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hostprof-vm.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# --- kernels: Debian packages through a private apt configuration ----------------------
# Which suite and meta package give each kernel series. The meta package names the
# current ABI (linux-image-6.1.0-NN-cloud-amd64); its -unsigned twin is the same kernel
# with its modules, without the Secure Boot signature.
kernel_source() {
  case "$1" in
    5.10) echo "bullseye linux-image-cloud-amd64" ;;
    6.1) echo "bookworm linux-image-cloud-amd64" ;;
    6.12) echo "bookworm linux-image-6.12-cloud-amd64" ;;
    *) die "unknown kernel series $1 (known: 5.10 6.1 6.12)" ;;
  esac
}

# apt-get/apt-cache options that read and write only $CACHE/apt-SUITE: the system's
# sources, lists and package cache are never touched.
apt_opts() {
  local d=$CACHE/apt-$1
  echo "-o Dir::Etc::sourcelist=$d/sources.list -o Dir::Etc::sourceparts=- \
-o Dir::State::Lists=$d/lists -o Dir::Cache=$d/cache \
-o APT::Sandbox::User=root -o Acquire::Languages=none -qq"
}

apt_update() { # SUITE: refresh the private lists when older than 12 hours
  local suite=$1 d=$CACHE/apt-$1
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
  case "$suite" in
    bullseye) # main only: the security pool is not served to these machines
      echo "deb [signed-by=$KEYRING] $MIRROR/debian bullseye main" >"$d/sources.list" ;;
    bookworm)
      printf '%s\n' "deb [signed-by=$KEYRING] $MIRROR/debian bookworm main" \
        "deb [signed-by=$KEYRING] $MIRROR/debian bookworm-updates main" \
        "deb [signed-by=$KEYRING] $MIRROR/debian-security bookworm-security main" \
        >"$d/sources.list" ;;
  esac
  if [[ -z $(find "$d/lists" -maxdepth 1 -name '*Packages*' -mmin -720 2>/dev/null) ]]; then
    # shellcheck disable=SC2046
    apt-get $(apt_opts "$suite") update >&2 || return 1
  fi
}

# Resolves, downloads and unpacks one series into $CACHE/kernels/PKG/ (vmlinuz, config,
# modules.cpio); prints that directory. Offline, falls back to the last one fetched.
fetch_kernel() {
  local series=$1 suite meta img pkg kdir tmp
  read -r suite meta <<<"$(kernel_source "$series")"
  local last=$CACHE/kernels/$series.last
  # shellcheck disable=SC2046
  if apt_update "$suite" &&
    img=$(apt-cache $(apt_opts "$suite") depends "$meta" |
      awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }') && [[ -n $img ]]; then
    pkg=$img-unsigned
    apt-cache $(apt_opts "$suite") show "$pkg" >/dev/null 2>&1 || pkg=$img
  elif [[ -s $last ]]; then
    pkg=$(cat "$last")
    log "$series: apt unavailable, using the cached $pkg"
  else
    die "$series: cannot resolve $meta from $suite"
  fi
  kdir=$CACHE/kernels/$pkg
  if [[ ! -s $kdir/modules.cpio ]]; then
    log "$series: fetching $pkg"
    tmp=$(mktemp -d "$WORK/deb.XXXXXX")
    # shellcheck disable=SC2046
    (cd "$tmp" && apt-get $(apt_opts "$suite") download "$pkg" >&2) || die "$series: download of $pkg failed"
    dpkg-deb -x "$tmp"/*.deb "$tmp/x"
    rm -rf "$kdir.new"
    mkdir -p "$kdir.new/initrd/modules"
    cp "$tmp"/x/boot/vmlinuz-* "$kdir.new/vmlinuz"
    cp "$tmp"/x/boot/config-* "$kdir.new/config"
    extract_modules "$tmp"/x/lib/modules/* "$kdir.new/config" "$kdir.new/initrd/modules"
    (cd "$kdir.new/initrd" && find . | busybox cpio -o -H newc 2>/dev/null) >"$kdir.new/modules.cpio"
    rm -rf "$kdir" "$tmp"
    mv "$kdir.new" "$kdir"
  fi
  echo "$pkg" >"$last"
  echo "$kdir"
}

# The modules the VM needs (the virtio disk), with what they depend on, decompressed, and
# `order` listing them dependencies first. Built-in ones (=y in the config) are skipped.
extract_modules() { # MODDIR CONFIG OUT
  local moddir=$1 config=$2 out=$3
  declare -A seen=()
  add() {
    local name=$1 file dep
    [[ -n ${seen[$name]:-} ]] && return
    seen[$name]=1
    file=$(find "$moddir/kernel" -name "$name.ko" -o -name "$name.ko.xz" -o -name "$name.ko.zst" | head -1)
    if [[ -z $file ]]; then
      grep -qi "^CONFIG_${name}=y" "$config" || die "module $name: neither in $moddir nor built in"
      return
    fi
    case "$file" in
      *.xz) xz -dc "$file" >"$out/$name.ko" ;;
      *.zst) zstd -qdc "$file" >"$out/$name.ko" ;;
      *) cp "$file" "$out/$name.ko" ;;
    esac
    for dep in $(strings -a "$out/$name.ko" | sed -n 's/^depends=//p' | head -1 | tr ',' ' '); do
      add "${dep//-/_}"
    done
    echo "$name" >>"$out/order"
  }
  : >"$out/order"
  add virtio_pci
  add virtio_blk
}

# --- the initramfs common to every kernel ---------------------------------------------
build_initramfs() { # OUT.cpio
  local root=$WORK/root f lib
  mkdir -p "$root"/{bin,usr/bin,testprogs,etc,proc,sys,dev,tmp,modules}
  cp "$(command -v busybox)" "$root/bin/busybox"
  ldd "$root/bin/busybox" >/dev/null 2>&1 && die "busybox is dynamically linked: install busybox-static"
  cp "$ROOT/tests/vm/init.sh" "$root/init"
  chmod 755 "$root/init"
  if [[ -n $DEBUG_SCRIPT ]]; then
    cp "$DEBUG_SCRIPT" "$root/debug.sh"
    chmod 755 "$root/debug.sh"
  fi
  strip --strip-debug -o "$root/usr/bin/hostprof" "$BUILD/hostprof"
  cp "$(command -v jq)" "$root/usr/bin/jq"
  cp "$BUILD/tests/cpu_ratio" "$BUILD/tests/offcpu_sleep" "$BUILD/tests/unwind_target" "$root/testprogs/"
  # Debian's python3 for the Python-frames check, with what `python3 -S` reads from disk
  # (the rest of its start-up modules are frozen into the binary) and its prefix landmark.
  cp "$(readlink -f /usr/bin/python3)" "$root/usr/bin/python3"
  mkdir -p "$root/usr/lib/python3.11/encodings"
  cp /usr/lib/python3.11/os.py "$root/usr/lib/python3.11/"
  cp /usr/lib/python3.11/encodings/{__init__,aliases,utf_8}.py "$root/usr/lib/python3.11/encodings/"
  for f in "$root/usr/bin/hostprof" "$root/usr/bin/jq" "$root/usr/bin/python3" "$root"/testprogs/*; do
    for lib in $(ldd "$f" | grep -o '/[^ ]*'); do
      [[ -e $root$lib ]] || cp -L --parents "$lib" "$root/"
    done
  done
  echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  (cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null) >"$1"
}

# --- one boot ---------------------------------------------------------------------------
boot() { # SERIES KDIR LOG
  local series=$1 kdir=$2 out=$3 expect=()
  # What the kernel's config says the probe must find.
  grep -q '^CONFIG_KPROBES=y' "$kdir/config" && expect+=(kprobe)
  grep -q '^CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS=y' "$kdir/config" && expect+=(fentry)
  cat "$WORK/common.cpio" "$kdir/modules.cpio" >"$WORK/initrd-$series.cpio"
  rm -f "$WORK/disk-$series.img"
  truncate -s 64M "$WORK/disk-$series.img"
  local IFS=,
  # thread=single: one host thread runs both vCPUs. With a thread per vCPU, 6.12 hit an
  # int3 oops in __schedule several times (a CPU running stale code after a tracepoint's
  # static key was patched: cross-modifying code under multi-threaded TCG); ~1.4x slower.
  timeout -k 10 "$TIMEOUT" qemu-system-x86_64 -accel tcg,thread=single -cpu max -smp 2 -m 1G \
    -display none -monitor none -serial stdio -no-reboot -nic none \
    -kernel "$kdir/vmlinuz" -initrd "$WORK/initrd-$series.cpio" \
    -drive "file=$WORK/disk-$series.img,format=raw,if=virtio" \
    -append "console=ttyS0 panic=-1 oops=panic loglevel=4 matrix.kernel=$series matrix.expect=${expect[*]}" \
    </dev/null >"$out" 2>&1 || true
  rm -f "$WORK/initrd-$series.cpio" "$WORK/disk-$series.img"
}

RESULTS=$CACHE/results
mkdir -p "$RESULTS"
declare -A KDIR=()
for k in $KERNELS; do KDIR[$k]=$(fetch_kernel "$k"); done
build_initramfs "$WORK/common.cpio"
log "initramfs $(($(stat -c %s "$WORK/common.cpio") / 1048576)) MiB; booting: $KERNELS"

start=$SECONDS
failed=0
for k in $KERNELS; do
  t0=$SECONDS
  boot "$k" "${KDIR[$k]}" "$RESULTS/$k.log"
  # A kernel that died before init printed anything (seen once: a 6.12 panic in
  # sched_clock_cpu at 2 s under TCG, before any of ours ran), or that crashed mid-run
  # (seen once: an int3 oops in __schedule while a tracepoint's static key was being
  # patched, 6.12 under TCG's cross-modifying code), is booted once more; a failure of
  # ours, or a crash we cause, repeats and still fails.
  if ! tr -d '\r' <"$RESULTS/$k.log" | grep -aq '^MATRIX ' ||
    { ! tr -d '\r' <"$RESULTS/$k.log" | grep -aq "^MATRIX $k done " &&
      tr -d '\r' <"$RESULTS/$k.log" | grep -aqE 'Kernel panic|Oops:'; }; then
    log "$k: the kernel stopped before init finished; booting once more ($(tr -d '\r' <"$RESULTS/$k.log" | grep -a -m1 -E 'panic|BUG|Oops' || echo 'no panic line'); the last check reported: $(tr -d '\r' <"$RESULTS/$k.log" | grep -a '^MATRIX .* \(PASS\|FAIL\) ' | tail -1 | cut -d' ' -f3))"
    cp "$RESULTS/$k.log" "$RESULTS/$k.first.log"
    boot "$k" "${KDIR[$k]}" "$RESULTS/$k.log"
  fi
  tr -d '\r' <"$RESULTS/$k.log" | grep -a '^MATRIX ' >"$RESULTS/$k.txt" || true
  echo "MATRIX $k package $(basename "${KDIR[$k]}")" >>"$RESULTS/$k.txt"
  grep -E "^MATRIX $k [^ ]+ (PASS|FAIL) " "$RESULTS/$k.txt" || true
  if ! grep -q "^MATRIX $k done " "$RESULTS/$k.txt"; then
    echo "MATRIX $k boot FAIL no result after $((SECONDS - t0)) s (timeout $TIMEOUT s); console tail:"
    tr -d '\r' <"$RESULTS/$k.log" | tail -n 25 | sed 's/^/    /'
    failed=$((failed + 1))
  elif grep -q "^MATRIX $k [^ ]* FAIL " "$RESULTS/$k.txt"; then
    failed=$((failed + 1))
  fi
  log "$k: $((SECONDS - t0)) s"
done
log "matrix: $(wc -w <<<"$KERNELS") kernels in $((SECONDS - start)) s, $failed failed (logs: $RESULTS)"

if [[ $DOCS -eq 1 ]]; then
  "$ROOT/tests/vm/docs.sh" "$RESULTS" $KERNELS >"$WORK/section.md"
  awk -v f="$WORK/section.md" '
    /<!-- matrix:begin -->/ { print; while ((getline l < f) > 0) print l; skip = 1; next }
    /<!-- matrix:end -->/ { skip = 0 }
    !skip' "$ROOT/docs/kernel-support.md" >"$WORK/ks.md"
  cp "$WORK/ks.md" "$ROOT/docs/kernel-support.md"
  log "docs/kernel-support.md: matrix section rewritten"
fi
[[ $failed -eq 0 ]]
