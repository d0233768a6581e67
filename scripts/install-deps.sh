#!/usr/bin/env bash
# Installs hostprof's dependencies from Debian 12 / Ubuntu packages (nothing else is
# downloaded). The README's quick start, CI and deploy/Dockerfile all use this script,
# so their package lists cannot drift apart.
#   scripts/install-deps.sh          build + run dependencies
#   scripts/install-deps.sh --test   also the tests' real peers (prometheus, go, perf, ...)
#   scripts/install-deps.sh --runtime  only the shared libraries the built binary needs
#                                    (deploy/Dockerfile's runtime stage)
#   scripts/install-deps.sh --list | --list-runtime   print a list, install nothing
set -euo pipefail

BUILD_PKGS=(
  clang llvm bpftool libbpf-dev libelf-dev libdw-dev libdebuginfod-dev zlib1g-dev liblzma-dev
  libiberty-dev libdeflate-dev libcurl4-openssl-dev
  libprotobuf-dev protobuf-compiler prometheus-cpp-dev libcivetweb-dev libssl-dev
  libcrypt-dev libcli11-dev libyaml-cpp-dev libspdlog-dev nlohmann-json3-dev
  cmake make g++ pkg-config
)
# What `ldd hostprof` resolves to, by package (deploy/tests/dockerfile_test.sh checks it).
RUNTIME_PKGS=(
  libc6 libstdc++6 libgcc-s1 libbpf1 libelf1 libdw1 libdebuginfod1 zlib1g libdeflate0 libprotobuf32
  libprometheus-cpp-core1.0 libcivetweb1 libcrypt1 libyaml-cpp0.7 libspdlog1.10 libfmt9
  liblzma5 libbz2-1.0
  # libcurl (Pyroscope push) and what it links
  libcurl4 libcurl3-gnutls libnghttp2-14 libidn2-0 librtmp1 libssh2-1 libpsl5 libssl3 libgssapi-krb5-2
  libldap-2.5-0 libzstd1 libbrotli1 libunistring2 libgnutls30 libhogweed6 libnettle8 libgmp10
  libkrb5-3 libk5crypto3 libcom-err2 libkrb5support0 libsasl2-2 libp11-kit0 libtasn1-6
  libkeyutils1 libffi8
)
TEST_PKGS=(
  libgtest-dev libgmock-dev googletest libbenchmark-dev libclang-rt-14-dev
  binutils elfutils debuginfod iproute2 nftables curl openssl
  prometheus golang-go linux-perf bpftrace libbpf-tools fio stress-ng jq
  chromium python3-prometheus-client systemd
  python3-dev # CPython headers: unwind_python_test checks its offsets table against them
  clang-format # scripts/check-format.sh (./dev.sh test)
  clang-tidy-15 # scripts/run-clang-tidy.sh (./dev.sh test; 16 crashes on our code)
  libc6-dbg # a compressed debug file of a real library (symbolizer line-table test)
  # tests/vm: Debian kernels booted under qemu (TCG) with a busybox initramfs
  qemu-system-x86 busybox-static xz-utils debian-archive-keyring
)

pkgs=("${BUILD_PKGS[@]}")
if [[ "${1:-}" == "--test" ]]; then
  pkgs+=("${TEST_PKGS[@]}")
elif [[ "${1:-}" == "--runtime" ]]; then
  pkgs=("${RUNTIME_PKGS[@]}")
elif [[ "${1:-}" == "--list" ]]; then
  printf '%s\n' "${BUILD_PKGS[@]}"
  exit 0
elif [[ "${1:-}" == "--list-runtime" ]]; then
  printf '%s\n' "${RUNTIME_PKGS[@]}"
  exit 0
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root (or install sudo)" >&2; exit 1; }
  SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
