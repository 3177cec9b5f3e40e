#!/usr/bin/env bash
# Installs coupond's build and test dependencies from Debian 12's archive.
# Idempotent: packages already present are skipped, and apt-get is not run at all when
# everything is installed. Used by the README's commands, by .ci/run and by docker/.
#
# usage: scripts/install-deps.sh [--build | --runtime | --fuzz]
#   (none)      what building and testing need: BUILD_PACKAGES and TEST_PACKAGES
#   --build     only what compiling the binaries needs (the container's build stage)
#   --runtime   only the shared libraries the coupond/couponctl binaries need (container runtime stage)
#   --fuzz      only what scripts/fuzz.sh adds: clang 14, its libFuzzer/sanitizer runtimes and
#               llvm-symbolizer (kept out of the default list so the container build stays lean)
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev librocksdb-dev libspdlog-dev libfmt-dev libxxhash-dev
  libgtest-dev libgmock-dev libbenchmark-dev libhwy-dev
  libeigen3-dev libopenblas-dev libglpk-dev libssl-dev libcpp-httplib-dev
)
TEST_PACKAGES=(
  # the CLI: serving_integration_test makes a throw-away CA and certificates with it
  openssl
  # scripts/check-layering.py (the include rules of docs/architecture.md)
  python3
  # the Python client (clients/python) and its test: the runtime of the stubs that the system
  # protoc and grpc_python_plugin generate (python3-grpc-tools' protoc 3.5 cannot compile them)
  python3-grpcio python3-protobuf
  # promtool checks docker/prometheus/coupond-rules.yml; tests/prometheus_test.py runs a real
  # Prometheus (on a free loopback port, never the package's own daemon on :9090)
  prometheus
)
FUZZ_PACKAGES=(clang-14 libclang-rt-14-dev llvm-14)
RUNTIME_PACKAGES=(
  libgrpc++1.51 libprotobuf32 libabsl20220623 librocksdb7.8 libspdlog1.10 libhwy1 libxxhash0 libssl3
  libcpp-httplib0.11
)

packages=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}")
if [[ "${1:-}" == "--build" ]]; then
  packages=("${BUILD_PACKAGES[@]}")
elif [[ "${1:-}" == "--runtime" ]]; then
  packages=("${RUNTIME_PACKAGES[@]}")
elif [[ "${1:-}" == "--fuzz" ]]; then
  packages=("${FUZZ_PACKAGES[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
