#!/usr/bin/env bash
# Instructions per signing request: `sks serve` run under Valgrind's
# callgrind on a fresh SoftHSM2 token, mutual TLS, `stir_loadgen` with 8
# keep-alive connections. The count of instructions a request executes in
# user space does not move with the neighbours' load or the VM's clock,
# which on a shared 2-core machine move CPU per request by 10-40 % between
# rounds (bench/README.md, "Instructions per request"), so a change of 1-2 %
# shows here and nowhere else. What it does not count: the kernel (loopback
# TCP, epoll, futexes), cache misses and waits; those stay bench/run.sh's.
#
#   bench/instructions.sh [--build-dir DIR] [--seconds S] [--no-build] [--against SKS_BINARY]
#
# Each server gets two measured windows of load, S and 3 x S seconds of
# wall clock (under callgrind a request costs about 50 times its time), with
# the counters zeroed before and dumped after each. Each window opens its 8
# connections (8 TLS handshakes) and may leave up to 8 requests in flight
# at its end; the difference of the two windows divided by the difference
# of their answered requests cancels both, so the figures are per request
# at steady state:
#
#   Ir/request            every instruction of the process (all threads)
#   PASSporT              stir::sign_passport + compose_identity_header:
#                         what bench/run.sh's in-process PASSporT row signs
#   the token             inside it, the token's signature: SoftHSM2's
#                         C_SignInit (it decrypts the key and makes its EC
#                         group again for every signature; PKCS#11 wants a
#                         C_SignInit before each C_Sign) and C_Sign (ECDSA)
#   over PASSporT         Ir/request - PASSporT: the serving path
#   and the serving path by part: TLS records (SSL_read, SSL_write), the
#   request's JSON, the response written (its TLS record and the access
#   log line included: the write usually completes at once), the access
#   log line.
#
# Needs valgrind (apt-get install valgrind; not installed by scripts/dev.sh:
# a tool for whoever works on the serving path's cost).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
BUILD=$ROOT/build-bench
SECONDS_EACH=4
NO_BUILD=0
AGAINST=
USAGE="[--build-dir DIR] [--seconds S] [--no-build] [--against SKS_BINARY]"
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) BUILD=$(cd "${2:-}" && pwd); shift 2 || usage ;;
    --seconds) SECONDS_EACH=${2:-}; shift 2 || usage ;;
    --no-build) NO_BUILD=1; shift ;;
    --against) AGAINST=$(realpath "${2:-}") || usage; shift 2 ;;
    *) usage ;;
  esac
done
for tool in valgrind callgrind_control callgrind_annotate python3 openssl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install valgrind)" >&2; exit 69; }
done
log() { printf '== %s\n' "$*" >&2; }
die() {
  echo "instructions: $*" >&2
  bench_logs
  exit 1
}

bench_configure "$BUILD"
if [ "$NO_BUILD" = 0 ]; then
  cmake --build "$BUILD" --parallel "$(nproc)" --target sks sti-dev-ca stir_loadgen >/dev/null
fi
SKS=${SKS_BINARY:-$BUILD/sks/sks}
LOADGEN=$BUILD/bench/stir_loadgen

bench_workdir stir-instructions
log "set-up in $WORK: TLS CA, server and client certificates; token; test STI PKI"
bench_tls_and_tncr
bench_token_and_chain
# The x5u is only written into each PASSporT here, never fetched.
bench_serve_config "https://127.0.0.1/bench.pem"
printf '{"signingRequest":{"attest":"A","dest":{"tn":["12155550131"]},"orig":{"tn":"12155550121"}}}' >sks.json
# Under callgrind a TLS handshake takes about a second, and 8 come at once.
LOAD=("$LOADGEN" --json -c 8 --warmup 0 --timeout 60 --cacert "$TLS/ca.pem" --cert "$TLS/client.pem"
  --key "$TLS/client.key" -X POST -H 'Content-Type: application/json' -H 'Accept: application/json'
  --body-file sks.json --expect-substring '"identity"')

