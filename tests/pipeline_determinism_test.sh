#!/usr/bin/env bash
# Two default `couponctl pipeline` runs (every core) on the same simulated logs give
# byte-identical reports apart from times, the same stdout, and the same published bytes
# (the version's checksum covers every data key and value). A third run with --threads 1
# gives the same again: the thread count does not change the model.
# usage: pipeline_determinism_test.sh COUPONCTL
set -euo pipefail
couponctl=$1
work=$(mktemp -d)
trap 'rm -rf "${work}"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"${couponctl}" simulate --out "${work}/logs" --num_users 300 --num_coupons 30 --dimension 4 \
  --days 10 --coupons_per_day 6 --seed 3 > /dev/null
run() {  # run NAME [FLAGS...]: a pipeline into its own store, report NAME.md, stdout NAME.txt
  local name=$1
  shift
  "${couponctl}" pipeline --logs "${work}/logs" --store "${work}/${name}-store" \
    --report "${work}/${name}.md" "$@" > "${work}/${name}.txt" 2> "${work}/${name}.err" \
    || { cat "${work}/${name}.err"; fail "pipeline ${name}"; }
}
run a
run b
run one --threads 1
grep -q "published version 1 (.*checksum [0-9a-f]\{16\})" "${work}/a.txt" \
  || fail "no checksum in: $(grep published "${work}/a.txt")"
# Times: the Timings paragraph and the training curve's seconds column.
untimed() {
  sed -E -e '/^load \+ split [0-9.]+ s,/d' \
         -e 's/^(\| [0-9]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| )[0-9.]+ \|$/\1T |/' "$1"
}
# stdout names the run's own report file.
unnamed() { sed -E 's#^report: .*#report: R#' "$1"; }
for other in b one; do
  diff <(unnamed "${work}/a.txt") <(unnamed "${work}/${other}.txt") \
    || fail "stdout of a and ${other} differ"
  diff <(untimed "${work}/a.md") <(untimed "${work}/${other}.md") \
    || fail "reports of a and ${other} differ (apart from times)"
done
# The stripping above removed only times: the reports still hold the figures.
grep -q "AUC" "${work}/a.md" || fail "report without figures"
echo "PASS: byte-identical reports (apart from times) and published bytes"
