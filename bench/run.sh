#!/usr/bin/env bash
# The project's figures in one table, from one run on one machine (ratios,
# not absolute numbers, are what count on shared hardware). bench/README.md
# says what each row means and the targets.
#
#   bench/run.sh [--seconds S] [--connections C] [--keys N] [--build-dir DIR] [--smoke]
#                [--perf DIR]
#                [--signature-check]
#
# Builds in Release in build-bench/ (ccache if present) unless --build-dir
# names a tree already configured. --smoke: a run of a few seconds that
# fails (exit 1) on any non-2xx answer, transport error or zero rate; CI
# runs it (scripts/dev.sh test). Targets missed are reported, not fatal.
# --perf DIR: `perf record -g` of sks serve during the saturation row, and
# its report (DIR/sks-saturation.txt); a build with -fno-omit-frame-pointer
# gives whole call graphs. The profiler slows the row it records.
# --signature-check: only the cost of each [token] signature_check mode
# (the full run prints it too, after the table).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-bench
SECONDS_EACH=10
CONNECTIONS=8 # httplib's server: one thread per connection, 16 threads on 2 cores
KEYS=1000
SMOKE=0
PERF_DIR=
ONLY_SIGNATURE_CHECK=0
usage() {
  echo "usage: $0 [--seconds S] [--connections C] [--keys N] [--build-dir DIR] [--smoke] [--perf DIR] [--signature-check]" >&2
  exit 64
}
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_EACH=${2:-}; shift 2 || usage ;;
    --connections) CONNECTIONS=${2:-}; shift 2 || usage ;;
    --keys) KEYS=${2:-}; shift 2 || usage ;;
    --build-dir) BUILD=$(cd "${2:-}" && pwd); shift 2 || usage ;;
    --smoke) SMOKE=1; SECONDS_EACH=1; KEYS=20; shift ;;
    --perf) PERF_DIR=$(mkdir -p "${2:-}" && cd "${2:-}" && pwd) || usage; shift 2 ;;
    --signature-check) ONLY_SIGNATURE_CHECK=1; shift ;;
    *) usage ;;
  esac
done
WARMUP=$(awk -v s="$SECONDS_EACH" 'BEGIN { print (s >= 5 ? 1 : 0.3) }')
IN_PROCESS=$(awk -v s="$SECONDS_EACH" 'BEGIN { print s / 5 }')
for tool in secsipidx curl python3 openssl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (scripts/dev.sh installs it)" >&2; exit 69; }
done

log() { printf '== %s\n' "$*" >&2; }
fail() {
  echo "bench: $*" >&2
  bench_logs
  exit 1
}
die() { fail "$@"; }
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

bench_configure "$BUILD"
log "build: $BUILD ($(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt"))"
cmake --build "$BUILD" --parallel "$(nproc)" \
  --target sks tn-cr sti-dev-ca sks_sign_bench stir_verify_bench stir_loadgen >/dev/null
# The cost of each signature check mode (bench/README.md, "Signature check").
cmake --build "$BUILD" --parallel "$(nproc)" --target sks_signature_check_bench >/dev/null
signature_check() {
  log "in process: PASSporT signing with signature_check off, sample (1 in 100), always"
  "$BUILD/sks/sks_signature_check_bench" --seconds "$IN_PROCESS"
}
if [ "$ONLY_SIGNATURE_CHECK" = 1 ]; then
  signature_check
  exit 0
fi
SKS=$BUILD/sks/sks
TNCR=$BUILD/tn-cr/tn-cr
LOADGEN=$BUILD/bench/stir_loadgen

bench_workdir stir-bench
# json FILE EXPR: a value from a JSON file, EXPR in Python over `j`.
json() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

log "set-up in $WORK: TLS CA, server and client certificates; token; test STI PKI"
bench_tls_and_tncr
export SKS_CONFIG
SKS_CONFIG=$("$SKS" init --dir "$WORK/token")
"$SKS" keys generate --label bench >/dev/null
"$BUILD/dev-pki/sti-dev-ca" init --dir pki --crl-url https://127.0.0.1/crl/bench.crl >/dev/null
"$SKS" keys csr --label bench --spc 1234 --subject "/C=US/O=SKS Bench" --out bench.csr
"$BUILD/dev-pki/sti-dev-ca" issue --dir pki --csr bench.csr --out chain.pem >/dev/null
"$SKS" keys install-cert --label bench --chain chain.pem >/dev/null

"$TNCR" publish --config tn-cr.toml --chain chain.pem --name bench.pem >/dev/null
bench_start tncr "$TNCR" serve --config tn-cr.toml
X5U=${URL%/}/bench.pem

