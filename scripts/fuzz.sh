#!/usr/bin/env bash
# Builds the libFuzzer targets (preset asan: clang 14, ASan + UBSan; only the fuzz targets,
# so a tree that scripts/test.sh already built is reused as it is) and runs each for a
# while on a fresh copy of its seed corpus. Fails on any crash, contract violation, leak,
# input slower than 10 s (hang), or memory use over the RSS limit, and says where the
# failing input was saved. See fuzz/README.md.
#
# usage: scripts/fuzz.sh [seconds-per-target]     (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
if ! [[ "${seconds}" =~ ^[0-9]+$ ]] || [[ "${seconds}" -lt 1 ]]; then
  echo "usage: scripts/fuzz.sh [seconds-per-target]   (a whole number >= 1; default 30)" >&2
  exit 2
fi

scripts/install-deps.sh             # cmake, protoc, the libraries
scripts/install-deps.sh --fuzz      # clang 14 and its runtimes

build=build/asan
echo "=== fuzz: configure, build ==="
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$(nproc)" --target request_fuzzer model_version_fuzzer \
  csv_ingest_fuzzer

# Seeds come from readable sources in fuzz/corpus/ and are regenerated on every run:
# request_fuzzer: <kind>_*.txtpb, text-format requests encoded by protoc, after the byte
#   that selects the request type (as request_fuzzer.cc reads its input);
# model_version_fuzzer: one seed per line of seeds.txt, "<name> <hex bytes>";
# csv_ingest_fuzzer: <name>.seed, an "options <hex bytes>" line, then the CSV files, each
#   after a "--- <file>" line, joined by the byte 0x1E (layout: fuzz/csv_ingest_fuzzer.cc).
corpus=${build}/fuzz-corpus
artifacts=${build}/fuzz-artifacts
rm -rf "${corpus}" "${artifacts}"
for target in request_fuzzer model_version_fuzzer csv_ingest_fuzzer; do
  mkdir -p "${corpus}/${target}" "${artifacts}/${target}"
done

proto=proto/coupond/v1/coupon_scoring.proto
for src in fuzz/corpus/request_fuzzer/*.txtpb; do
  name=$(basename "${src}" .txtpb)
  case "${name}" in
    score_*) kind='\000' message=ScoreRequest ;;
    assign_*) kind='\001' message=AssignRequest ;;
    decide_*) kind='\002' message=DecideRequest ;;
    model_info*) kind='\003' message=GetModelInfoRequest ;;
    *) echo "fuzz.sh: ${src}: name must start with score_, assign_, decide_ or model_info" >&2
       exit 2 ;;
  esac
  out=${corpus}/request_fuzzer/${name}
  printf "${kind}" >"${out}"
  protoc --proto_path=proto --encode="coupond.v1.${message}" "${proto}" <"${src}" >>"${out}"
done

while read -r name rest; do
  [[ -z "${name}" || "${name}" == \#* ]] && continue
  hex=${rest%%#*}
  hex=${hex//[[:space:]]/}
  if ! [[ "${hex}" =~ ^([0-9a-fA-F]{2})+$ ]]; then
    echo "fuzz.sh: seeds.txt: seed '${name}' has no even run of hex digits" >&2
    exit 2
  fi
  printf "$(sed 's/../\\x&/g' <<<"${hex}")" >"${corpus}/model_version_fuzzer/${name}"
done <fuzz/corpus/model_version_fuzzer/seeds.txt

for src in fuzz/corpus/csv_ingest_fuzzer/*.seed; do
  name=$(basename "${src}" .seed)
  options=$(sed -n 's/^options //p' "${src}" | head -n 1)
  options=${options//[[:space:]]/}
  if ! [[ "${options}" =~ ^([0-9a-fA-F]{2})+$ ]]; then
    echo "fuzz.sh: ${src}: needs an 'options <hex bytes>' line" >&2
    exit 2
  fi
  out=${corpus}/csv_ingest_fuzzer/${name}
  printf "$(sed 's/../\\x&/g' <<<"${options}")" >"${out}"
  # The files' lines as they are; 0x1E (octal 036) between two files.
  awk 'started { if (/^--- /) { printf "\036"; next } print; next }
       /^--- / { started = 1 }' "${src}" >>"${out}"
done

# The model store of model_version_fuzzer lives on tmpfs when there is one.
store_root=$(mktemp -d -p "$([[ -d /dev/shm && -w /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")" \
             coupond-fuzz.XXXXXX)
trap 'rm -rf "${store_root}"' EXIT
export COUPOND_FUZZ_TMPDIR=${store_root}

# libFuzzer turns ASan, LeakSanitizer and UBSan reports into a saved crash input.
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# run_target <target> <max_len>: fuzzes one target; prints its summary, or its failure and
# the saved input; returns non-zero on a finding.
run_target() {
  local target=$1 max_len=$2
  local log=${build}/fuzz-${target}.log
  local dict=()
  [[ -f fuzz/${target}.dict ]] && dict=(-dict="fuzz/${target}.dict")
  echo "=== fuzz: ${target} for ${seconds} s ==="
  if "${build}/fuzz/${target}" \
       -max_total_time="${seconds}" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
       -detect_leaks=1 -max_len="${max_len}" -print_final_stats=1 "${dict[@]}" \
       -artifact_prefix="${artifacts}/${target}/" \
       "${corpus}/${target}" >"${log}" 2>&1; then
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "${log}" || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "${log}" || true
  else
    echo "--- ${target} FAILED; last lines of ${log}:"
    tail -n 60 "${log}"
    for input in "${artifacts}/${target}"/*; do
      [[ -e "${input}" ]] || continue
      echo "--- failing input saved at ${input}"
      echo "    reproduce: ${build}/fuzz/${target} ${input}"
    done
    return 1
  fi
}

status=0
targets=("request_fuzzer 4096" "model_version_fuzzer 512" "csv_ingest_fuzzer 4096")
if [[ $(nproc) -ge 2 ]]; then
  # At the same time (one core each when there are enough): the run takes ${seconds} s
  # instead of three times that.
  # Each report is printed whole once both are done, so the two do not interleave.
  pids=()
  for t in "${targets[@]}"; do
    read -r target max_len <<<"${t}"
    run_target "${target}" "${max_len}" >"${build}/fuzz-${target}.report" 2>&1 &
    pids+=($!)
  done
  for i in "${!targets[@]}"; do
    wait "${pids[$i]}" || status=1
    read -r target _ <<<"${targets[$i]}"
    cat "${build}/fuzz-${target}.report"
  done
else
  for t in "${targets[@]}"; do
    read -r target max_len <<<"${t}"
    run_target "${target}" "${max_len}" || status=1
  done
fi

if [[ ${status} -ne 0 ]]; then
  echo "=== fuzz: FAILED (see above) ===" >&2
  exit 1
fi
echo "=== fuzz: no crash, leak or hang ==="
