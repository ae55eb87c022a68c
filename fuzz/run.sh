#!/usr/bin/env bash
# Builds the libFuzzer targets (build-fuzz/, clang-14, ASan + UBSan) and runs
# each one in turn from its seed corpus. See fuzz/README.md.
#
#   fuzz/run.sh --smoke                  # every target for 30 s (CI)
#   fuzz/run.sh --seconds 3600           # the long run: every target for an hour
#   fuzz/run.sh --seconds 120 url_fuzz   # chosen targets only
#
# Options: --seconds N (per target, default 30), --build DIR (default
# build-fuzz), --no-build (use the binaries as they are). Environment:
# STIR_FUZZ_JOBS (compile jobs, default 1), STIR_FUZZ_NICE (default 19).
# New inputs go to DIR/fuzz-work/<target>/corpus, never into fuzz/corpus.
# Exit status: 0 when every target ran clean, 1 on any crash, leak, timeout
# (-timeout=5), out-of-memory (-rss_limit_mb=2048) or UBSan report; the
# input that failed is left in DIR/fuzz-work/<target>/ (crash-*, leak-*,
# timeout-*, oom-*), and the log beside it.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
seconds=30
build="$repo/build-fuzz"
do_build=1
targets=()
all_targets=(sign_request_fuzz verification_request_fuzz identity_header_fuzz passport_verify_fuzz
  chain_fuzz tn_auth_list_fuzz url_fuzz sks_config_fuzz tn_cr_config_fuzz tn_cr_path_fuzz
  json_input_fuzz passport_json_fuzz)

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit "$1"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) shift ;;
    --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
    --build) build=${2:?--build needs a folder}; shift 2 ;;
    --no-build) do_build=0; shift ;;
    -h|--help) usage 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; usage 64 >&2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
case "$seconds" in ''|*[!0-9]*) echo "run.sh: --seconds takes a whole number" >&2; exit 64 ;; esac
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
nice_cmd=(nice -n "${STIR_FUZZ_NICE:-19}")

if [ "$do_build" = 1 ]; then
  started=$(date +%s)
  if [ ! -f "$build/CMakeCache.txt" ]; then
    CC=clang-14 CXX=clang++-14 cmake -S "$repo" -B "$build" -G Ninja \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTIR_FUZZ=ON -DSTIR_BUILD_TESTS=OFF >/dev/null || exit 1
  fi
  "${nice_cmd[@]}" cmake --build "$build" --parallel "${STIR_FUZZ_JOBS:-1}" --target "${targets[@]}" \
    || exit 1
  echo "fuzz build: $(($(date +%s) - started)) s"
fi

declare -A dict=(
  [sign_request_fuzz]=json [verification_request_fuzz]=json [passport_verify_fuzz]=json
  [identity_header_fuzz]=identity [url_fuzz]=url [sks_config_fuzz]=toml
  [tn_cr_config_fuzz]=toml [tn_cr_path_fuzz]=tn_cr_path [json_input_fuzz]=json
)
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

failed=()
total_started=$(date +%s)
printf '%-28s %8s %12s %10s %s\n' target seconds executions exec/s result
for t in "${targets[@]}"; do
  bin="$build/fuzz/$t"
  if [ ! -x "$bin" ]; then echo "run.sh: $bin is not built" >&2; failed+=("$t"); continue; fi
  work="$build/fuzz-work/$t"
  mkdir -p "$work/corpus"
  args=(-max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1
    -artifact_prefix="$work/")
  [ -n "${dict[$t]:-}" ] && args+=(-dict="$repo/fuzz/dict/${dict[$t]}.dict")
  started=$(date +%s)
  "${nice_cmd[@]}" "$bin" "${args[@]}" "$work/corpus" "$repo/fuzz/corpus/$t" >"$work/log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -1)
  result=ok
  if [ "$rc" -ne 0 ] || grep -qE '^SUMMARY: |runtime error:' "$work/log"; then
    result="FAILED (exit $rc, log $work/log)"
    failed+=("$t")
    grep -E '^(SUMMARY|==[0-9]+==ERROR)|runtime error:|Test unit written to|fuzz property failed' \
      "$work/log" | head -5 | sed 's/^/    /'
  fi
  printf '%-28s %8s %12s %10s %s\n' "$t" "$(($(date +%s) - started))" "${execs:-?}" "${rate:-?}" \
    "$result"
done
echo "total: $(($(date +%s) - total_started)) s for ${#targets[@]} targets"
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
