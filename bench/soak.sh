#!/usr/bin/env bash
# Soak: `sks serve` signing at 80 % of its saturated rate for a long run,
# with a key rotation (sks rotate steps + SIGHUP) at 30 % of the run and the
# token pulled (HSM fault through sks_faultp11) at 60 % (and once during
# the warm-up, so that RSS is judged against a process that has already
# reconnected once). Passes when:
#   - no transport errors, and every signing answer is 200 or, while the
#     token is down, 503 POL5003 (from the server's /metrics);
#   - zero bad tokens: an independent client signs throughout and checks
#     every token it gets with `sks verify` against the certificate at the
#     token's x5u, and the server's signature check failed none;
#   - the token came back without a restart (a reconnect in /metrics);
#   - RSS grew less than 5 % after warm-up (the first 20 % of the run) and
#     the open file descriptors stayed flat (within 4).
#
#   bench/soak.sh [--seconds S] [--build-dir DIR] [--connections C]
#
# --seconds: the loaded run (default 600); `--seconds 60` is the CI smoke
# run. --build-dir: a tree already configured (default: a Release build in
# build-bench/, as bench/run.sh). Everything runs in a temporary folder on
# 127.0.0.1 with ports chosen by the kernel, and is stopped at the end.
# Exit 0 on pass, 1 on any failed condition (the reason on stderr).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
BUILD=$ROOT/build-bench
RUN_SECONDS=600
CONNECTIONS=8
USAGE="[--seconds S] [--build-dir DIR] [--connections C]"
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) RUN_SECONDS=${2:-}; shift 2 || usage ;;
    --build-dir) BUILD=$(cd "${2:-}" && pwd); shift 2 || usage ;;
    --connections) CONNECTIONS=${2:-}; shift 2 || usage ;;
    *) usage ;;
  esac
done
[[ "$RUN_SECONDS" =~ ^[0-9]+$ ]] && [ "$RUN_SECONDS" -ge 30 ] || {
  echo "--seconds must be a whole number, 30 or more" >&2
  exit 64
}
for tool in curl python3 openssl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (scripts/dev.sh installs it)" >&2; exit 69; }
done
bench_checks soak

bench_configure "$BUILD"
cmake --build "$BUILD" --parallel "$(nproc)" \
  --target sks tn-cr sti-dev-ca stir_loadgen sks_faultp11 >/dev/null
SKS=$BUILD/sks/sks
TNCR=$BUILD/tn-cr/tn-cr
CA=$BUILD/dev-pki/sti-dev-ca
LOADGEN=$BUILD/bench/stir_loadgen
FAULTP11=$BUILD/sks/libsks_faultp11.so

bench_workdir stir-soak

log "set-up in $WORK: TLS, token behind sks_faultp11, test STI PKI, TN-CR, rotation"
bench_tls_and_tncr
TOKEN_CONFIG=$("$SKS" init --dir "$WORK/token")
"$CA" init --config "$TOKEN_CONFIG" --dir pki --crl-url https://127.0.0.1/crl/soak.crl >/dev/null
bench_start tncr "$TNCR" serve --config tn-cr.toml
TNCR_URL=$URL

# The token through the fault module; FAULTS is its control file.
FAULTS=$WORK/faults.conf
set_faults() {
  printf '%s\n' "$1" >"$FAULTS.new"
  mv "$FAULTS.new" "$FAULTS"
}
set_faults "# no faults"
export SKS_CONFIG=$WORK/token/soak.toml
sed -e "s|^module = .*|module = \"$FAULTP11\"|" "$TOKEN_CONFIG" >"$SKS_CONFIG"
{ cat <<TOML
FAULTP11_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
FAULTP11_CONFIG = "$FAULTS"

TOML
  bench_sks_rotation_toml
  cat <<TOML

[[profile]]
name = "soak"
origid = "123e4567-e89b-12d3-a456-426655440000"
attest = ["A"]
clients = ["demo-sbc.example.net"]
TOML
  bench_profile_rotation_toml "/C=US/O=SKS Soak"
} >>"$SKS_CONFIG"
bench_start_rotating_sks
SIGNING_URL=$URL

