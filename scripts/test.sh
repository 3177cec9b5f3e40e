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
  echo "=== $1: configure, build ($(date -u +%T)) ==="
  cmake --preset "$1" >/dev/null
  cmake --build --preset "$1" -j "${jobs}"
}
test_preset() {
  echo "=== $1: tests ($(date -u +%T)) ==="
  ctest --preset "$1" -j "${test_jobs}"
}

build_preset ci-release
if [[ "${1:-}" == "--release-only" ]]; then
  test_preset ci-release
else
  # The Release tests leave about an eighth of the CPU idle (tests waiting on the servers
  # they start). The sanitizer tree is compiled meanwhile at idle priority (SCHED_IDLE: it
  # runs only on a core no test wants, so the tests' timing is as without it), and the
  # compile picks up at full speed once they end. Its output is shown after the tests.
  asan_log=$(mktemp)
  echo "=== asan: configure, build at idle priority during the Release tests ($(date -u +%T)) ==="
  cmake --preset asan >/dev/null
  # setsid: the build (cmake, ninja, the compilers) is one process group, stopped whole if
  # the Release tests fail.
  chrt --idle 0 setsid cmake --build --preset asan -j "${jobs}" >"${asan_log}" 2>&1 &
  asan_build=$!
  trap 'kill -- "-${asan_build}" 2>/dev/null || true; rm -f "${asan_log}"' EXIT
  test_preset ci-release
  echo "=== asan: the rest of the build ($(date -u +%T)) ==="
  asan_status=0
  wait "${asan_build}" || asan_status=$?
  cat "${asan_log}"
  [[ ${asan_status} -eq 0 ]] || { echo "asan build failed (${asan_status})" >&2; exit 1; }
  # halt_on_error: the first report fails the test; detect_leaks: LeakSanitizer is on.
  export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  test_preset asan
  unset ASAN_OPTIONS UBSAN_OPTIONS  # fuzz.sh sets its own
  echo "=== fuzz ($(date -u +%T)) ==="
  scripts/fuzz.sh "${COUPOND_FUZZ_SECONDS:-20}"
fi
echo "=== all tests passed ($(date -u +%T)) ==="
