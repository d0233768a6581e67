#!/usr/bin/env bash
# The two quick-start commands (see README.md):
#   ./dev.sh run [hostprof run flags...]   install, build, and run the agent with defaults
#   ./dev.sh test                          install, build, and run every test suite
#                                          (the last: the kernel matrix, tests/vm/run.sh)
set -euo pipefail
cd "$(dirname "$0")"
JOBS=$(nproc)

build() { # build DIR [cmake args...]: warnings are errors here (HOSTPROF_WERROR)
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHOSTPROF_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS"
}

cmd=${1:-}
shift || true
case "$cmd" in
  run)
    scripts/install-deps.sh
    build build
    exec ./build/hostprof run "$@"
    ;;
  test)
    # Each step says when it starts (seconds since the start), so a slow CI run shows where
    # its time went.
    step() { echo "dev.sh test: [$SECONDS s] $*"; }
    step "install-deps"
    scripts/install-deps.sh --test
    if [[ $(id -u) -ne 0 ]]; then
      if [[ -n "${CI:-}" ]]; then
        echo "dev.sh test: CI must run as root so the BPF tests run" >&2
        exit 1
      fi
      echo "dev.sh test: WARNING: not root: the privileged BPF tests will be skipped" >&2
    fi
    # Formatting and the layer rule first: they take seconds (scripts/check-format.sh --fix
    # repairs the formatting; scripts/check-layers.sh says which include breaks which rule).
    step "check-format, check-layers"
    scripts/check-format.sh
    scripts/check-layers.sh
    step "build build/ (gcc, RelWithDebInfo, tests)"
    build build
    step "clang-tidy"
    # clang-tidy over the product's sources, with build/'s compile commands (~3 min).
    scripts/run-clang-tidy.sh build
    # A packager's build: plain CMake Release, the agent only, warnings not errors; and
    # the same with clang, warnings as errors (every compiler we name must build it).
    step "Release build (gcc)"
    cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DHOSTPROF_BUILD_TESTS=OFF >/dev/null
    cmake --build build-release -j "$JOBS" --target hostprof
    step "Release build (clang)"
    CC=clang CXX=clang++ cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=Release \
      -DHOSTPROF_BUILD_TESTS=OFF -DHOSTPROF_WERROR=ON >/dev/null
    cmake --build build-clang -j "$JOBS" --target hostprof
    # Unit, privileged (BPF) and end-to-end tests; the BPF ones run serially.
    step "ctest build/"
    ctest --test-dir build --output-on-failure -j "$JOBS" --timeout 600
    # The unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
    step "ASan+UBSan build and unit tests"
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHOSTPROF_SANITIZE=ON -DHOSTPROF_WERROR=ON >/dev/null
    cmake --build build-asan -j "$JOBS" --target unit_tests
    ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j "$JOBS" \
      -R '^unit\.' --timeout 600
    # A short libFuzzer run (clang) of every parser of untrusted bytes, seeded from tests/data.
    step "fuzz"
    tests/fuzz/run.sh 10
    # The kernel matrix: the build/ binary on Debian's 5.10, 6.1 and 6.12 kernels under
    # qemu (~5 min; tests/vm/README.md). HOSTPROF_SKIP_VM=1 skips it outside CI.
    if [[ -n "${HOSTPROF_SKIP_VM:-}" && -z "${CI:-}" ]]; then
      echo "dev.sh test: WARNING: HOSTPROF_SKIP_VM set: the kernel matrix is skipped" >&2
    else
      step "kernel matrix"
      tests/vm/run.sh --build build
    fi
    step "all tests passed"
    ;;
  *)
    echo "usage: ./dev.sh run [flags] | ./dev.sh test" >&2
    exit 2
    ;;
esac