MTLS=(--cacert "$TLS/ca.pem" --cert "$TLS/client.pem" --key "$TLS/client.key")
BASE=${SIGNING_URL%/stir/v1/signing}
printf '{"signingRequest":{"attest":"A","dest":{"tn":["12155550131"]},"orig":{"tn":"12155550121"}}}' >sign.json
metrics() { curl -sS "${MTLS[@]}" "$BASE/metrics"; }
readyz() { curl -s -o /dev/null -w '%{http_code}' "${MTLS[@]}" "$BASE/readyz"; }
# metric NAME_WITH_LABELS: its value, 0 when absent.
metric() { metrics | awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'; }

log "saturated rate (5 s, $CONNECTIONS connections)"
"$LOADGEN" --json -c "$CONNECTIONS" -d 5 --warmup 1 "${MTLS[@]}" -X POST \
  -H 'Content-Type: application/json' --body-file sign.json --expect-substring '"identity"' \
  "$SIGNING_URL" >saturation.json || die "the saturation run had failures: $(cat saturation.json)"
SATURATED=$(python3 -c 'import json; print(round(json.load(open("saturation.json"))["rate_per_s"]))')
RATE=$((SATURATED * 8 / 10))
[ "$RATE" -gt 0 ] || die "zero saturated rate"
log "saturated at $SATURATED/s; soaking $RUN_SECONDS s at $RATE/s"

# The load; non-2xx answers (503 while the token is down) are judged from
# the server's metrics below, so its exit status is not.
"$LOADGEN" --json -c "$CONNECTIONS" -d "$RUN_SECONDS" --warmup 0 --rate "$RATE" "${MTLS[@]}" \
  -X POST -H 'Content-Type: application/json' --body-file sign.json \
  --expect-substring '"identity"' "$SIGNING_URL" >soak.json 2>soak-loadgen.log &
load_pid=$!
bench_pids+=("$load_pid")
START=$SECONDS

# The independent checker: signs 20 at a time over one keep-alive
# connection (a new TLS session per token would grow the server's session
# cache, not measure a leak), fetches each x5u's chain once, `sks verify`.
checker() {
  local checked=0 bad=0 identity x5u chain urls=()
  for _ in $(seq 20); do urls+=("$SIGNING_URL"); done
  while [ ! -e stop-checker ]; do
    curl -s "${MTLS[@]}" -H 'Content-Type: application/json' --data @sign.json -w '\n' \
      "${urls[@]}" >batch.txt || true
    while read -r identity; do
      x5u=$(printf '%s' "$identity" | sed -n 's/.*;info=<\([^>]*\)>.*/\1/p')
      chain=chain-$(printf '%s' "$x5u" | sha256sum | cut -c1-16).pem
      [ -s "$chain" ] || curl -sS --fail --cacert "$TLS/ca.pem" -o "$chain" "$x5u"
      checked=$((checked + 1))
      if ! "$SKS" verify --identity "$identity" --cert "$chain" >/dev/null 2>>checker.log; then
        bad=$((bad + 1))
        echo "bad token: $identity" >>checker.log
      fi
    done < <(sed -n 's/.*"identity":"\([^"]*\)".*/\1/p' batch.txt) # 503s have none
  done
  echo "$checked $bad" >checker.result
}
checker &
checker_pid=$!
bench_pids+=("$checker_pid")

# One sample per second: seconds since start, RSS (KiB), open descriptors.
sampler() {
  while kill -0 "$load_pid" 2>/dev/null; do
    printf '%s %s %s\n' $((SECONDS - START)) \
      "$(awk '/^VmRSS:/ { print $2 }' "/proc/$sks_pid/status")" \
      "$(find "/proc/$sks_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)" >>samples.txt
    sleep 1
  done
}
sampler &
bench_pids+=($!)

at() { # at FRACTION: waits until that part of the run has passed
  local when
  when=$(python3 -c "print(int($RUN_SECONDS * $1))")
  while [ $((SECONDS - START)) -lt "$when" ]; do sleep 0.5; done
}

# pull_token: the HSM fault. The token answers CKR_DEVICE_REMOVED for
# FAULT_SECONDS; /readyz must fail meanwhile and pass again after.
FAULT_SECONDS=$((RUN_SECONDS / 60 > 3 ? RUN_SECONDS / 60 : 3))
not_ready() { [ "$(readyz)" = 503 ]; }
ready() { [ "$(readyz)" = 200 ]; }
pull_token() {
  log "HSM fault: token pulled (CKR_DEVICE_REMOVED) for $FAULT_SECONDS s"
  set_faults "pulled = CKR_DEVICE_REMOVED"
  until_true 30 not_ready || fail "/readyz did not fail while the token was pulled"
  local pulled_at=$SECONDS
  while [ $((SECONDS - pulled_at)) -lt "$FAULT_SECONDS" ]; do sleep 0.5; done
  set_faults "# token back"
  until_true 60 ready || fail "the service did not recover after the token came back"
  log "token back; ready again"
}

# Warm-up (the first 20 %) walks every path once, a reconnect included:
# SoftHSM's first C_Finalize/C_Initialize cycle keeps ~0.7 MiB of heap.
at 0.05
pull_token

