#!/usr/bin/env bash
# The load test of issue 7 in one command: builds coupond and load_bench (Release, in
# build/release; configured with the `release` preset when absent), then runs load_bench
# against a coupond it starts on a free port, with the Tianchi O2O request stream:
#   1. Score with top_k = 0 (all 1,000 candidates returned): no-op floor, Score closed loop,
#      open loop at half that rate, the no-op at that rate, Score open loop during reloads;
#   2. the same with top_k = 10 (1,000 candidates scored, the best 10 returned);
# each followed by the h2load cross-check when h2load (nghttp2-client) is on PATH.
# About 3.5-4 minutes. Skips (exit 0) when ../shared/data/tianchi_o2o_requests is absent.
#
# usage: bench/load_test.sh [load_bench flags...]   (passed to both runs, e.g. --reps=5)
#   LOAD_TOP_K="0 10"  which top_k values to run (default both)
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/release
if [[ ! -f "${build}/build.ninja" && ! -f "${build}/Makefile" ]]; then
  cmake --preset release
fi
cmake --build "${build}" --target coupond load_bench -j 2

data="${COUPOND_SHARED_DATA:-../shared/data}/tianchi_o2o_requests/ccf_offline_stage1_test_revised.csv"
if [[ ! -f "${data}" ]]; then
  echo "SKIP: the Tianchi O2O request stream is absent (${data}); set COUPOND_SHARED_DATA."
  exit 0
fi
h2load_flag=--h2load=false
if command -v h2load >/dev/null 2>&1; then h2load_flag=--h2load=true; fi

echo "=== $(date -u +%FT%TZ) $(uname -n): $(nproc) CPUs; uptime:$(uptime | sed 's/.*up/ up/')"
status=0
for k in ${LOAD_TOP_K:-0 10}; do
  echo
  echo "=== load_bench --top_k=${k}"
  "${build}/bench/load_bench" --data="${data}" --coupond="${build}/server/coupond" \
    --top_k="${k}" "${h2load_flag}" "$@" || status=$?
done
echo
echo "=== done; uptime:$(uptime | sed 's/.*up/ up/')"
exit "${status}"
