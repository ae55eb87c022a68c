#!/usr/bin/env bash
# The signing service over HTTPS against a peer, in one run on one machine
# (ratios, not absolute numbers, are what count on shared hardware):
#   - the token's in-process ceiling (sks_sign_bench, 2 threads)
#   - `sks serve`: POST /stir/v1/signing over TLS with keep-alive
#   - secsipidx's HTTPS signer (POST /v1/sign-csv), which reads a PEM key
# Load: wrk on the same machine, one thread, 8 connections (INTEROP.md).
# wrk cannot present a client certificate, so sks runs with the lab-only
# lab_no_client_cert here; with keep-alive that changes one handshake per
# connection, not the per-request path.
#   scripts/bench-https.sh [--seconds S] [--connections C] [--smoke]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${SKS_BUILD_DIR:-$ROOT/build}
SECONDS_EACH=10
CONNECTIONS=8
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_EACH=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --smoke) SECONDS_EACH=2; shift ;;
    *) echo "usage: $0 [--seconds S] [--connections C] [--smoke]" >&2; exit 64 ;;
  esac
done
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 69; }

WORK=$(mktemp -d /tmp/sks-bench-https.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"
umask 077

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# TLS for both servers, and the peer's software signing key (benchmark only).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout tls.key -out tls.pem 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out peer-signing.key 2>/dev/null

config=$("$BUILD/sks/sks" init --dir "$WORK/token")
"$BUILD/sks/sks" keys generate --config "$config" --label bench >/dev/null
sks_port=$(free_port)
cat "$config" - >sks.toml <<TOML

[server]
listen = "127.0.0.1"
port = $sks_port
tls_cert = "$WORK/tls.pem"
tls_key = "$WORK/tls.key"
lab_no_client_cert = true
default_profile = "bench"

[[profile]]
name = "bench"
key = "bench"
x5u = "https://cr.example.net/bench.pem"
origid = "123e4567-e89b-12d3-a456-426655440000"
TOML
"$BUILD/sks/sks" serve --config sks.toml >sks.out 2>sks.log &
pids+=($!)
peer_port=$(free_port)
secsipidx -https-srv "127.0.0.1:$peer_port" -https-pubkey tls.pem -https-prvkey tls.key \
  -fprvkey peer-signing.key -expire 3600 >peer.log 2>&1 &
pids+=($!)

wait_for() {
  for _ in $(seq 300); do
    curl -sk -o /dev/null "https://127.0.0.1:$1/" 2>/dev/null && return
    sleep 0.05
  done
  echo "server on port $1 did not start" >&2
  cat sks.log peer.log >&2
  exit 1
}
wait_for "$sks_port"
wait_for "$peer_port"

cat >sks.lua <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.body = '{"signingRequest":{"attest":"A","dest":{"tn":["12155550131"]},"orig":{"tn":"12155550121"}}}'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.3f %.3f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, summary.requests))
end
LUA
sed -e 's|^wrk.headers\["Content-Type"\].*|wrk.headers["Content-Type"] = "text/plain"|' \
  -e '/Accept/d' \
  -e 's|^wrk.body = .*|wrk.body = "12155550121,12155550131,A,123e4567-e89b-12d3-a456-426655440000,https://cr.example.net/bench.pem"|' \
  sks.lua >peer.lua

# Check both answer correctly before measuring.
curl -sk --fail -H 'Content-Type: application/json' \
  --data '{"signingRequest":{"attest":"A","dest":{"tn":["12155550131"]},"orig":{"tn":"12155550121"}}}' \
  "https://127.0.0.1:$sks_port/stir/v1/signing" | grep -q '"identity"'
curl -sk --fail --data "12155550121,12155550131,A,123e4567-e89b-12d3-a456-426655440000,https://cr.example.net/bench.pem" \
  "https://127.0.0.1:$peer_port/v1/sign-csv" | grep -q 'ppt=shaken'

ceiling=$("$BUILD/sks/sks_sign_bench" --seconds "$(awk "BEGIN{print $SECONDS_EACH/5}")" --json |
  python3 -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["token_sign_2_threads_per_s"])')
measure() { wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" -s "$2" "$1" | awk '/^RESULT/ {print $2, $3, $4, $5, $6}'; }
read -r sks_rps sks_p50 sks_p99 sks_errors sks_total < <(measure "https://127.0.0.1:$sks_port/stir/v1/signing" sks.lua)
read -r peer_rps peer_p50 peer_p99 peer_errors peer_total < <(measure "https://127.0.0.1:$peer_port/v1/sign-csv" peer.lua)

printf '%-44s %10s %9s %9s %8s\n' "" "req/s" "p50 ms" "p99 ms" "errors"
printf '%-44s %10s\n' "token ceiling, in process, 2 threads" "$ceiling"
printf '%-44s %10s %9s %9s %8s\n' "sks serve, HTTPS keep-alive (c=$CONNECTIONS)" "$sks_rps" "$sks_p50" "$sks_p99" "$sks_errors/$sks_total"
printf '%-44s %10s %9s %9s %8s\n' "secsipidx HTTPS signer (c=$CONNECTIONS)" "$peer_rps" "$peer_p50" "$peer_p99" "$peer_errors/$peer_total"
awk -v s="$sks_rps" -v p="$peer_rps" -v c="$ceiling" 'BEGIN {
  printf "ratio sks / secsipidx:            %.2f\n", s / p
  printf "ratio sks / in-process ceiling:   %.2f\n", s / c }'
[ "$sks_errors" = 0 ] || { echo "sks answered errors under load" >&2; exit 1; }
