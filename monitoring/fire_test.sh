#!/usr/bin/env bash
# monitoring/fire_test.sh BUILD_DIR: every alert of sks.rules.yml is caused
# for real and seen firing in a real Prometheus (Debian's prometheus), read
# from its HTTP API (/api/v1/alerts, through prometheus.sh), polled with a
# deadline. On 127.0.0.1, ephemeral ports only, in a temporary folder:
#
#   tn-cr serve      the TN-CR, /metrics for the scrape identity
#   sks serve  A     signing; token through sks_faultp11 (faults on command),
#                    signature_check = "always", audit log on /dev/full
#   sks serve  B     signing and verification, the same token directly; a
#                    second rotation profile that never got a key
#   prometheus       scrapes A and B (job sks: their [metrics] listeners,
#                    mutual TLS, the scrape identity alone) and the TN-CR
#                    (job tn-cr) every second, evaluates the rules every second
#
# Each instance keeps its own copy of the rotation state, as on separate
# hosts; the STI-CA is sti-dev-ca, whose certificates here live 2 days.
#
# The rules are the shipped ones with every `for:` cut to 0s (prometheus.sh
# rewrites its copy in the temporary folder; CI cannot wait 15 minutes);
# expressions, labels and annotations are unchanged. What each alert needs,
# and how it is caused (monitoring/RUNBOOK.md says the same per alert):
#
#   SksCertificateRenewalOverdue,  A and B sign with a 2-day certificate
#   SksCertificateExpiringSoon     (issue_command --days 2)
#   SksProfileWithoutKey           B's profile "unrotated" has no key yet
#   SksInstancesDisagreeOnKey      `sks rotate start --reuse-key` + `run` on A's
#                                  state copy (A reloads); B's copy is not
#                                  adopted: B is behind the rotation state
#   SksReloadFailed                B's config broken, SIGHUP to B
#   SksAuditRecordsDropped         A's audit file is /dev/full (ENOSPC)
#   SksSignatureCheckFailures      faultp11 corrupt_every = 1 on A
#   SksSigningErrorRatio           the 500s of those checks (5, then 60)
#   SksTokenFlapping               faultp11 pulled, four times (breaker trips)
#   SksTokenBreakerOpen            faultp11 pulled, left pulled
#   SksX5uFetchFailures            8 verifications on B of tokens whose x5u
#                                  the TN-CR answers 404
#   TnCrFetchedChainExpiring       the 2-day chain fetched from the TN-CR
#   TnCrInvalidChain               a file that is no chain in the folder
#   TnCrServingErrors              a file over 64 KiB in the folder, fetched
#   SksInstanceDown, TnCrDown      B and the TN-CR stopped (SIGTERM)
#
# At the end every alert in sks.rules.yml must have been seen firing.
# Exit 0 when all fired; 1 with the alert that did not, and the logs.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 64; }
BUILD=$(cd "$1" && pwd)
SKS=$BUILD/sks/sks
TNCR=$BUILD/tn-cr/tn-cr
CA=$BUILD/dev-pki/sti-dev-ca
FAULTP11=$BUILD/sks/libsks_faultp11.so
for f in "$SKS" "$TNCR" "$CA" "$FAULTP11"; do
  [ -e "$f" ] || { echo "fire_test.sh: $f is missing (build sks tn-cr sti-dev-ca sks_faultp11)" >&2; exit 66; }
done
command -v prometheus >/dev/null || { echo "fire_test.sh: prometheus not found (apt-get install prometheus)" >&2; exit 69; }

die() { printf 'fire_test.sh: FAIL: %s\n' "$*" >&2; exit 1; }
fail() { die "$@"; }
# bench_workdir, bench_start (sets URL and NAME_pid), bench_tls_and_tncr,
# bench_logs: the set-up bench/run.sh and bench/soak.sh use.
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_workdir sks-fire
cleanup() {
  local rc=$?
  "$HERE/prometheus.sh" stop "$WORK/prom" 2>/dev/null || true
  if [ "$rc" -ne 0 ]; then
    bench_logs
    tail -n 15 "$WORK/prom/prometheus.log" >&2 2>/dev/null || true
  fi
  bench_cleanup
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Set by bench_start.
sksb_pid=''
tncr_pid=''
T0=$SECONDS
log() { printf '== fire_test %3ds: %s\n' $((SECONDS - T0)) "$*" >&2; }

# until_true SECONDS WHAT CMD...: polls CMD every 0.2 s until it succeeds.
until_true() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "after $1 s: $what"
    sleep 0.2
  done
}

