#!/usr/bin/env bash
# The end-to-end demo on a fresh Debian 12 machine, with no outside data: installs the
# apt packages (idempotent), builds coupond, generates a synthetic coupon platform,
# publishes it as a model version into a RocksDB store, starts the coupond server, queries
# it with couponctl, and stops it with SIGTERM.
#
# usage: scripts/demo.sh [WORK_DIR]     (default: ./demo-data, wiped first)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=${1:-"${root}/demo-data"}

scripts/install-deps.sh
echo "=== build (Release) ==="
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target coupond couponctl
bin="${root}/build/release"
couponctl="${bin}/cli/couponctl"
coupond="${bin}/server/coupond"

rm -rf "${work}"
mkdir -p "${work}"
now=$(date +%s)

echo
echo "=== 1. generate a synthetic platform (true preferences, seed 42) ==="
"${couponctl}" generate --out "${work}/factors" --num_users 20000 --num_coupons 300 \
  --dimension 32 --seed 42 --now "${now}"

echo
echo "=== 2. publish it as a model version (SstFileWriter + IngestExternalFile) ==="
"${couponctl}" publish --store "${work}/store" --factors "${work}/factors"
"${couponctl}" versions --store "${work}/store"

echo
echo "=== 3. start coupond on a free port ==="
"${coupond}" --store "${work}/store" --listen 127.0.0.1:0 --port_file "${work}/port" \
  --poll_interval 1s > "${work}/coupond.log" 2>&1 &
pid=$!
trap 'kill -9 ${pid} 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [[ -s "${work}/port" ]] && break; sleep 0.1; done
[[ -s "${work}/port" ]] || { echo "coupond did not start:"; cat "${work}/coupond.log"; exit 1; }
server="127.0.0.1:$(cat "${work}/port")"
echo "coupond pid ${pid} listening on ${server}"
"${couponctl}" health --server "${server}" --wait 30s

echo
echo "=== 4. query it ==="
echo "\$ couponctl model-info"
"${couponctl}" model-info --server "${server}"
echo
echo "\$ couponctl score --user u0000042 --top_k 5"
"${couponctl}" score --server "${server}" --user u0000042 --top_k 5
echo
echo "\$ couponctl score --user new-shopper --coupons c00001,c00002,c00003,no-such-coupon"
"${couponctl}" score --server "${server}" --user new-shopper \
  --coupons c00001,c00002,c00003,no-such-coupon
echo
echo "\$ couponctl score --user u0000042 --coupons c00001,c00001   (a bad request)"
if "${couponctl}" score --server "${server}" --user u0000042 --coupons c00001,c00001; then
  echo "expected INVALID_ARGUMENT"; exit 1
fi

echo
echo "=== 5. plan a budgeted campaign: 30 coupons, budget 5,000, every user ==="
coupons=$(seq -f '{"coupon_id": "c%05g"}' 1 30 | paste -sd, -)
cat > "${work}/campaign.json" <<JSON
{"campaign": {"campaign_id": "spring-sale", "budget": 5000,
              "coupons": [${coupons}]},
 "all_users": {}}
JSON
echo "\$ couponctl assign --server ... --campaign campaign.json --out assignment.csv --prices_out prices.json --publish_to store"
"${couponctl}" assign --server "${server}" --campaign "${work}/campaign.json" \
  --out "${work}/assignment.csv" --prices_out "${work}/prices.json" --publish_to "${work}/store"
echo
echo "The same campaign beside two naive policies, on the same (here: true) probabilities:"
"${couponctl}" assign --store "${work}/store" --campaign "${work}/campaign.json" \
  --out "${work}/assignment-inprocess.csv" --compare_baselines > "${work}/comparison.txt"
sed -n '1,5p' "${work}/comparison.txt"
echo
user=$(awk -F, 'NR > 1 && $3 > best { best = $3; user = $1 } END { print user }' "${work}/assignment.csv")
echo "\$ couponctl decide --user ${user} --campaign campaign.json --prices prices.json   (online, stateless)"
"${couponctl}" decide --server "${server}" --user "${user}" --campaign "${work}/campaign.json" \
  --prices "${work}/prices.json"
echo
echo "The campaign and its prices are stored beside the model; the server loads them on its next poll:"
for _ in $(seq 1 50); do
  "${couponctl}" campaigns --server "${server}" | grep -q spring-sale && break
  sleep 0.2
done
echo "\$ couponctl campaigns"
"${couponctl}" campaigns --server "${server}"
echo "\$ couponctl decide --user ${user} --campaign_id spring-sale"
"${couponctl}" decide --server "${server}" --user "${user}" --campaign_id spring-sale
echo "\$ couponctl score --user ${user} --campaign_id spring-sale --top_k 3   (the campaign's coupons, no id list)"
"${couponctl}" score --server "${server}" --user "${user}" --campaign_id spring-sale --top_k 3

