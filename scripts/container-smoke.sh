#!/usr/bin/env bash
# Container smoke test: builds docker/Dockerfile and checks the image end to end, inside it:
# generate a small synthetic platform, publish it into a store, start coupond on a free
# port, wait for SERVING, score one known user, stop coupond with SIGTERM and require exit 0.
#
# It uses ../shared/tools/container-check (buildah with vfs storage: no Docker engine needed;
# it must run as root), which builds the image and runs ONE command in it, so the whole
# sequence is one `/bin/sh -c` script. A full Release build happens inside the image: this
# takes minutes. Run it on demand (after touching docker/, install-deps.sh or the link
# dependencies), not in CI.
#
# usage: scripts/container-smoke.sh [TAG]      (default: coupond:dev)
# Exit status: 0 when the check passed (or was skipped, with a line starting "SKIP:"),
# otherwise that of the failing step.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
check=$root/../shared/tools/container-check
tag=${1:-coupond:dev}

if [[ ! -f "$check" ]]; then
  echo "SKIP: $check not found (it builds images with buildah; this smoke test needs it)"
  exit 0
fi

# Runs in the image as its USER (coupond, uid 10001) with Debian's /bin/sh (dash).
read -r -d '' smoke <<'EOF' || true
set -eu
t=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$t"' EXIT
echo "smoke: as uid $(id -u); generate and publish a synthetic platform"
couponctl generate --out "$t/platform" --num_users 2000 --num_coupons 100 --dimension 16 --seed 7
couponctl publish --store "$t/store" --factors "$t/platform"
echo "smoke: start coupond"
coupond --store "$t/store" --listen 127.0.0.1:0 --port_file "$t/port" &
pid=$!
i=0
while [ ! -s "$t/port" ]; do
  kill -0 "$pid" 2>/dev/null || { echo "FAIL: coupond exited before serving"; exit 1; }
  i=$((i + 1))
  [ "$i" -le 300 ] || { echo "FAIL: no --port_file after 30 s"; exit 1; }
  sleep 0.1
done
addr=127.0.0.1:$(cat "$t/port")
echo "smoke: coupond on $addr"
couponctl health --server "$addr" --wait 30s
out=$(couponctl score --server "$addr" --user u0000001 --top_k 3)
echo "$out"
echo "$out" | grep -q '(known user)' || { echo "FAIL: u0000001 not scored as a known user"; exit 1; }
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || { echo "FAIL: coupond exited $rc after SIGTERM"; exit 1; }
echo "smoke: coupond exited 0 after SIGTERM"
echo "PASS: container smoke test"
EOF

cd "$root"
start=$SECONDS
rc=0
bash "$check" -f docker/Dockerfile -t "$tag" . -- /bin/sh -c "$smoke" || rc=$?
echo "container-smoke: exit $rc after $((SECONDS - start)) s (image $tag)"
exit "$rc"
