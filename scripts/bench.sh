#!/usr/bin/env bash
# Signing and verification benchmarks (programs, not tests): rates and
# ratios measured in one run. `--smoke` is the short run CI does to prove
# they work.
#   scripts/bench.sh [--seconds S] [--smoke]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${SKS_BUILD_DIR:-$ROOT/build}
seconds=2
smoke=0
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) seconds=0.2; smoke=1; shift ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds S] [--smoke]" >&2; exit 64 ;;
  esac
done
cmake --build "$BUILD" --target sks_sign_bench stir_verify_bench >/dev/null
echo "== signing: token through the session pool vs OpenSSL"
"$BUILD/sks/sks_sign_bench" --seconds "$seconds"
echo "== verification: Verifier::verify with a cached certificate vs OpenSSL raw verify"
# Exit 2 is "ratio below target": a timing verdict, which a smoke run on a
# loaded machine does not judge; any other failure still fails.
rc=0
"$BUILD/verifier/stir_verify_bench" "$seconds" || rc=$?
if [ "$rc" -eq 2 ] && [ "$smoke" = 1 ]; then
  echo "(smoke run: ratio below target not judged)"
  rc=0
fi
exit "$rc"
