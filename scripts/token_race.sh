#!/bin/bash
# token_race.sh [--loops N] [--parallel P] [SKS_BINARY]
#
# How often an `sks` command loses its token to another process logging in
# on the same SoftHSM2 token: P processes each run `sks keys list` N times
# at once on one fresh token (sks init in a temporary folder) and the
# failures are counted with their messages. SoftHSM2 rewrites its token
# file at every C_Login, truncating it before it takes the lock, so a reader
# can find it half written (see the comment on kTokenFileAttempts in
# sks/src/pkcs11/token.cpp). Not run in CI: it measures a rate.
set -euo pipefail
LOOPS=150
PARALLEL=8
SKS=
while [ $# -gt 0 ]; do
  case $1 in
  --loops) LOOPS=$2; shift 2 ;;
  --parallel) PARALLEL=$2; shift 2 ;;
  -h | --help) sed -n '2,11s/^# \{0,1\}//p' "$0"; exit 0 ;;
  *) SKS=$1; shift ;;
  esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SKS=${SKS:-$ROOT/build/sks/sks}
[ -x "$SKS" ] || { echo "token_race: no sks binary at $SKS (build first, or name one)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/token-race.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
sks() { env -u SKS_CONFIG -u SOFTHSM2_CONF "$SKS" "$@"; }
config=$(sks init --dir "$WORK/sks" 2>init.err | head -n 1) || { cat init.err >&2; exit 1; }
sks keys generate --label race-1 --config "$config" >/dev/null
for p in $(seq "$PARALLEL"); do
  (
    failed=0
    for _ in $(seq "$LOOPS"); do
      sks keys list --json --config "$config" >/dev/null 2>>"err.$p" || failed=$((failed + 1))
    done
    echo "$failed" >"failed.$p"
  ) &
done
wait
total=$(cat failed.* | awk '{ s += $1 } END { print s }')
echo "token_race: $total of $((LOOPS * PARALLEL)) commands failed ($PARALLEL processes at once, $(cut -d' ' -f1-3 /proc/loadavg) load)"
cat err.* | sort | uniq -c | sort -rn | head -n 5