# Beside the config `sks init` wrote, so the key ring folder is the same.
SERVE_CONFIG=$(dirname "$SKS_CONFIG")/serve.toml
{ cat "$SKS_CONFIG"; cat <<TOML

[server]
listen = "127.0.0.1"
port = 0
tls_cert = "$TLS/server.pem"
tls_key = "$TLS/server.key"
client_ca = "$TLS/ca.pem"

[[profile]]
name = "bench"
key = "bench"
x5u = "$X5U"
origid = "123e4567-e89b-12d3-a456-426655440000"
attest = ["A"]
clients = ["demo-sbc.example.net"]
TOML
} >"$SERVE_CONFIG"
bench_start sks "$SKS" serve --config "$SERVE_CONFIG"
SIGNING_URL=$URL

# The peer signs with a software key (PEM file): benchmark only.
openssl ecparam -name prime256v1 -genkey -noout -out peer-signing.key 2>/dev/null
peer_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
secsipidx -https-srv "127.0.0.1:$peer_port" -https-pubkey "$TLS/server.pem" \
  -https-prvkey "$TLS/server.key" -fprvkey peer-signing.key -expire 3600 >peer.out 2>peer.log &
bench_pids+=($!)
PEER_URL=https://127.0.0.1:$peer_port/v1/sign-csv
for _ in $(seq 300); do
  curl -s -o /dev/null --cacert "$TLS/ca.pem" "https://127.0.0.1:$peer_port/" && break
  sleep 0.05
done

# The same claims for both signers: orig, dest, attestation, origid, x5u.
printf '{"signingRequest":{"attest":"A","dest":{"tn":["12155550131"]},"orig":{"tn":"12155550121"}}}' >sks.json
printf '12155550121,12155550131,A,123e4567-e89b-12d3-a456-426655440000,%s' "$X5U" >peer.csv
curl -sS --fail-with-body --cacert "$TLS/ca.pem" --cert "$TLS/client.pem" --key "$TLS/client.key" \
  -H 'Content-Type: application/json' --data @sks.json "$SIGNING_URL" | grep -q '"identity"' ||
  fail "sks serve did not sign over mutual TLS"
curl -sS --fail --cacert "$TLS/ca.pem" --data @peer.csv "$PEER_URL" | grep -q 'ppt=shaken' ||
  fail "secsipidx did not sign"

MTLS=(--cacert "$TLS/ca.pem" --cert "$TLS/client.pem" --key "$TLS/client.key")
SKS_REQUEST=(-X POST -H 'Content-Type: application/json' -H 'Accept: application/json'
  --body-file sks.json --expect-substring '"identity"')
# load NAME ARGS...: one stir_loadgen run, JSON in NAME.json; non-2xx, errors or zero rate fail.
load() {
  local name=$1
  shift
  log "load: $name"
  "$LOADGEN" --json -c "$CONNECTIONS" -d "$SECONDS_EACH" --warmup "$WARMUP" "$@" >"$name.json" ||
    { cat "$name.json" >&2; fail "$name: non-2xx answers, errors or no answer at all"; }
}

log "in process: C_Sign and PASSporT, 1 and 2 threads; $KEYS keys in a token against 1 (making them takes a while)"
"$BUILD/sks/sks_sign_bench" --seconds "$IN_PROCESS" --keys "$KEYS" --json >sign.json ||
  fail "sks_sign_bench failed"
if [ -n "$PERF_DIR" ]; then
  perf record -g -o "$PERF_DIR/sks-saturation.data" -p "$sks_pid" -- sleep "$SECONDS_EACH" \
    2>"$PERF_DIR/perf-record.log" &
  perf_pid=$!
fi
load sks_saturation "${MTLS[@]}" "${SKS_REQUEST[@]}" "$SIGNING_URL"
if [ -n "$PERF_DIR" ]; then
  wait "$perf_pid" || true
  perf report -i "$PERF_DIR/sks-saturation.data" --children --percent-limit 1 --stdio -g none \
    --sort symbol 2>/dev/null | sed 's/  *$//' >"$PERF_DIR/sks-saturation.txt" || true
  log "profile: $PERF_DIR/sks-saturation.txt"
fi
half=$(json sks_saturation.json 'max(1, round(j["rate_per_s"] / 2))')
load sks_half_rate --rate "$half" "${MTLS[@]}" "${SKS_REQUEST[@]}" "$SIGNING_URL"
rss_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$sks_pid/status")
load peer --cacert "$TLS/ca.pem" -X POST -H 'Content-Type: text/plain' --body-file peer.csv \
  --expect-substring 'ppt=shaken' "$PEER_URL"
