#!/usr/bin/env bash
# Signing/verification benchmark (a program, not a test): rates and ratios
# measured in one run. `--smoke` is the short run CI does to prove it works.
#   scripts/bench.sh [--seconds S] [--json] [--smoke]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${SKS_BUILD_DIR:-$ROOT/build}
args=()
for a in "$@"; do
  if [ "$a" = --smoke ]; then args+=(--seconds 0.2); else args+=("$a"); fi
done
cmake --build "$BUILD" --target sks_sign_bench >/dev/null
exec "$BUILD/sks/sks_sign_bench" "${args[@]}"
