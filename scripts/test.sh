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
run_preset() {
  local preset=$1
  echo "=== ${preset}: configure, build, test ($(date -u +%T)) ==="
  cmake --preset "${preset}" >/dev/null
  cmake --build --preset "${preset}" -j "${jobs}"
  echo "=== ${preset}: tests ($(date -u +%T)) ==="
  ctest --preset "${preset}" -j "${test_jobs}"
  # CTest runs one process per test suite and reports a suite skipped only when all of its
  # tests skipped; so every skipped test is named here (the reasons are in the log).
  local log="build/${preset/ci-release/release}/Testing/Temporary/LastTest.log"
  local skipped
  skipped=$(grep -E '^\[  SKIPPED \] [^ ]+\.[^ ]+' "${log}" | sed -E 's/^\[  SKIPPED \] //; s/ \([0-9]+ ms\)$//' | sort -u || true)
  if [[ -n "${skipped}" ]]; then
    echo "${preset}: $(wc -l <<<"${skipped}") tests skipped (reasons in ${log}):"
    sed 's/^/  /' <<<"${skipped}"
  fi
}

run_preset ci-release
if [[ "${1:-}" != "--release-only" ]]; then
  # halt_on_error: the first report fails the test; detect_leaks: LeakSanitizer is on.
  export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  run_preset asan
  unset ASAN_OPTIONS UBSAN_OPTIONS  # fuzz.sh sets its own
  echo "=== fuzz ($(date -u +%T)) ==="
  scripts/fuzz.sh "${COUPOND_FUZZ_SECONDS:-20}"
fi
echo "=== all tests passed ($(date -u +%T)) ==="