# ---- set-up: TLS, token, test STI PKI, TN-CR, two sks instances, Prometheus
log "set-up in $WORK"
bench_tls_and_tncr 2>/dev/null
# The scrape identity is the dev client certificate (CN demo-sbc.example.net).
SCRAPER=demo-sbc.example.net
MTLS=(--cacert "$TLS/ca.pem" --cert "$TLS/client.pem" --key "$TLS/client.key")
cat >>tn-cr.toml <<TOML
threads = 1
client_ca = "$TLS/ca.pem"
metrics_clients = ["$SCRAPER"]
TOML
bench_start tncr "$TNCR" serve --config tn-cr.toml
TNCR_URL=$URL
TNCR_HOST=${TNCR_URL#https://}
TNCR_HOST=${TNCR_HOST%/}

TOKEN_CONFIG=$("$SKS" init --dir "$WORK/token")
"$CA" init --config "$TOKEN_CONFIG" --dir pki --crl-url "${TNCR_URL}crl/fire.crl" >/dev/null

FAULTS=$WORK/faults.conf
set_faults() {
  printf '%s\n' "$1" >"$FAULTS.new"
  mv "$FAULTS.new" "$FAULTS"
}
set_faults "# no faults"

# What both instances share: the signing profile and its rotation. Each
# keeps its own copy of the rotation state (STATE_DIR), as instances on
# separate hosts do; `sks rotate run` tells the server beside its state to
# reload (server-status.json there names it).
common() { # STATE_DIR
  cat <<TOML

[rotation]
state_file = "$1/state.json"
issue_command = ["$CA", "issue", "--config", "$TOKEN_CONFIG", "--dir", "$WORK/pki", "--csr", "{csr}", "--out", "{chain}", "--days", "2"]
publish_command = ["$TNCR", "publish", "--dir", "$WORK/cr", "--chain", "{chain}", "--name", "{name}"]
unpublish_command = ["$TNCR", "unpublish", "{name}", "--yes", "--dir", "$WORK/cr"]
x5u_ca_file = "$TLS/ca.pem"
TOML
  profile shaken 0 demo-sbc.example.net 1234 ', renew_before_days = 1'
}
profile() { # NAME ORIGID-DIGIT CLIENT SPC [MORE-ROTATION-KEYS]
  printf '\n[[profile]]\nname = "%s"\norigid = "123e4567-e89b-12d3-a456-42665544000%s"\n' "$1" "$2"
  printf 'attest = ["A"]\nclients = ["%s"]\n' "$3"
  printf 'rotation = { x5u_base = "%s", spc = "%s", subject = "/C=US/O=SKS Fire %s"%s }\n' \
    "$TNCR_URL" "$4" "$1" "${5:-}"
}
server() { # port roles...
  cat <<TOML

[server]
listen = "127.0.0.1"
port = 0
threads = 1
tls_cert = "$TLS/server.pem"
tls_key = "$TLS/server.key"
client_ca = "$TLS/ca.pem"
roles = [$1]

[metrics]
listen = "127.0.0.1"
port = 0
tls_cert = "$TLS/server.pem"
tls_key = "$TLS/server.key"
client_ca = "$TLS/ca.pem"
clients = ["$SCRAPER"]
TOML
}

# A: the token through sks_faultp11; every signature checked; audit on a
# device where every write fails with ENOSPC (a full disk).
sed -e "s|^module = .*|module = \"$FAULTP11\"|" \
  -e "s|^sessions = .*|sessions = 2\nsignature_check = \"always\"|" "$TOKEN_CONFIG" >a.toml
cat >>a.toml <<TOML
FAULTP11_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
FAULTP11_CONFIG = "$FAULTS"
TOML
{ server '"signing"'; common "$WORK/rotation-a"; cat <<TOML

[audit]
file = "/dev/full"
TOML
} >>a.toml

# B: the token directly; signing and verification; a second profile that
# never had a key (its first rotation never ran).
sed -e "s|^sessions = .*|sessions = 2|" "$TOKEN_CONFIG" >b.toml
{ server '"signing", "verification"'; common "$WORK/rotation-b"
  profile unrotated 1 other-sbc.example.net 5678; cat <<TOML

[verifier]
trust_anchors = "$WORK/pki/root.pem"
tls_ca_file = "$TLS/ca.pem"
allow_loopback = true
allowed_ports = [${TNCR_HOST##*:}]
TOML
} >>b.toml
chmod 600 a.toml b.toml

log "first key of profile shaken: sks rotate run (issue, 2-day certificate, publish, activate)"
"$SKS" rotate run --config a.toml --profile shaken >rotate-first.log 2>&1 || { cat rotate-first.log >&2; fail "sks rotate run"; }
cp -a rotation-a rotation-b
# metrics_base NAME: the base URL of the "metrics on" line of NAME's
# `sks serve` (printed just after its "listening on" line).
metrics_base() {
  local url=''
  for _ in $(seq 100); do
    url=$(sed -n 's|^metrics on \(.*\)/metrics$|\1|p' "$1.out")
    [ -n "$url" ] && { echo "$url"; return; }
    sleep 0.05
  done
  fail "$1 printed no 'metrics on' line"
}
# *_BASE: the signing listener; *_METRICS and *_HOST (Prometheus's instance
# label): the metrics listener.
bench_start sksa "$SKS" serve --config a.toml
A_BASE=${URL%/stir/v1/signing}
A_METRICS=$(metrics_base sksa)
A_HOST=${A_METRICS#https://}
bench_start sksb "$SKS" serve --config b.toml
B_BASE=${URL%/stir/v1/signing}
B_METRICS=$(metrics_base sksb)
B_HOST=${B_METRICS#https://}
log "tn-cr $TNCR_HOST, sks A ${A_BASE#https://} (metrics $A_HOST), sks B ${B_BASE#https://} (metrics $B_HOST)"
code=$(curl -s -o /dev/null -w '%{http_code}' "${MTLS[@]}" "$A_BASE/metrics")
[ "$code" = 404 ] || fail "A's signing port answered /metrics $code, not 404"

PROM=$HERE/prometheus.sh
"$PROM" start "$WORK/prom" "$TLS/ca.pem" "$TLS/client.pem" "$TLS/client.key" \
  "$A_HOST" "$B_HOST" "tn-cr=$TNCR_HOST" >&2 || fail "Prometheus does not scrape A, B and the TN-CR"

declare -A SEEN=()
# firing NAME INSTANCE [SECONDS]: waits until Prometheus has NAME firing for
# INSTANCE ("*": any, for alerts aggregated over instances).
firing() {
  "$PROM" alert "$WORK/prom" "$1" "$2" firing "${3:-30}" >&2 || fail "$1 for $2 never fired"
  SEEN[$1]=1
}

metrics() { curl -sS "${MTLS[@]}" "$1/metrics"; }
printf '{"signingRequest":{"attest":"A","dest":{"tn":["12155550131"]},"orig":{"tn":"12155550121"}}}' >sign.json
# sign BASE N: N signing requests over one connection; prints the status codes.
sign() {
  local urls=() i
  for i in $(seq "$2"); do urls+=("$1/stir/v1/signing" -o /dev/null); done
  curl -s "${MTLS[@]}" -H 'Content-Type: application/json' --data @sign.json \
    -w '%{http_code}\n' "${urls[@]}" || true
}

# ---- what the set-up already shows
log "certificates 2 days from expiry; B's profile unrotated has no key"
firing SksCertificateRenewalOverdue "$A_HOST"
firing SksCertificateExpiringSoon "$A_HOST"
firing SksProfileWithoutKey "$B_HOST"

log "a verifier fetches the 2-day chain from the TN-CR"
X5U=$(metrics "$A_METRICS" | sed -n 's/^sks_profile_active_key{profile="shaken",key="[^"]*",x5u="\([^"]*\)"} 1$/\1/p')
[ -n "$X5U" ] || fail "A exports no active key for profile shaken"
curl -sS --fail --cacert "$TLS/ca.pem" -o /dev/null "$X5U" || fail "cannot fetch $X5U"
firing TnCrFetchedChainExpiring "$TNCR_HOST"

# ---- A signs; every audit record fails (/dev/full)
log "A signs 5 requests: its audit file is full"
[ "$(sign "$A_BASE" 5 | sort -u)" = 200 ] || fail "A does not sign"
firing SksAuditRecordsDropped "$A_HOST"

# ---- an instance behind the rotation state
log "renewal on A's state (sks rotate start --reuse-key, run): A reloads, B keeps the old state"
OLD_X5U=$X5U
"$SKS" rotate start --config a.toml --profile shaken --reuse-key >rotate-start.log 2>&1 || { cat rotate-start.log >&2; fail "sks rotate start"; }
"$SKS" rotate run --config a.toml --profile shaken >rotate-run.log 2>&1 || { cat rotate-run.log >&2; fail "sks rotate run"; }
a_moved_on() {
  local x5u
  x5u=$(metrics "$A_METRICS" | sed -n 's/^sks_profile_active_key{profile="shaken",key="[^"]*",x5u="\([^"]*\)"} 1$/\1/p')
  [ -n "$x5u" ] && [ "$x5u" != "$OLD_X5U" ]
}
until_true 30 "A does not sign with the renewed certificate after SIGHUP" a_moved_on
firing SksInstancesDisagreeOnKey '*'

# ---- a reload that fails
log "B's config broken, SIGHUP to B"
cp b.toml b.toml.good
echo 'this is = not toml [' >>b.toml
kill -HUP "$sksb_pid"
firing SksReloadFailed "$B_HOST"
cp b.toml.good b.toml

# ---- bad signatures from the token
log "faultp11 corrupt_every = 1 on A: 5 signing requests"
set_faults "corrupt_every = 1"
codes=$(sign "$A_BASE" 5 | sort | uniq -c | tr -s ' \n' ' ')
log "A answered:$codes"
firing SksSignatureCheckFailures "$A_HOST"
# rate() counts no increase into a series' first sample: the code="500"
# series appeared with the 5 above (and Prometheus has scraped it, or the
# alert above could not fire); the burst below is what the ratio sees.
log "60 more: 5xx over 0.1/s in the 5-minute rate"
codes=$(sign "$A_BASE" 60 | sort | uniq -c | tr -s ' \n' ' ')
log "A answered:$codes"
firing SksSigningErrorRatio "$A_HOST"
set_faults "# no faults"

# ---- the token goes away: four times, then for good
readyz() { [ "$(curl -s -o /dev/null -w '%{http_code}' "${MTLS[@]}" "$A_BASE/readyz")" = "$1" ]; }
for i in 1 2 3 4; do
  set_faults "pulled = CKR_TOKEN_NOT_PRESENT"
  until_true 30 "A's /readyz does not fail with the token pulled ($i)" readyz 503
  [ "$i" -lt 4 ] || break
  set_faults "# no faults"
  until_true 30 "A's /readyz does not come back ($i)" readyz 200
done
log "token pulled 4 times on A (breaker trips: $(metrics "$A_METRICS" | sed -n 's/^sks_token_breaker_trips_total //p'))"
firing SksTokenFlapping "$A_HOST"
firing SksTokenBreakerOpen "$A_HOST"

# ---- verification: x5u the TN-CR does not serve
log "B verifies 8 tokens whose x5u answer 404"
KEY=$(metrics "$A_METRICS" | sed -n 's/^sks_profile_active_key{profile="shaken",key="\([^"]*\)".* 1$/\1/p')
for i in $(seq 8); do
  identity=$("$SKS" sign --config "$TOKEN_CONFIG" --label "$KEY" --x5u "${TNCR_URL}missing-$i.pem" \
    --orig 12155550121 --dest 12155550131 --attest A)
  printf '{"verificationRequest":{"from":{"tn":"12155550121"},"to":{"tn":["12155550131"]},"time":%s,"identity":"%s"}}' \
    "$(date +%s)" "$identity" >verify.json
  curl -sS "${MTLS[@]}" -H 'Content-Type: application/json' --data @verify.json \
    "$B_BASE/stir/v1/verification" >verify.out || fail "verification request $i"
done
log "last answer: $(head -c 300 verify.out)"
firing SksX5uFetchFailures "$B_HOST"

# ---- the TN-CR: a file that is no chain, and one too large to serve
log "TN-CR: garbage.pem (no chain) and huge.pem (over 64 KiB, fetched: 500)"
echo "not a certificate" >cr/garbage.pem
head -c 70000 /dev/zero | tr '\0' A >cr/huge.pem
chmod 644 cr/garbage.pem cr/huge.pem
code=$(curl -s --cacert "$TLS/ca.pem" -o /dev/null -w '%{http_code}' "${TNCR_URL}huge.pem")
[ "$code" = 500 ] || fail "huge.pem answered $code, not 500"
firing TnCrInvalidChain "$TNCR_HOST"
firing TnCrServingErrors "$TNCR_HOST"

# ---- instances down
log "B and the TN-CR stopped"
kill -TERM "$sksb_pid" "$tncr_pid"
firing SksInstanceDown "$B_HOST"
firing TnCrDown "$TNCR_HOST"

missing=()
for alert in $(sed -n 's/^ *- alert: *//p' "$HERE/sks.rules.yml"); do
  [ -n "${SEEN[$alert]:-}" ] || missing+=("$alert")
done
[ ${#missing[@]} -eq 0 ] || fail "never caused here: ${missing[*]}"
log "all ${#SEEN[@]} alerts of sks.rules.yml seen firing in Prometheus"
