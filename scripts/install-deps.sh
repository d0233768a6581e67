#!/usr/bin/env bash
# Installs hostprof's dependencies from Debian 12 / Ubuntu packages (nothing else is
# downloaded). The README's quick start, CI and deploy/Dockerfile all use this script,
# so their package lists cannot drift apart.
#   scripts/install-deps.sh          build + run dependencies
#   scripts/install-deps.sh --test   also the tests' real peers (prometheus, go, perf, ...)
set -euo pipefail

BUILD_PKGS=(
  clang llvm bpftool libbpf-dev libelf-dev libdw-dev libdebuginfod-dev zlib1g-dev
  libprotobuf-dev protobuf-compiler prometheus-cpp-dev libcivetweb-dev libssl-dev
  libcrypt-dev libcli11-dev libyaml-cpp-dev libspdlog-dev nlohmann-json3-dev
  cmake make g++ pkg-config
)
TEST_PKGS=(
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  binutils elfutils iproute2 nftables curl openssl
  prometheus golang-go linux-perf bpftrace libbpf-tools fio stress-ng
  chromium python3-prometheus-client
)

pkgs=("${BUILD_PKGS[@]}")
if [[ "${1:-}" == "--test" ]]; then
  pkgs+=("${TEST_PKGS[@]}")
elif [[ "${1:-}" == "--list" ]]; then
  printf '%s\n' "${BUILD_PKGS[@]}"
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
