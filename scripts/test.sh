#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (apt packages, idempotent), checks that every include
# keeps to the layers of docs/architecture.md (scripts/check-layering.py), builds coupond and
# runs every test twice: in the Release build (-O3, warnings as errors) and in a clang build
# under AddressSanitizer + UndefinedBehaviorSanitizer (preset asan); then runs the libFuzzer
# targets, built in that same tree, briefly (scripts/fuzz.sh, COUPOND_FUZZ_SECONDS per target, default 20). This is the
# README's test command and what CI runs.
#
# usage: scripts/test.sh [--release-only]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
if [[ "${1:-}" != "--release-only" ]]; then
  scripts/install-deps.sh --fuzz   # clang 14: the sanitizer build and the fuzz targets
fi

echo "=== layering: docs/architecture.md ($(date -u +%T)) ==="
python3 scripts/check-layering.py

jobs=$(nproc)
# One test more than there are cores: many tests spend part of their time waiting on a
# server they started, and the longest ones (tests/test_costs.cmake) start first.
test_jobs=$((jobs + 1))
build_preset() {
  local preset=$1
  cmake --preset "${preset}" >/dev/null
  cmake --build --preset "${preset}" -j "${jobs}"
}
test_preset() {
  echo "=== $1: tests ($(date -u +%T)) ==="
  ctest --preset "$1" -j "${test_jobs}"
}

sanitized=true
[[ "${1:-}" == "--release-only" ]] && sanitized=false
# The sanitizer tree builds in the background, at the lowest priority, while the Release tree
# builds and its tests run: it takes only the CPU they leave idle (link steps, a build's serial
# tail, tests waiting on servers they started), which took about a minute off the whole run on
# two cores. Its output goes to a log that is printed when it is done.
asan_pid=""
asan_log=build/asan-build.log
stop_background() { if [[ -n "${asan_pid}" ]]; then kill -- -"${asan_pid}" 2>/dev/null || true; fi; }
trap stop_background EXIT
if ${sanitized}; then
  mkdir -p build
  echo "=== asan: configure, build in the background, at nice 19 ($(date -u +%T)) ==="
  set -m  # its own process group, so that stop_background stops the compilers too
  nice -n 19 bash -c 'cmake --preset asan >/dev/null && cmake --build --preset asan -j "$1"' \
    _ "${jobs}" > "${asan_log}" 2>&1 &
  asan_pid=$!
  set +m
fi

echo "=== ci-release: configure, build ($(date -u +%T)) ==="
build_preset ci-release
test_preset ci-release
if ${sanitized}; then
  echo "=== asan: waiting for its build ($(date -u +%T)) ==="
  asan_rc=0
  wait "${asan_pid}" || asan_rc=$?
  asan_pid=""
  if [[ ${asan_rc} -ne 0 ]]; then
    cat "${asan_log}"
    echo "=== asan: build failed (exit ${asan_rc}) ==="
    exit "${asan_rc}"
  fi
  tail -n 3 "${asan_log}"
  # halt_on_error: the first report fails the test; detect_leaks: LeakSanitizer is on.
  export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  test_preset asan
  unset ASAN_OPTIONS UBSAN_OPTIONS  # fuzz.sh sets its own
  echo "=== fuzz ($(date -u +%T)) ==="
  scripts/fuzz.sh "${COUPOND_FUZZ_SECONDS:-20}"
fi
echo "=== all tests passed ($(date -u +%T)) ==="