at 0.3
log "rotation: sks rotate start, sks rotate run (issue, publish, activate), SIGHUP"
OLD_KEY=$(metrics | sed -n 's/^sks_profile_active_key{profile="soak",key="\([^"]*\)".*/\1/p')
"$SKS" rotate start >rotate-start.log 2>&1 || die "sks rotate start failed"
"$SKS" rotate run >rotate-run.log 2>&1 || die "sks rotate run failed"
kill -HUP "$sks_pid"
new_key_active() {
  local key
  key=$(metrics | sed -n 's/^sks_profile_active_key{profile="soak",key="\([^"]*\)".* 1$/\1/p')
  [ -n "$key" ] && [ "$key" != "$OLD_KEY" ]
}
until_true 60 new_key_active || fail "the server did not switch to the new key after SIGHUP"
log "rotation done: $OLD_KEY -> $(metrics | sed -n 's/^sks_profile_active_key{profile="soak",key="\([^"]*\)".*/\1/p')"

at 0.6
pull_token
wait "$load_pid" || true
touch stop-checker
wait "$checker_pid" || true
ps -o pid= -p "$sks_pid" >/dev/null || die "sks serve is gone"

metrics >final-metrics.txt
python3 - "$RUN_SECONDS" "$RATE" "$SATURATED" <<'PY' || FAILED=1
import json, sys, re
run_seconds, rate, saturated = (int(a) for a in sys.argv[1:])
metrics = open("final-metrics.txt").read()
def metric(name):
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0
load = json.load(open("soak.json"))
checked, bad = (int(x) for x in open("checker.result").read().split())
samples = [tuple(int(x) for x in l.split()) for l in open("samples.txt") if len(l.split()) == 3]
warm = [s for s in samples if s[0] <= run_seconds * 0.2]
late = [s for s in samples if s[0] >= run_seconds * 0.9]
codes = {}
for line in metrics.splitlines():
    m = re.match(r'sks_requests_total\{route="signing",code="(\d+)",outcome="([^"]+)"\} (\d+)', line)
    if m:
        codes[(m.group(1), m.group(2))] = int(m.group(3))
rss_base, fd_base = warm[-1][1], warm[-1][2]
rss_end = sorted(s[1] for s in late)[len(late) // 2]
fd_end = max(s[2] for s in late)
growth = (rss_end - rss_base) / rss_base * 100
checks = [
    ("load: requests at the fixed rate", f"{load['requests']} ({load['rate_per_s']:.0f}/s of {rate}/s, saturated {saturated}/s)", load["requests"] > 0),
    ("load: transport errors", load["errors"], load["errors"] == 0),
    ("signing answers other than 200 and 503 POL5003", {f"{c} {o}": n for (c, o), n in codes.items() if (c, o) not in (("200", "ok"), ("503", "POL5003"))} or 0,
     all((c, o) in (("200", "ok"), ("503", "POL5003")) for (c, o) in codes)),
    ("503 POL5003 while the token was down", codes.get(("503", "POL5003"), 0), codes.get(("503", "POL5003"), 0) > 0),
    ("tokens checked with sks verify / bad", f"{checked} / {bad}", checked > 0 and bad == 0),
    ("server signature check failures", metric('sks_signature_check_failures_total{reason="length"}') + metric('sks_signature_check_failures_total{reason="verify"}'),
     metric('sks_signature_check_failures_total{reason="length"}') + metric('sks_signature_check_failures_total{reason="verify"}') == 0),
    ("token reconnects (ok)", metric('sks_token_reconnects_total{result="ok"}'), metric('sks_token_reconnects_total{result="ok"}') >= 2),
    ("key ring reloads (ok)", metric('sks_keyring_reloads_total{result="ok"}'), metric('sks_keyring_reloads_total{result="ok"}') >= 1),
    ("RSS after warm-up -> end (KiB), growth", f"{rss_base} -> {rss_end}, {growth:+.1f} %", growth < 5),
    ("open descriptors after warm-up -> end", f"{fd_base} -> {fd_end}", fd_end <= fd_base + 4),
]
profile = " ".join(f"{p}%:{min(samples, key=lambda s: abs(s[0] - run_seconds * p / 100))[1]}"
                   for p in (10, 20, 30, 40, 50, 60, 70, 80, 90, 100))
print(f"{'RSS (KiB) through the run':50} {profile}")
ok = True
for what, value, passed in checks:
    print(f"{what:50} {str(value):40} {'ok' if passed else 'FAILED'}")
    ok = ok and passed
sys.exit(0 if ok else 1)
PY
[ "$FAILED" = 0 ] || die "see above"
log "passed"
