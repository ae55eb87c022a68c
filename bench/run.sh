#!/usr/bin/env bash
# The project's figures in one table, from one run on one machine (ratios,
# not absolute numbers, are what count on shared hardware). bench/README.md
# says what each row means and the targets.
#
#   bench/run.sh [--seconds S] [--connections C] [--keys N] [--build-dir DIR] [--smoke]
#                [--perf DIR] [--rounds R] [--against SKS_BINARY] [--no-build]
#                [--signature-check]
#
# With 2 cores or more, every server runs on core 0 and the load generator
# on core 1 (taskset), and each serving row reports the server's CPU time
# per request (utime + stime from /proc/PID/stat over all answers) and its
# context switches per request (every thread's, /proc/PID/task/*/status):
# figures a busy machine hardly moves, unlike req/s. Comparisons run as
# alternating rounds (A, B, A, B): sks against secsipidx, and with
# --against BINARY this build's sks against BINARY (another build's
# `sks`) on the same token and config. The smoke run fails when sks's CPU
# per request, as a ratio to the in-process PASSporT's CPU per signature,
# is above the bound in bench/cpu-bound.txt by more than its margin.
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
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
BUILD=$ROOT/build-bench
SECONDS_EACH=10
CONNECTIONS=8 # httplib's server: one thread per connection, 16 threads on 2 cores
KEYS=1000
SMOKE=0
PERF_DIR=
ONLY_SIGNATURE_CHECK=0
ROUNDS=2
AGAINST=
NO_BUILD=0
USAGE="[--seconds S] [--connections C] [--keys N] [--build-dir DIR] [--smoke] [--perf DIR] [--rounds R] [--against SKS_BINARY] [--no-build] [--signature-check]"
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_EACH=${2:-}; shift 2 || usage ;;
    --connections) CONNECTIONS=${2:-}; shift 2 || usage ;;
    --keys) KEYS=${2:-}; shift 2 || usage ;;
    --build-dir) BUILD=$(cd "${2:-}" && pwd); shift 2 || usage ;;
    --smoke) SMOKE=1; SECONDS_EACH=2; KEYS=20; ROUNDS=3; shift ;;
    --rounds) ROUNDS=${2:-}; shift 2 || usage ;;
    --no-build) NO_BUILD=1; shift ;;
    --against) AGAINST=$(realpath "${2:-}") || usage; shift 2 ;;
    --perf) PERF_DIR=$(mkdir -p "${2:-}" && cd "${2:-}" && pwd) || usage; shift 2 ;;
    --signature-check) ONLY_SIGNATURE_CHECK=1; shift ;;
    *) usage ;;
  esac
done
PASSPORT_SECONDS=$(awk -v s="$SECONDS_EACH" 'BEGIN { print (s >= 2 ? s / 2 : 1) }')
WARMUP=$(awk -v s="$SECONDS_EACH" 'BEGIN { print (s >= 5 ? 1 : 0.3) }')
IN_PROCESS=$(awk -v s="$SECONDS_EACH" 'BEGIN { print s / 5 }')
for tool in secsipidx curl python3 openssl taskset; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (scripts/dev.sh installs it)" >&2; exit 69; }
done

log() { printf '== %s\n' "$*" >&2; }
# The server under test on core 0, the load generator on core 1.
PIN_SERVER=()
PIN_LOAD=()
if [ "$(nproc)" -ge 2 ]; then
  PIN_SERVER=(taskset -c 0)
  PIN_LOAD=(taskset -c 1)
fi
fail() {
  echo "bench: $*" >&2
  bench_logs
  exit 1
}
die() { fail "$@"; }

bench_configure "$BUILD"
log "build: $BUILD ($(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt"))"
if [ "$NO_BUILD" = 0 ]; then # --no-build: the tree as it is (another build may be running in it)
  cmake --build "$BUILD" --parallel "$(nproc)" \
    --target sks tn-cr sti-dev-ca sks_sign_bench stir_verify_bench stir_loadgen >/dev/null
  # The cost of each signature check mode (bench/README.md, "Signature check").
  cmake --build "$BUILD" --parallel "$(nproc)" --target sks_signature_check_bench >/dev/null