# measure NAME BINARY: the two windows of one server; NAME.{short,long}.{json,out}.
measure() {
  local name=$1 binary=$2 pid
  log "$name: $binary under callgrind"
  bench_start "$name" valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.cg.%p" \
    "$binary" serve --config "$SERVE_CONFIG"
  pid=$(eval echo "\$${name}_pid")
  # Warm-up: the first TLS sessions, the heap, the token's session pool.
  "${LOAD[@]}" -d "$SECONDS_EACH" "$URL" >/dev/null || die "$name: the warm-up load failed"
  local window seconds
  for window in short long; do
    seconds=$SECONDS_EACH
    [ "$window" = long ] && seconds=$((SECONDS_EACH * 3))
    callgrind_control -z "$pid" >/dev/null
    "${LOAD[@]}" -d "$seconds" "$URL" >"$name.$window.json" || die "$name: $window window: failed requests"
    # The requests still in flight end (each window leaves the same few).
    sleep 1
    callgrind_control -d "$pid" >/dev/null
    until_true 30 sh -c "ls '$WORK/$name.cg.$pid'.* >/dev/null 2>&1 && [ \$(ls '$WORK/$name.cg.$pid'.* | wc -l) -ge \$1 ]" _ \
      "$([ "$window" = short ] && echo 1 || echo 2)" || die "$name: no callgrind dump"
  done
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  local i=1
  for window in short long; do
    callgrind_annotate --inclusive=yes --threshold=100 "$WORK/$name.cg.$pid.$i" >"$name.$window.out" 2>/dev/null
    i=$((i + 1))
  done
}

measure sks "$SKS"
[ -z "$AGAINST" ] || measure against "$AGAINST"

python3 - "$WORK" "$SKS" "${AGAINST:-}" <<'PY'
import json, re, sys
work, this, other = sys.argv[1], sys.argv[2], sys.argv[3]

# Parts by the function whose inclusive count is the part (callgrind's
# "file:function" names; the first match of each pattern, largest first).
PARTS = [
    ("PASSporT (sign_passport + Identity header)", [r"stir::sign_passport\[", r"stir::compose_identity_header\["]),
    ("  the token (C_SignInit + C_Sign)", [r"sign_once\("]),
    ("    SoftHSM2 C_SignInit (the key made ready, every signature)", [r"\?\?\?:C_SignInit \["]),
    ("      its EC group (EC_GROUP_new_by_curve_name)", [r"\?\?\?:EC_GROUP_new_by_curve_name \["]),
    ("    SoftHSM2 C_Sign (the ECDSA signature)", [r"\?\?\?:C_Sign \["]),
    ("TLS read (SSL_read)", [r"\?\?\?:SSL_read \["]),
    ("TLS write (SSL_write)", [r"\?\?\?:SSL_write \["]),
    ("request JSON (read_signing_request; parse_json_input before)",
     [r"sks::server::read_signing_request\(", r"stir::parse_json_input\("]),
    ("response written (its TLS record and the access log included)", [r"Session<.*>::write\(stir::http::Response"]),
    ("access log line (log_access)", [r"ApiServer::log_access\("]),
]

def inclusive(path):
    rows = []
    for line in open(path):
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)", line)
        if m:
            rows.append((int(m.group(1).replace(",", "")), m.group(2)))
    return rows

def total(rows):
    for ir, name in rows:
        if name.startswith("PROGRAM TOTALS"):
            return ir
    return 0

def part(rows, patterns):
    ir = 0
    for p in patterns:
        hits = [r for r in rows if re.search(p, r[1])]
        if hits:
            ir += max(hits)[0]
    return ir

def figures(name):
    answered = {w: json.load(open(f"{work}/{name}.{w}.json"))["answered"] for w in ("short", "long")}
    rows = {w: inclusive(f"{work}/{name}.{w}.out") for w in ("short", "long")}
    n = answered["long"] - answered["short"]
    if n <= 0:
        sys.exit("instructions: the long window answered no more requests than the short one")
    per = lambda f: (f(rows["long"]) - f(rows["short"])) / n
    out = {"requests": (answered["short"], answered["long"]), "Ir/request": per(total)}
    for label, patterns in PARTS:
        out[label] = per(lambda r: part(r, patterns))
    out["over PASSporT"] = out["Ir/request"] - out[PARTS[0][0]]
    return out

names = [("sks", this)] + ([("against", other)] if other else [])
results = {n: figures(n) for n, _ in names}
labels = [PARTS[i][0] for i in range(5)]
labels = ["Ir/request"] + labels + ["over PASSporT"] + [l for l, _ in PARTS[5:]]
head = "%-64s" % "instructions per signing request (callgrind, steady state)"
head += "".join("%14s" % n for n, _ in names) + ("%10s" % "ratio" if other else "")
print(head)
for label in labels:
    line = "%-64s" % label + "".join("%14s" % f"{results[n][label]:,.0f}" for n, _ in names)
    if other and results["against"][label]:
        line += "%10.3f" % (results["sks"][label] / results["against"][label])
    print(line)
for n, binary in names:
    s, l = results[n]["requests"]
    print(f"{n}: {binary}; windows answered {s} and {l} requests")
PY