load tncr --cacert "$TLS/ca.pem" --expect-substring 'BEGIN CERTIFICATE' "$X5U"
log "in process: Verifier::verify with a cached certificate against OpenSSL's raw verify"
status=0
"$BUILD/verifier/stir_verify_bench" "$IN_PROCESS" >verify.txt || status=$?
# Exit 2 is the ratio target missed (shown below); anything else is a failure.
[ "$status" = 0 ] || [ "$status" = 2 ] || { cat verify.txt >&2; fail "stir_verify_bench failed"; }
raw_verify=$(sed -n 's/^raw OpenSSL P-256 verify.* \([0-9]*\) \/s$/\1/p' verify.txt)
vs_verify=$(sed -n 's/^Verifier::verify, warm cache.* \([0-9]*\) \/s$/\1/p' verify.txt)
vs_ratio=$(sed -n 's/^ratio verifier \/ raw.*: *\([0-9.]*\) .*/\1/p' verify.txt)

python3 - "$CONNECTIONS" "$KEYS" "$rss_kib" "$raw_verify" "$vs_verify" "$vs_ratio" "$SMOKE" <<'PY'
import json, sys
connections, keys, rss_kib, raw_verify, vs_verify, vs_ratio, smoke = sys.argv[1:]
load = lambda name: json.load(open(name + ".json"))
sign, sat, half, peer, tncr = (load(n) for n in ("sign", "sks_saturation", "sks_half_rate", "peer", "tncr"))
rows = []
def rate(what, value, unit="/s"):
    rows.append((what, f"{value:,.0f}", "", "", "", unit))
def http(what, r):
    l = r["latency_ms"]
    rows.append((what, f"{r['rate_per_s']:,.0f}", f"{l['p50']:.2f}", f"{l['p99']:.2f}", f"{l['p99_9']:.2f}",
                 f"{r['requests']} req, {r['non_2xx']} non-2xx, {r['errors']} errors"))
rate("in-process C_Sign, 1 thread", sign["token_sign_1_thread_per_s"])
rate("in-process C_Sign, 2 threads", sign["token_sign_2_threads_per_s"])
rate("in-process PASSporT, 1 thread", sign["passport_sign_1_thread_per_s"])
rate("in-process PASSporT, 2 threads (ceiling)", sign["passport_sign_2_threads_per_s"])
http(f"sks serve POST signing, mTLS, c={connections}", sat)
http(f"sks serve, fixed {half['target_rate_per_s']:.0f}/s (half)", half)
http(f"secsipidx sign-csv, TLS no client cert, c={connections}", peer)
http(f"tn-cr serve GET one chain, c={connections}", tncr)
rate("verify, cached certificate, 1 thread", float(vs_verify))
rate("OpenSSL raw P-256 verify, 1 thread", float(raw_verify))
rate(f"in-process C_Sign, {keys} keys in token", sign["token_sign_many_keys_1_thread_per_s"])
rate("in-process C_Sign, 1 key in token", sign["token_sign_1_key_1_thread_per_s"])
rows.append(("sks serve peak RSS (VmHWM)", f"{int(rss_kib) / 1024:.1f}", "", "", "", "MiB"))
print(f"{'':48} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'p99.9':>7}  notes")
for r in rows:
    print(f"{r[0]:48} {r[1]:>9} {r[2]:>7} {r[3]:>7} {r[4]:>7}  {r[5]}")
ratios = [
    ("sks / secsipidx", sat["rate_per_s"] / peer["rate_per_s"], ">= 1.2", lambda v: v >= 1.2),
    ("sks / in-process PASSporT 2 threads", sat["rate_per_s"] / sign["passport_sign_2_threads_per_s"],
     ">= 0.6", lambda v: v >= 0.6),
    ("p99 at half the saturated rate (ms)", half["latency_ms"]["p99"], "<= 2", lambda v: v <= 2),
    ("sks serve peak RSS (MiB)", int(rss_kib) / 1024, "<= 64", lambda v: v <= 64),
    (f"C_Sign {keys} keys / 1 key (median)", sign["ratio_many_keys_vs_1_key"], "0.95-1.05",
     lambda v: 0.95 <= v <= 1.05),
    ("verifier / raw verify (median)", float(vs_ratio), ">= 0.70", lambda v: v >= 0.70),
]
print()
print(f"{'ratio':48} {'value':>9}  {'target':<10} met")
for name, value, target, met in ratios:
    print(f"{name:48} {value:9.2f}  {target:<10} {'yes' if met(value) else 'NO'}")
if smoke == "1":
    print("(smoke run: seconds-long, the figures are not measurements)")
PY
echo
signature_check