echo
echo "=== 6. stop it (SIGTERM: graceful drain) ==="
kill -TERM "${pid}"
wait "${pid}"
trap - EXIT
echo "coupond exited with status 0; its log:"
cat "${work}/coupond.log"
echo
echo "=== 7. offline pipeline: simulated behaviour logs -> trained, evaluated, published model ==="
# Logs simulated from a synthetic platform's TRUE preferences (truth kept in logs/truth),
# with a few bad rows for the quarantine; then ingest, time split, hyperparameters chosen
# on the validation period, training, test metrics beside baselines and the truth, a
# report with plots, and a new version in a second store.
"${couponctl}" simulate --out "${work}/pipeline/logs" --num_users 2000 --num_coupons 100 \
  --dimension 4 --days 30 --coupons_per_day 16 --seed 7 --dirty_rows 6
"${couponctl}" pipeline --logs "${work}/pipeline/logs" --store "${work}/pipeline/store" \
  --quarantine "${work}/pipeline/quarantine.csv" --report "${work}/pipeline/report.md" \
  --seed 42 --threads 2 > "${work}/pipeline/pipeline.txt" 2> "${work}/pipeline/progress.log"
echo "trained model vs baselines vs the TRUE probabilities, same test examples:"
grep -E "^(chosen|fit period|validation period|test period|warning|model|coupon popularity|user propensity|logistic|feature logistic|LMF|truth|published)" \
  "${work}/pipeline/pipeline.txt"
"${couponctl}" versions --store "${work}/pipeline/store"
echo "report (inline SVG plots): ${work}/pipeline/report.md"

echo
echo "=== 8. the feedback loop: decide -> outcome -> export -> retrain -> publish ==="
# The trained model serves with the collector embedded (decision log + outcomes, RocksDB WAL).
"${coupond}" --store "${work}/pipeline/store" --collector_db "${work}/pipeline/collector" \
  --listen 127.0.0.1:0 --port_file "${work}/pipeline/port" --poll_interval 1s \
  > "${work}/pipeline/coupond.log" 2>&1 &
pid=$!
trap 'kill -9 ${pid} 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [[ -s "${work}/pipeline/port" ]] && break; sleep 0.1; done
server="127.0.0.1:$(cat "${work}/pipeline/port")"
"${couponctl}" health --server "${server}" --wait 30s
# A campaign with an experiment (10% control: no coupon) and softmax exploration in the
# model arm, so that every logged decision carries a usable propensity.
coupons=$(seq -f '{"coupon_id": "c%05g"}' 1 20 | paste -sd, -)
cat > "${work}/pipeline/loop-campaign.json" <<JSON
{"campaign": {"campaign_id": "loop", "budget": 300, "coupons": [${coupons}],
              "exploration": "softmax:0.02",
              "experiment": {"experiment_id": "loop-ab", "salt": "loop-2026",
                             "arms": [{"name": "control", "share": 0.1, "policy": "ARM_POLICY_CONTROL"},
                                      {"name": "model", "share": 0.9, "policy": "ARM_POLICY_MODEL"}]}},
 "all_users": {}}
JSON
"${couponctl}" assign --server "${server}" --campaign "${work}/pipeline/loop-campaign.json" \
  --out "${work}/pipeline/loop-assignment.csv" --publish_to "${work}/pipeline/store" | head -3
for _ in $(seq 1 50); do
  "${couponctl}" campaigns --server "${server}" | grep -q loop && break
  sleep 0.2
done
echo "\$ couponctl simulate-traffic --campaign_id loop --truth logs/truth --traffic 3000"
"${couponctl}" simulate-traffic --server "${server}" --campaign_id loop \
  --truth "${work}/pipeline/logs/truth" --traffic 3000 --seed 11
for _ in $(seq 1 100); do
  "${couponctl}" collector-stats --server "${server}" | grep -qE "^decisions +3000$" && break
  sleep 0.1
done
"${couponctl}" collector-stats --server "${server}"
echo "\$ couponctl export --collector_db collector --decisions_out decisions.csv --logs_out logs --append"
"${couponctl}" export --collector_db "${work}/pipeline/collector" \
  --decisions_out "${work}/pipeline/decisions.csv" --logs_out "${work}/pipeline/logs" --append \
  --days_from $(( $(date +%s) - 30 * 86400 ))
echo "\$ couponctl ab-report --input decisions.csv --arm_column arm --conversion_column redeemed --control control"
"${couponctl}" ab-report --input "${work}/pipeline/decisions.csv" --arm_column arm \
  --conversion_column redeemed --control control | sed -n '1,14p'
echo "\$ couponctl ope --decisions decisions.csv --arm model --policy greedy   (what greedy would have done)"
"${couponctl}" ope --decisions "${work}/pipeline/decisions.csv" --arm model --policy greedy
echo "\$ couponctl pipeline --logs logs --store store   (retrain on history + today's decisions)"
"${couponctl}" pipeline --logs "${work}/pipeline/logs" --store "${work}/pipeline/store" \
  --report "${work}/pipeline/report-2.md" --seed 43 --threads 2 \
  > "${work}/pipeline/pipeline-2.txt" 2> "${work}/pipeline/progress-2.log"
grep -E "^(published)" "${work}/pipeline/pipeline-2.txt"
for _ in $(seq 1 50); do
  "${couponctl}" model-info --server "${server}" | grep -qE "version +2" && break
  sleep 0.2
done
"${couponctl}" model-info --server "${server}" | head -3
kill -TERM "${pid}"
wait "${pid}"
trap - EXIT
echo
echo "demo finished: data in ${work}"