fi
signature_check() {
  log "in process: PASSporT signing with signature_check off, sample (1 in 100), always"
  "$BUILD/sks/sks_signature_check_bench" --seconds "$IN_PROCESS"
}
if [ "$ONLY_SIGNATURE_CHECK" = 1 ]; then
  signature_check
  exit 0
fi
SKS=${SKS_BINARY:-$BUILD/sks/sks}  # SKS_BINARY: a copy, so the tree can be rebuilt meanwhile
TNCR=$BUILD/tn-cr/tn-cr
LOADGEN=$BUILD/bench/stir_loadgen

bench_workdir stir-bench
# json FILE EXPR: a value from a JSON file, EXPR in Python over `j`.
json() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

log "set-up in $WORK: TLS CA, server and client certificates; token; test STI PKI"
bench_tls_and_tncr
bench_token_and_chain

"$TNCR" publish --config tn-cr.toml --chain chain.pem --name bench.pem >/dev/null
bench_start tncr "${PIN_SERVER[@]}" "$TNCR" serve --config tn-cr.toml
X5U=${URL%/}/bench.pem
bench_serve_config "$X5U"
bench_start sks "${PIN_SERVER[@]}" "$SKS" serve --config "$SERVE_CONFIG"
SIGNING_URL=$URL
# The serving floor: GET /healthz on the same listener and mutual TLS, a
# request with no body, no JSON and no signature.
FLOOR_URL=${URL%/stir/v1/signing}/healthz
if [ -n "$AGAINST" ]; then
  bench_start sks_b "${PIN_SERVER[@]}" "$AGAINST" serve --config "$SERVE_CONFIG"
  SIGNING_URL_B=$URL
fi

# The peer signs with a software key (PEM file): benchmark only.
openssl ecparam -name prime256v1 -genkey -noout -out peer-signing.key 2>/dev/null
peer_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${PIN_SERVER[@]}" secsipidx -https-srv "127.0.0.1:$peer_port" -https-pubkey "$TLS/server.pem" \
  -https-prvkey "$TLS/server.key" -fprvkey peer-signing.key -expire 3600 >peer.out 2>peer.log &
