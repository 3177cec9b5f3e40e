#!/usr/bin/env bash
# The closed feedback loop on the synthetic platform, with the real binaries:
#   simulated history -> pipeline (v1) -> coupond with the embedded collector -> a stored
#   campaign with exploration -> decisions whose outcomes are drawn from the TRUE model ->
#   export (decision log + logs appended) -> ope on the log -> pipeline again (v2) -> the
#   server hot-loads v2.
# usage: closed_loop_test.sh COUPOND COUPONCTL
set -euo pipefail
coupond=$1
couponctl=$2
work=$(mktemp -d)
pid=""
cleanup() {
  if [[ -n "${pid}" ]]; then kill -9 "${pid}" 2>/dev/null || true; fi
  rm -rf "${work}"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [[ -f "${work}/coupond.log" ]] && tail -20 "${work}/coupond.log"; exit 1; }
# wait_for SECONDS WHAT COMMAND...: runs COMMAND every 0.1 s until it succeeds; fails the test,
# naming WHAT, when it has not within SECONDS (a deadline, not a number of tries).
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$(( $(date +%s) + seconds ))
  until "$@"; do
    (( $(date +%s) < deadline )) || fail "timed out after ${seconds} s waiting for ${what}"
    sleep 0.1
  done
}

"${couponctl}" simulate --out "${work}/logs" --num_users 300 --num_coupons 40 --dimension 4 \
  --days 12 --coupons_per_day 8 --seed 5 > /dev/null
"${couponctl}" pipeline --logs "${work}/logs" --store "${work}/store" --report "${work}/r1.md" \
  --seed 1 --threads 2 > "${work}/p1.txt" 2> /dev/null || fail "first pipeline"
grep -q "published version 1" "${work}/p1.txt" || fail "version 1 not published"

"${coupond}" --store "${work}/store" --collector_db "${work}/collector" --listen 127.0.0.1:0 \
  --port_file "${work}/port" --poll_interval 200ms --shutdown_grace 2s --log_level warn \
  > "${work}/coupond.log" 2>&1 &
pid=$!
wait_for 60 "coupond to write its port file" test -s "${work}/port"
server="127.0.0.1:$(cat "${work}/port")"
"${couponctl}" health --server "${server}" --wait 60s > /dev/null || fail "not serving"

coupons=$(seq -f '{"coupon_id": "c%05g"}' 1 10 | paste -sd, -)
cat > "${work}/campaign.json" <<JSON
{"campaign": {"campaign_id": "loop", "budget": 50, "coupons": [${coupons}],
              "exploration": "epsilon_greedy:0.3"},
 "all_users": {}}
JSON
"${couponctl}" assign --server "${server}" --campaign "${work}/campaign.json" \
  --out "${work}/assignment.csv" --publish_to "${work}/store" > /dev/null || fail "assign"
campaign_loaded() { "${couponctl}" campaigns --server "${server}" | grep -q loop; }
wait_for 60 "the server to load the stored campaign 'loop'" campaign_loaded
"${couponctl}" simulate-traffic --server "${server}" --campaign_id loop \
  --truth "${work}/logs/truth" --traffic 400 --seed 9 > "${work}/traffic.txt" || fail "traffic"
decisions_stored() { "${couponctl}" collector-stats --server "${server}" | grep -qE "^decisions +400$"; }
wait_for 60 "the collector to store 400 decisions" decisions_stored
"${couponctl}" collector-stats --server "${server}" | grep -qE "^outcomes +400$" || fail "outcomes not all stored"

"${couponctl}" export --collector_db "${work}/collector" --decisions_out "${work}/decisions.csv" \
  --logs_out "${work}/logs" --append --days_from $(( $(date +%s) - 12 * 86400 )) \
  > "${work}/export.txt" || fail "export"
grep -q "exported 400 decisions (400 with an outcome)" "${work}/export.txt" || fail "export count: $(cat "${work}/export.txt")"
[[ $(wc -l < "${work}/decisions.csv") -eq 401 ]] || fail "decision log rows"
"${couponctl}" ope --decisions "${work}/decisions.csv" --policy greedy > "${work}/ope.txt" || fail "ope"
grep -q "doubly robust" "${work}/ope.txt" || fail "ope output"

"${couponctl}" pipeline --logs "${work}/logs" --store "${work}/store" --report "${work}/r2.md" \
  --seed 2 --threads 2 > "${work}/p2.txt" 2> /dev/null || fail "second pipeline"
grep -q "published version 2" "${work}/p2.txt" || fail "version 2 not published"
serving_version_2() { "${couponctl}" model-info --server "${server}" | grep -qE "version +2"; }
wait_for 60 "the server to load model version 2" serving_version_2
kill -TERM "${pid}"
wait "${pid}" || fail "coupond did not exit cleanly"
pid=""
echo "closed loop: 400 decisions -> 400 outcomes -> export -> retrain -> version 2 served"
