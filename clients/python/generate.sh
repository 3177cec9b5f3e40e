#!/usr/bin/env bash
# Generates the Python stubs of coupond's API (proto/coupond/v1/*.proto) and of the standard
# health service into OUT_DIR (not committed; put OUT_DIR on PYTHONPATH).
#
# Why the system protoc: Debian 12's python3-grpc-tools (grpcio-tools 1.14) bundles protoc
# 3.5, which rejects proto3 `optional` (used by coupon_scoring.proto). So this script runs
# the system protoc 3.21 (protobuf-compiler) with gRPC's Python plugin
# (protobuf-compiler-grpc: grpc_python_plugin). The stubs need, at run time, Debian's
# python3-grpcio 1.51 and python3-protobuf 3.21 (both in scripts/install-deps.sh).
#
# The health service's proto is generated as grpc_health/v1/health.proto: the module path
# (grpc_health.v1.health_pb2) and descriptor name of the grpcio-health-checking package, so
# the two are interchangeable. Its own path, grpc/health/v1, would be hidden by the installed
# `grpc` package.
#
# usage: clients/python/generate.sh OUT_DIR
#   PROTOC (default: protoc) and GRPC_PYTHON_PLUGIN (default: grpc_python_plugin on PATH)
#   override the tools; GRPC_PROTO_DIR (default: /usr/share/grpc-proto, package grpc-proto)
#   is where health.proto is read from.
set -euo pipefail
if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
out=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
protoc=${PROTOC:-protoc}
plugin=${GRPC_PYTHON_PLUGIN:-$(command -v grpc_python_plugin || true)}
grpc_proto_dir=${GRPC_PROTO_DIR:-/usr/share/grpc-proto}
[[ -n "${plugin}" && -x "${plugin}" ]] || {
  echo "$0: grpc_python_plugin not found (Debian: protobuf-compiler-grpc)" >&2; exit 1; }
[[ -f "${grpc_proto_dir}/grpc/health/v1/health.proto" ]] || {
  echo "$0: ${grpc_proto_dir}/grpc/health/v1/health.proto not found (Debian: grpc-proto)" >&2; exit 1; }

mkdir -p "${out}"
stage=$(mktemp -d)
trap 'rm -rf "${stage}"' EXIT
mkdir -p "${stage}/grpc_health/v1"
cp "${grpc_proto_dir}/grpc/health/v1/health.proto" "${stage}/grpc_health/v1/health.proto"

"${protoc}" --proto_path="${root}/proto" --proto_path="${stage}" \
  --python_out="${out}" --grpc_python_out="${out}" \
  --plugin=protoc-gen-grpc_python="${plugin}" \
  "${root}"/proto/coupond/v1/*.proto "${stage}/grpc_health/v1/health.proto"