bench_pids+=($!)
peer_pid=$!
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
# cpu_ticks PID: the process's utime + stime (clock ticks), dead threads included.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# sys_ticks PID: the stime alone (the kernel's share).
sys_ticks() { awk '{ print $15 }' "/proc/$1/stat"; }
# switches PID: voluntary + involuntary context switches of its live threads.
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches:/ { n += $2 } END { print n + 0 }'; }
# load NAME PID ARGS...: one stir_loadgen run (pinned), JSON in NAME.json, the
# server PID's CPU ticks and context switches over the run in NAME.cpu;
# non-2xx, errors or zero rate fail.
load() {
  local name=$1 pid=$2 ticks sys cs
  shift 2
  log "load: $name"
  ticks=$(cpu_ticks "$pid")
  sys=$(sys_ticks "$pid")
  cs=$(switches "$pid")
  "${PIN_LOAD[@]}" "$LOADGEN" --json -c "$CONNECTIONS" -d "${LOAD_SECONDS:-$SECONDS_EACH}" --warmup "$WARMUP" \
    --sample "$name.sample" "$@" >"$name.json" ||
    { cat "$name.json" >&2; fail "$name: non-2xx answers, errors or no answer at all"; }
  echo "$(($(cpu_ticks "$pid") - ticks)) $(($(switches "$pid") - cs)) $(getconf CLK_TCK)" \
    "$(($(sys_ticks "$pid") - sys))" >"$name.cpu"
}
# verify_sample NAME: every sampled token of a sks row verifies against the x5u's chain.
verify_sample() {
  local identity n=0
  while IFS= read -r identity; do
    "$SKS" verify --identity "$identity" --cert chain.pem >/dev/null 2>>verify-sample.log ||
      fail "$1: a token the server returned does not verify against its x5u: $identity"
    n=$((n + 1))
  done < <(python3 -c 'import json,sys
for line in open(sys.argv[1]): print(json.loads(line)["signingResponse"]["identity"])' "$1.sample")
  [ "$n" -gt 0 ] || fail "$1: no token sampled"
  echo "$n" >"$1.verified"
}

log "in process: C_Sign and PASSporT, 1 and 2 threads; $KEYS keys in a token against 1 (making them takes a while)"
"${PIN_SERVER[@]}" "$BUILD/sks/sks_sign_bench" --seconds "$IN_PROCESS" --keys "$KEYS" --json >sign.json ||
  fail "sks_sign_bench failed"
# A warm-up load of each server first (its first TLS sessions, heap and
# caches), not reported: the first row otherwise costs ~20 % more.
LOAD_SECONDS=1 load warm_sks "$sks_pid" "${MTLS[@]}" "${SKS_REQUEST[@]}" "$SIGNING_URL"
[ -z "$AGAINST" ] || LOAD_SECONDS=1 load warm_against "$sks_b_pid" "${MTLS[@]}" "${SKS_REQUEST[@]}" "$SIGNING_URL_B"
if [ -n "$PERF_DIR" ]; then
  perf record -g -o "$PERF_DIR/sks-saturation.data" -p "$sks_pid" -- sleep "$SECONDS_EACH" \
    2>"$PERF_DIR/perf-record.log" &
  perf_pid=$!
fi
# Alternating rounds: sks, secsipidx (and the --against build), sks, ...;
# round 1's sks row is the saturation row of the table.
for round in $(seq "$ROUNDS"); do
  load "sks_r$round" "$sks_pid" "${MTLS[@]}" "${SKS_REQUEST[@]}" "$SIGNING_URL"
  verify_sample "sks_r$round"
  # The yardstick of the CPU gate, measured in every round beside the rows.
  "${PIN_SERVER[@]}" "$BUILD/sks/sks_sign_bench" --passport-cpu --seconds "$PASSPORT_SECONDS" \
    >"inproc_r$round.json" || fail "sks_sign_bench --passport-cpu failed"
  if [ "$round" = 1 ]; then
    for f in json cpu verified; do cp "sks_r1.$f" "sks_saturation.$f"; done
  fi
  if [ -n "$AGAINST" ]; then
    load "against_r$round" "$sks_b_pid" "${MTLS[@]}" "${SKS_REQUEST[@]}" "$SIGNING_URL_B"
    verify_sample "against_r$round"
  fi
  load "peer_r$round" "$peer_pid" --cacert "$TLS/ca.pem" -X POST -H 'Content-Type: text/plain' \
    --body-file peer.csv --expect-substring 'ppt=shaken' "$PEER_URL"
  [ "$SMOKE" = 1 ] || load "floor_r$round" "$sks_pid" "${MTLS[@]}" --expect-substring ok "$FLOOR_URL"
done
cp peer_r1.json peer.json
cp peer_r1.cpu peer.cpu
if [ -n "$PERF_DIR" ]; then
  wait "$perf_pid" || true
  perf report -i "$PERF_DIR/sks-saturation.data" --children --percent-limit 1 --stdio -g none \
    --sort symbol 2>/dev/null | sed 's/  *$//' >"$PERF_DIR/sks-saturation.txt" || true
  log "profile: $PERF_DIR/sks-saturation.txt"
fi
half=$(json sks_saturation.json 'max(1, round(j["rate_per_s"] / 2))')
load sks_half_rate "$sks_pid" --rate "$half" "${MTLS[@]}" "${SKS_REQUEST[@]}" "$SIGNING_URL"
verify_sample sks_half_rate
if [ -n "$AGAINST" ]; then # the same rate, so the two p99s compare
  load against_half_rate "$sks_b_pid" --rate "$half" "${MTLS[@]}" "${SKS_REQUEST[@]}" "$SIGNING_URL_B"
  verify_sample against_half_rate
fi
# The floor at the same rate, where a request also pays its wakeups.
[ "$SMOKE" = 1 ] || load floor_half_rate "$sks_pid" --rate "$half" "${MTLS[@]}" --expect-substring ok "$FLOOR_URL"
rss_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$sks_pid/status")
load tncr "$tncr_pid" --cacert "$TLS/ca.pem" --expect-substring 'BEGIN CERTIFICATE' "$X5U"
log "in process: Verifier::verify with a cached certificate against OpenSSL's raw verify"
status=0
"$BUILD/verifier/stir_verify_bench" "$IN_PROCESS" >verify.txt || status=$?
# Exit 2 is the ratio target missed (shown below); anything else is a failure.
[ "$status" = 0 ] || [ "$status" = 2 ] || { cat verify.txt >&2; fail "stir_verify_bench failed"; }
raw_verify=$(sed -n 's/^raw OpenSSL P-256 verify.* \([0-9]*\) \/s$/\1/p' verify.txt)
vs_verify=$(sed -n 's/^Verifier::verify, warm cache.* \([0-9]*\) \/s$/\1/p' verify.txt)
vs_ratio=$(sed -n 's/^ratio verifier \/ raw.*: *\([0-9.]*\) .*/\1/p' verify.txt)

python3 - "$CONNECTIONS" "$KEYS" "$rss_kib" "$raw_verify" "$vs_verify" "$vs_ratio" "$SMOKE" \
  "$ROUNDS" "${AGAINST:-}" "$ROOT/bench/cpu-bound.txt" "${#PIN_SERVER[@]}" <<'PY'
import json, os, statistics, sys
connections, keys, rss_kib, raw_verify, vs_verify, vs_ratio, smoke, rounds, against, bound_file, pinned = sys.argv[1:]
rounds = int(rounds)
load = lambda name: json.load(open(name + ".json"))
def cpu(name):
    """(server CPU us per answered request, context switches per request)."""
    ticks, switches, hz = (int(x) for x in open(name + ".cpu").read().split()[:3])
    answered = max(1, load(name)["answered"])
    return ticks * 1e6 / hz / answered, switches / answered
def kernel_us(name):
    """The kernel's share (stime) of the server's CPU per answered request."""
    fields = open(name + ".cpu").read().split()
    return int(fields[3]) * 1e6 / int(fields[2]) / max(1, load(name)["answered"])
sign, sat, half, peer, tncr = (load(n) for n in ("sign", "sks_saturation", "sks_half_rate", "peer", "tncr"))
rows = []
def rate(what, value, unit="/s"):
    rows.append((what, f"{value:,.0f}", "", "", "", unit))
def http(what, name):
    r = load(name)
    l = r["latency_ms"]
    us, cs = cpu(name)
    verified = f", {open(name + '.verified').read().strip()} tokens verified" if os.path.exists(name + ".verified") else ""
    rows.append((what, f"{r['rate_per_s']:,.0f}", f"{l['p50']:.2f}", f"{l['p99']:.2f}", f"{l['p99_9']:.2f}",
                 f"{us:6.1f} us CPU/req ({kernel_us(name):.1f} kernel), {cs:4.2f} cs/req; {r['requests']} req, {r['non_2xx']} non-2xx, {r['errors']} errors{verified}"))
rate("in-process C_Sign, 1 thread", sign["token_sign_1_thread_per_s"])
rate("in-process C_Sign, 2 threads", sign["token_sign_2_threads_per_s"])
rate("in-process PASSporT, 1 thread", sign["passport_sign_1_thread_per_s"])
rate("in-process PASSporT, 2 threads (ceiling)", sign["passport_sign_2_threads_per_s"])
http(f"sks serve POST signing, mTLS, c={connections}", "sks_saturation")
http(f"sks serve, fixed {half['target_rate_per_s']:.0f}/s (half)", "sks_half_rate")
if against:
    http(f"--against, fixed {half['target_rate_per_s']:.0f}/s (the same)", "against_half_rate")
if os.path.exists("floor_r1.json"):
    http(f"sks serve GET /healthz (the floor), c={connections}", "floor_r1")
    http(f"sks serve GET /healthz, fixed {half['target_rate_per_s']:.0f}/s", "floor_half_rate")
http(f"secsipidx sign-csv, TLS no client cert, c={connections}", "peer")
http(f"tn-cr serve GET one chain, c={connections}", "tncr")
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

# The pinned comparison, round by round (A, B, A, B): server CPU per request,
# and the in-process PASSporT's CPU per signature measured in each round.
inproc = [load(f"inproc_r{i}")["passport_sign_cpu_us"] for i in range(1, rounds + 1)]
passport_us = statistics.median(inproc)
series = [("sks", "sks_r"), ("secsipidx", "peer_r")] + ([("against", "against_r")] if against else [])
print()
print(("pinned: servers on core 0, load generator on core 1" if pinned != "0" else "NOT pinned (one core)")
      + f"; in-process PASSporT {passport_us:.1f} us CPU per signature (1 thread, median of the rounds)")
print(f"{'round':6} {'PASSporT us':>11} " + " ".join(f"{n + ' req/s':>16} {n + ' us/req':>16} {'cs/req':>7}" for n, _ in series))
medians = {}
for n, prefix in series:
    medians[n] = statistics.median(cpu(f"{prefix}{i}")[0] for i in range(1, rounds + 1))
for i in range(1, rounds + 1):
    cells = []
    for n, prefix in series:
        us, cs = cpu(f"{prefix}{i}")
        cells.append(f"{load(prefix + str(i))['rate_per_s']:16,.0f} {us:16.1f} {cs:7.2f}")
    print(f"{i:<6} {inproc[i - 1]:11.1f} " + " ".join(cells))
print(f"{'median':6} {passport_us:11.1f} " + " ".join(f"{'':16} {medians[n]:16.1f} {'':7}" for n, _ in series))
print(f"sks CPU/request - in-process PASSporT: {medians['sks'] - passport_us:.1f} us; "
      f"sks / secsipidx CPU per request: {medians['sks'] / medians['secsipidx']:.2f}"
      + (f"; this build / --against: {medians['sks'] / medians['against']:.3f}" if against else ""))
# What a request costs at the fixed rate against at saturation (issue 20:
# wakeups and system calls that batching hides at saturation show here).
fixed = [("sks", "sks_half_rate")] + ([("against", "against_half_rate")] if against else [])
print("CPU per request at the fixed rate / at saturation (median of the rounds): " + "; ".join(
    f"{n} {cpu(name)[0]:.1f} / {medians[n]:.1f} us = {cpu(name)[0] / medians[n]:.2f}, "
    f"{cpu(name)[1]:.2f} cs/req" for n, name in fixed))
# Where sks's CPU per request goes: the in-process PASSporT, the serving
# floor (GET /healthz on the same connections: TLS records, HTTP, the
# access log, the kernel's loopback TCP and wakeups), and the rest (the
# request's JSON, the hop to the signing pool, the bigger answer, and what
# the signature and the serving path cost each other in caches). At the
# fixed rate both rows run at the same rate, so their wakeups compare.
if os.path.exists("floor_r1.json"):
    floor = statistics.median(cpu(f"floor_r{i}")[0] for i in range(1, rounds + 1))
    floor_fixed = cpu("floor_half_rate")[0]
    sks_fixed = cpu("sks_half_rate")[0]
    print(f"serving floor, GET /healthz on the same mutual TLS: {floor:.1f} us/req at saturation "
          f"(median of the rounds: " + ", ".join(f"{cpu(f'floor_r{i}')[0]:.1f}" for i in range(1, rounds + 1))
          + f"), {floor_fixed:.1f} us/req at the fixed rate")
    for what, total, fl in (("saturation", medians["sks"], floor), ("fixed rate", sks_fixed, floor_fixed)):
        print(f"sks at {what}: {total:.1f} us = PASSporT {passport_us:.1f} + floor {fl:.1f} "
              f"+ the rest {total - passport_us - fl:.1f}")
# The gate: sks CPU per request as a ratio to the in-process PASSporT's CPU
# per signature measured in this run, so the machine's speed cancels out.
# The median of the rounds' ratios: each round's sks row against the
# PASSporT measured right after it.
bound, margin = (float(x) for x in open(bound_file).read().split()[:2])
ratio = statistics.median(cpu(f"sks_r{i}")[0] / inproc[i - 1] for i in range(1, rounds + 1))
limit = bound * (1 + margin)
print(f"sks CPU/request / in-process PASSporT CPU: {ratio:.2f} (recorded bound {bound:.2f}, "
      f"fails above {limit:.2f}: {'ok' if ratio <= limit else 'OVER'})")
if smoke == "1":
    print("(smoke run: seconds-long, the figures are not measurements)")
    if ratio > limit:
        print(f"bench: sks CPU per request {medians['sks']:.1f} us is {ratio:.2f} in-process PASSporTs, "
              f"above the bound {bound:.2f} + {margin:.0%} (bench/cpu-bound.txt)", file=sys.stderr)
        sys.exit(1)
PY
echo
signature_check
