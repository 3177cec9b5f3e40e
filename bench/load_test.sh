#!/usr/bin/env bash
# The load test of issue 7 in one command: builds coupond and load_bench (Release, in
# build/release; configured with the `release` preset when absent), then runs load_bench
# against a coupond it starts on a free port, with the Tianchi O2O request stream. Each run:
# no-op floor, Score closed loop, open loop at half that rate, the no-op at that rate, Score
# open loop during reloads; then the h2load cross-check when h2load (nghttp2-client) is on
# PATH. The runs (LOAD_RUNS, each SOURCE:TOP_K):
#   campaign:10  1,000 candidates named by a stored campaign (ScoreRequest.campaign_id), the
#                best 10 returned: the issue's benchmark as a storefront would call it;
#   campaign:0   the same, all 1,000 scores returned (a 26 KB response);
#   list:10      the same 1,000 candidates listed id by id in every request, for comparison.
# Each run also has the `noop_half` phase: the no-op at half of its own maximum rate, i.e.
# the p99 target applied to the cheapest RPC (what the machine allows at all).
# On a machine with 2+ CPUs the server is pinned to the last CPU and this load generator
# (with the reload publisher) to the others, so the two do not take each other's cores: the
# closest this machine gets to "the clients run elsewhere" (LOAD_PIN=0: no pinning).
# About 6-7 minutes. Skips (exit 0) when ../shared/data/tianchi_o2o_requests is absent.
#
# usage: bench/load_test.sh [load_bench flags...]   (passed to every run, e.g. --reps=5)
#   LOAD_RUNS="campaign:10 list:10"  which runs (default: campaign:10 campaign:0 list:10)
#   LOAD_PIN=0                       share all CPUs between server and load generator
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

pin_flags=()
cpus=$(nproc)
if [[ "${LOAD_PIN:-1}" != 0 && "${cpus}" -ge 2 ]]; then
  pin_flags=(--server_cpus="$((cpus - 1))" --client_cpus="$(seq -s, 0 $((cpus - 2)))")
fi
echo "=== $(date -u +%FT%TZ) $(uname -n): $(nproc) CPUs; uptime:$(uptime | sed 's/.*up/ up/')"
status=0
for run in ${LOAD_RUNS:-campaign:10 campaign:0 list:10}; do
  source_=${run%%:*}
  k=${run##*:}
  echo
  echo "=== load_bench --candidate_source=${source_} --top_k=${k}"
  "${build}/bench/load_bench" --data="${data}" --coupond="${build}/server/coupond" \
    --candidate_source="${source_}" --top_k="${k}" "${h2load_flag}" \
    --phases=noop,score,open,noop_open,noop_half,reload "${pin_flags[@]}" "$@" || status=$?
done
echo
echo "=== done; uptime:$(uptime | sed 's/.*up/ up/')"
exit "${status}"
