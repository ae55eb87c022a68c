#!/usr/bin/env bash
# End to end through real SIP elements, on loopback only:
#
#   SIPp UAC (customer trunk 127.0.0.1, gateway peer 127.0.0.2)
#     -> Kamailio STI-AS (sti-as.cfg) -- mutual TLS --> sks serve (signing,
#        key in a SoftHSM2 token)
#     -> Kamailio transit (test/transit.cfg: tampers with or strips the
#        Identity of marked calls)
#     -> Kamailio STI-VS (sti-vs.cfg) -- mutual TLS --> sks serve
#        (verification: x5u from tn-cr serve over HTTPS, chain to the test
#        STI-PA root) and, as a second opinion, the secsipid module (x5u
#        fetched by libsecsipid itself)
#     -> SIPp UAS (uas.xml: checks each INVITE's verstat and attestation
#        against what the caller expects; a mismatch fails the call)
#
# Passes when (SIPp's statistics files are the evidence, copied to
# --keep DIR when given):
#   - every call of the load (default 1,000 from the customer trunk and 250
#     from the gateway, at a fixed rate) succeeded, with the expected
#     verstat on P-Asserted-Identity and From: A, B and C calls
#     TN-Validation-Passed with their attestation, calls whose Identity was
#     tampered with on the way TN-Validation-Failed, calls whose Identity
#     was removed No-TN-Validation;
#   - a key rotation (sks rotate start, sks rotate run, SIGHUP) ran in the
#     middle of the calls, and calls were verified under both x5u URLs;
#   - Kamailio's counters agree (signed, passed, failed, no validation,
#     secsipid agreeing with sks on every call), and http_client kept its
#     connections to sks alive (sks accepted at most 40 connections for
#     thousands of requests);
#   - hostile input: a customer's own Identity is replaced by the STI-AS's
#     (a gateway peer's is relayed as it is, and verifies);
#     an Identity carrying JSON, one of 5,000 characters and a forged one
#     sent straight to the STI-VS get No-TN-Validation (the first two
#     without reaching sks); an untrusted source gets 403;
#   - with sks not answering (a TCP peer that never replies) the STI-AS
#     relays the call unsigned after its time budget (fail-open) or refuses
#     it with 503 (fail-closed), and counts it; the STI-VS marks the call
#     No-TN-Validation and counts it;
#   - every configuration passes `kamailio -c`, every Kamailio process runs
#     as an unprivileged user (the `kamailio` user when started as root),
#     and its TLS files follow sks's permission rules.
#
#   integrations/kamailio/test.sh [--build-dir DIR] [--calls N] [--rate R]
#                                 [--keep DIR] [--bench]
#
# --build-dir: a build with the sks, tn-cr and sti-dev-ca targets (default
# build/, built if missing). --calls/--rate: calls from the customer trunk
# and its calls/s (default 1000 at 40/s; the gateway places a quarter of
# both). --bench: afterwards, the benchmark of bench/README.md: calls/s and
# INVITE->200 time through the path, against the same three Kamailio hops
# without the Identity steps. Exit 0 on pass, 1 on a failed check.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
BUILD=$ROOT/build
CALLS=1000
RATE=40
KEEP=
BENCH=0
USAGE="[--build-dir DIR] [--calls N] [--rate R] [--keep DIR] [--bench]"
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) BUILD=$(cd "${2:-}" && pwd); shift 2 || usage ;;
    --calls) CALLS=${2:-}; shift 2 || usage ;;
    --rate) RATE=${2:-}; shift 2 || usage ;;
    --keep) KEEP=${2:-}; shift 2 || usage ;;
    --bench) BENCH=1; shift ;;
    *) usage ;;
  esac
done
[[ "$CALLS" =~ ^[0-9]+$ && "$CALLS" -ge 100 && "$RATE" =~ ^[0-9]+$ && "$RATE" -ge 4 ]] || {
  echo "--calls must be 100 or more, --rate 4 or more" >&2
  exit 64
}
for tool in kamailio kamcmd sipp curl openssl python3; do
  command -v "$tool" >/dev/null || {
    echo "$tool is missing (apt-get install kamailio kamailio-utils-modules kamailio-tls-modules kamailio-json-modules kamailio-secsipid-modules sip-tester)" >&2
    exit 69
  }
done

bench_checks kamailio-test

if [ ! -x "$BUILD/sks/sks" ] || [ ! -x "$BUILD/tn-cr/tn-cr" ] || [ ! -x "$BUILD/dev-pki/sti-dev-ca" ]; then
  [ -f "$BUILD/CMakeCache.txt" ] || bench_configure "$BUILD"
  cmake --build "$BUILD" --parallel "$(nproc)" --target sks tn-cr sti-dev-ca >/dev/null
fi
SKS=$BUILD/sks/sks
TNCR=$BUILD/tn-cr/tn-cr
CA=$BUILD/dev-pki/sti-dev-ca

bench_workdir stir-kamailio
keep_evidence() {
  local rc=$?
  if [ -n "$KEEP" ] && [ -d "$WORK" ]; then
    mkdir -p "$KEEP"
    cp "$WORK"/sipp/*.stat "$WORK"/sipp/*.csv "$WORK"/sipp/*screen* "$WORK"/sipp/*errors* "$KEEP"/ 2>/dev/null || true
    cp "$WORK"/*.log "$WORK"/kam/*.log "$KEEP"/ 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ]; then
    bench_logs
    # What the Kamailio routes logged as errors (a disagreement, a failure).
    grep -h ' ERROR: ' "$WORK"/kam/*.log 2>/dev/null | tail -n 20 >&2 || true
  fi
  bench_cleanup
}
trap keep_evidence EXIT

# Kamailio drops root for the `kamailio` user (the Debian package's); run
# by someone else, it runs as that user. Its folder must be reachable.
if [ "$(id -u)" -eq 0 ]; then
  id kamailio >/dev/null 2>&1 || die "no 'kamailio' user (the Debian package creates it)"
  KAM_USER=(-u kamailio -g kamailio)
  chmod 711 "$WORK"
else
  KAM_USER=()
fi
KAM=$WORK/kam
mkdir -p "$KAM" "$WORK/sipp"

log "set-up in $WORK: TLS, SoftHSM2 token, test STI PKI, TN-CR, sks with rotation"
bench_tls_and_tncr
TOKEN_CONFIG=$("$SKS" init --dir "$WORK/token")
"$CA" init --config "$TOKEN_CONFIG" --dir "$WORK/pki" --crl-url https://127.0.0.1/crl/kamailio.crl >/dev/null
bench_start tncr "$TNCR" serve --config tn-cr.toml
TNCR_URL=$URL
TNCR_PORT=$(printf '%s' "$TNCR_URL" | sed -n 's|^https://127.0.0.1:\([0-9]*\)/.*|\1|p')
[ -n "$TNCR_PORT" ] || die "cannot read the TN-CR port from $TNCR_URL"

export SKS_CONFIG=$WORK/token/kamailio.toml
{ cat "$TOKEN_CONFIG"; echo; bench_sks_rotation_toml; cat <<TOML
roles = ["signing", "verification"]

# x5u on the TN-CR on loopback, on its ephemeral port: allowed here only.
[verifier]
trust_anchors = "$WORK/pki/root.pem"
tls_ca_file = "$TLS/ca.pem"
allow_loopback = true
allowed_ports = [$TNCR_PORT]

[[profile]]
name = "sbc"
origid = "7f6f1e2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
attest = ["A", "B", "C"]
clients = ["demo-sbc.example.net"]
TOML
  bench_profile_rotation_toml "/C=US/O=SKS Kamailio test"
} >"$SKS_CONFIG"
bench_start_rotating_sks
SKS_BASE=${URL%/stir/v1/signing}
MTLS=(--cacert "$TLS/ca.pem" --cert "$TLS/client.pem" --key "$TLS/client.key")
metrics() { curl -sS "${MTLS[@]}" "$SKS_BASE/metrics"; }
active_key() {
  metrics | sed -n 's/^sks_profile_active_key{profile="sbc",key="\([^"]*\)".* 1$/\1/p'
}


# Kamailio's files: the SBC's client certificate and key for sks, sks's CA,
# the STI-PA root and STI-CA intermediate for secsipid, its cache. Owned by
# the user Kamailio runs as; the key 0600 (sks's rule for its own TLS key).
mkdir -p "$KAM/tls" "$KAM/sti"
cp "$TLS/client.pem" "$KAM/tls/client.pem"
cp "$TLS/client.key" "$KAM/tls/client.key"
cp "$TLS/ca.pem" "$KAM/tls/sks-ca.pem"
cp "$WORK/pki/root.pem" "$KAM/sti/sti-pa-roots.pem"
cp "$WORK/pki/ca.pem" "$KAM/sti/sti-ca-intermediates.pem"
chmod 644 "$KAM"/tls/*.pem "$KAM"/sti/*.pem
chmod 600 "$KAM/tls/client.key"
chmod 700 "$KAM"
chmod 755 "$KAM/tls" "$KAM/sti"
[ ${#KAM_USER[@]} -eq 0 ] || chown -R kamailio:kamailio "$KAM"

# check_tls_file PATH private: the rules of http/src/tls_files.cpp (sks
# serve, tn-cr serve) for a file read by the user Kamailio runs as.
KAM_UID=$(id -u "${KAM_USER[1]:-$(id -un)}")
check_tls_file() {
  local path=$1 private=$2 uid mode
  uid=$(stat -c %u "$path")
  mode=$((8#$(stat -c %a "$path")))
  [ -f "$path" ] || { fail "$path is not a regular file"; return; }
  [ "$uid" -eq "$KAM_UID" ] || [ "$uid" -eq 0 ] || fail "$path is owned by uid $uid, not by Kamailio's user ($KAM_UID) or root"
  [ $((mode & 8#022)) -eq 0 ] || fail "$path is writable by group or others"
  [ "$private" = 1 ] || return 0
  [ $((mode & 8#004)) -eq 0 ] || fail "$path (a private key) is readable by others"
  [ $((mode & 8#040)) -eq 0 ] || [ "$uid" -eq 0 ] || fail "$path (a private key) owned by the service user is readable by its group"
}
for f in "$KAM"/tls/*.pem "$KAM"/sti/*.pem; do check_tls_file "$f" 0; done
check_tls_file "$KAM/tls/client.key" 1

# Free loopback UDP ports, one per SIP element.
free_udp_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}
read -r AS_PORT TRANSIT_PORT VS_PORT UAS_PORT UAC_PORT GW_PORT AS2_PORT AS3_PORT \
  BAS_PORT BTRANSIT_PORT BVS_PORT P1_PORT P2_PORT P3_PORT VS2_PORT <<<"$(free_udp_ports 15)"

# write_site DIR FILE LINES...: a site file of #!substdef lines NAME=VALUE.
write_site() {
  local dir=$1 file=$2 kv
  shift 2
  mkdir -p "$dir"
  for kv in "$@"; do printf '#!substdef "!%s!%s!"\n' "${kv%%=*}" "${kv#*=}"; done >"$dir/$file"
}
# hop_site DIR CFG PORT NEXT_HOP_PORT [NAME=VALUE...]: CFG copied into DIR,
# with the site file every hop has (listen, next hop, children, control
# socket) and the settings given.
hop_site() {
  local dir=$1 cfg=$2 port=$3 next_hop=$4
  shift 4
  cp "$cfg" "$dir/"
  write_site "$dir" "$(basename "$cfg" .cfg)-site.cfg" "SITE_SIP_LISTEN=udp:127.0.0.1:$port" \
    "SITE_NEXT_HOP=sip:127.0.0.1:$next_hop" SITE_CHILDREN=4 "SITE_CTL_SOCKET=unix:$dir/ctl" "$@"
}
# sks_client SKS_URL TIMEOUT_S: the settings of a hop that calls sks, into SKS_CLIENT.
sks_client() {
  SKS_CLIENT=("SITE_SKS_URL=$1" "SITE_SKS_CLIENT_CERT=$KAM/tls/client.pem"
    "SITE_SKS_CLIENT_KEY=$KAM/tls/client.key" "SITE_SKS_CA=$KAM/tls/sks-ca.pem"
    "SITE_SKS_TIMEOUT_S=$2")
}
# An STI-AS instance: DIR PORT SKS_URL FAIL_CLOSED [NEXT_HOP_PORT].
as_site() {
  sks_client "$3" 1
  hop_site "$1" "$HERE/sti-as.cfg" "$2" "${5:-$TRANSIT_PORT}" "${SKS_CLIENT[@]}" \
    "SITE_FAIL_CLOSED=$4" \
    "SITE_CUSTOMER_TRUNKS=127[.]0[.]0[.]1:$UAC_PORT" "SITE_GATEWAY_PEERS=127[.]0[.]0[.]2:$GW_PORT" \
    "SITE_ASSIGNED_TNS=1215555(01[0-9][0-9])"
}
# An STI-VS instance: DIR PORT NEXT_HOP_PORT SECOND_OPINION [SKS_URL].
vs_site() {
  sks_client "${5:-$SKS_BASE}" 2
  hop_site "$1" "$HERE/sti-vs.cfg" "$2" "$3" "${SKS_CLIENT[@]}" "SITE_SECOND_OPINION=$4" \
    "SITE_STI_PA_ROOTS=$KAM/sti/sti-pa-roots.pem" \
    "SITE_STI_CA_INTERMEDIATES=$KAM/sti/sti-ca-intermediates.pem"
}
# A transit hop (test only): DIR PORT NEXT_HOP_PORT.
transit_site() { hop_site "$1" "$HERE/test/transit.cfg" "$2" "$3"; }
mkdir -p "$KAM/as" "$KAM/vs" "$KAM/transit"
as_site "$KAM/as" "$AS_PORT" "$SKS_BASE" 0
vs_site "$KAM/vs" "$VS_PORT" "$UAS_PORT" 1
transit_site "$KAM/transit" "$TRANSIT_PORT" "$VS_PORT"
[ ${#KAM_USER[@]} -eq 0 ] || chown -R kamailio:kamailio "$KAM"

log "kamailio -c on the configurations as committed and as deployed here"
for cfg in "$HERE/sti-as.cfg" "$HERE/sti-vs.cfg" "$KAM/as/sti-as.cfg" "$KAM/vs/sti-vs.cfg" \
  "$KAM/transit/transit.cfg"; do
  kamailio -c -f "$cfg" >"$WORK/check.out" 2>&1 || { cat "$WORK/check.out" >&2; die "kamailio -c -f $cfg failed"; }
  ! grep -E ' (WARNING|ERROR|CRITICAL): ' "$WORK/check.out" >&2 ||
    fail "kamailio -c -f $cfg: warnings or errors (above)"
done

# start_kamailio NAME CFG [ENV...]: in the foreground of its own process
# (-DD), logging to NAME.log; ready when its control socket answers.
declare -A KAM_PID
start_kamailio() {
  local name=$1 cfg=$2 dir
  shift 2
  dir=$(dirname "$cfg")
  env "$@" kamailio -f "$cfg" -DD -E -m 128 -M 16 "${KAM_USER[@]}" >"$KAM/$name.log" 2>&1 </dev/null &
  bench_pids+=($!)
  KAM_PID[$name]=$!
  ctl_ready() { kamcmd -s "unix:$dir/ctl" core.version >/dev/null 2>&1; }
  until_true 30 ctl_ready || { tail -20 "$KAM/$name.log" >&2; die "kamailio $name did not start"; }
}
counters() { kamcmd -s "unix:$1/ctl" cnt.grp_get_all "$2"; }
# counter DIR GROUP NAME: one counter's value.
counter() { counters "$1" "$2" | awk -v n="$3:" '$1 == n { print $2 }'; }

log "Kamailio: STI-AS :$AS_PORT -> transit :$TRANSIT_PORT -> STI-VS :$VS_PORT -> UAS :$UAS_PORT; sks $SKS_BASE"
start_kamailio transit "$KAM/transit/transit.cfg"
# secsipid's x5u fetch (Go) trusts the TN-CR's TLS CA through SSL_CERT_FILE.
start_kamailio vs "$KAM/vs/sti-vs.cfg" "SSL_CERT_FILE=$KAM/tls/sks-ca.pem"
start_kamailio as "$KAM/as/sti-as.cfg"

# Unprivileged: no Kamailio process of ours runs as root.
check_unprivileged() {
  local name pid child uid
  for name in "${!KAM_PID[@]}"; do
    pid=${KAM_PID[$name]}
    for child in $pid $(pgrep -P "$pid" || true); do
      uid=$(awk '/^Uid:/ { print $3 }' "/proc/$child/status" 2>/dev/null || echo gone)
      [ "$uid" != 0 ] || fail "kamailio $name (pid $child) runs as root"
    done
  done
}
check_unprivileged
log "Kamailio runs as $(ps -o user= -p "${KAM_PID[as]}") ($(pgrep -c -P "${KAM_PID[as]}") processes for the STI-AS)"

# The calls. Fields: calling TN; called TN; expected "PAI verstat|From verstat|attestation".
PASSED='verstat=TN-Validation-Passed|verstat=TN-Validation-Passed'
FAILED_VS='verstat=TN-Validation-Failed|verstat=TN-Validation-Failed|'
NONE_VS='verstat=No-TN-Validation|verstat=No-TN-Validation|'
{
  echo SEQUENTIAL
  echo "12155550121;12155550131;$PASSED|A"   # assigned number: A
  echo "12155550122;12155550132;$PASSED|A"
  echo "12155559999;12155550133;$PASSED|B"   # not one we assigned: B
  echo "12155550123;12155550191;$FAILED_VS"  # tampered with by the transit
  echo "12155550124;12155550181;$NONE_VS"    # Identity removed by the transit
} >"$WORK/sipp/customer.csv"
{
  echo SEQUENTIAL
  echo "14155550100;12155550134;$PASSED|C"   # from a gateway peer: C
} >"$WORK/sipp/gateway.csv"
GW_CALLS=$((CALLS / 4))
GW_RATE=$((RATE / 4))
SIPP_COMMON=(-nostdin -trace_stat -fd 1 -trace_screen -trace_err -recv_timeout 10000 -timeout 600)

log "SIPp UAS on :$UAS_PORT; $CALLS calls at $RATE/s from the customer trunk, $GW_CALLS at $GW_RATE/s from the gateway"
cd "$WORK/sipp"
sipp -sf "$HERE/sipp/uas.xml" -i 127.0.0.1 -p "$UAS_PORT" "${SIPP_COMMON[@]}" -stf uas.csv \
  -screen_file uas-screen.log -error_file uas-errors.log -trace_msg -message_file uas-messages.log \
  >uas.out 2>&1 </dev/null &
bench_pids+=($!)
UAS_PID=$!
sipp -sf "$HERE/sipp/uac.xml" -inf customer.csv -i 127.0.0.1 -p "$UAC_PORT" -r "$RATE" -m "$CALLS" \
  "${SIPP_COMMON[@]}" -stf customer.csv.stat -screen_file customer-screen.log \
  -error_file customer-errors.log "127.0.0.1:$AS_PORT" >customer.out 2>&1 </dev/null &
CUSTOMER_PID=$!
bench_pids+=($!)
sipp -sf "$HERE/sipp/uac.xml" -inf gateway.csv -i 127.0.0.2 -p "$GW_PORT" -r "$GW_RATE" -m "$GW_CALLS" \
  "${SIPP_COMMON[@]}" -stf gateway.csv.stat -screen_file gateway-screen.log \
  -error_file gateway-errors.log "127.0.0.1:$AS_PORT" >gateway.out 2>&1 </dev/null &
GATEWAY_PID=$!
bench_pids+=($!)
cd "$WORK"

# stat_field FILE COLUMN: the last value of a column of a SIPp statistics file.
stat_field() {
  python3 - "$1" "$2" <<'PY'
import sys
rows = [l.rstrip("\n").split(";") for l in open(sys.argv[1]) if l.strip()]
print(rows[-1][rows[0].index(sys.argv[2])] if len(rows) > 1 else 0)
PY
}
calls_created() { [ -s "$WORK/sipp/customer.csv.stat" ] && [ "$(stat_field "$WORK/sipp/customer.csv.stat" 'TotalCallCreated')" -ge "$1" ]; }

# The rotation, once 40 % of the customer calls were placed.
until_true 120 calls_created $((CALLS * 2 / 5)) || die "the calls did not start (see the SIPp logs)"
OLD_KEY=$(active_key)
log "rotation under load: sks rotate start, sks rotate run (issue, publish, activate), SIGHUP (key $OLD_KEY)"
"$SKS" rotate start >rotate-start.log 2>&1 || die "sks rotate start failed"
"$SKS" rotate run >rotate-run.log 2>&1 || die "sks rotate run failed"
# shellcheck disable=SC2154 # sks_pid: set by bench_start
kill -HUP "$sks_pid"
new_key_active() {
  local key
  key=$(active_key)
  [ -n "$key" ] && [ "$key" != "$OLD_KEY" ]
}
until_true 60 new_key_active || fail "sks did not switch to the new key after SIGHUP"
NEW_KEY=$(active_key)
log "rotation done: $OLD_KEY -> $NEW_KEY, at call $(stat_field "$WORK/sipp/customer.csv.stat" TotalCallCreated)"

CUSTOMER_RC=0
GATEWAY_RC=0
wait "$CUSTOMER_PID" || CUSTOMER_RC=$?
wait "$GATEWAY_PID" || GATEWAY_RC=$?
log "callers done (exit $CUSTOMER_RC and $GATEWAY_RC)"

# The evidence: SIPp's own statistics (final line of each file).
report_sipp() {
  local name=$1 file=$2 expect=$3 created ok failed
  created=$(stat_field "$file" TotalCallCreated)
  ok=$(stat_field "$file" 'SuccessfulCall(C)')
  failed=$(stat_field "$file" 'FailedCall(C)')
  printf '%-28s created %5s  successful %5s  failed %3s  INVITE->200 mean %s ms\n' "$name" "$created" "$ok" \
    "$failed" "$(rtd_ms "$file")" >&2
  if [ "$created" -ne "$expect" ] || [ "$ok" -ne "$expect" ] || [ "$failed" -ne 0 ]; then
    fail "$name: $expect calls expected, $created created, $ok successful, $failed failed"
  fi
}
# rtd_ms FILE: SIPp's cumulated mean of response time 1 (INVITE -> 200), in ms.
rtd_ms() {
  python3 - "$1" <<'PY'
import sys
rows = [l.rstrip("\n").split(";") for l in open(sys.argv[1]) if l.strip()]
if "ResponseTime1(C)" not in rows[0]:
    print("-")
    sys.exit()
v = rows[-1][rows[0].index("ResponseTime1(C)")]
h, m, s, us = (int(x) for x in v.split(":"))
print(f"{((h * 60 + m) * 60 + s) * 1000 + us / 1000:.1f}")
PY
}
report_sipp "customer trunk (A, B, tampered, stripped)" "$WORK/sipp/customer.csv.stat" "$CALLS"
report_sipp "gateway peer (C)" "$WORK/sipp/gateway.csv.stat" "$GW_CALLS"
if [ "$CUSTOMER_RC" -ne 0 ] || [ "$GATEWAY_RC" -ne 0 ]; then
  fail "SIPp callers exited $CUSTOMER_RC and $GATEWAY_RC"
fi

# Per class, from the lines of customer.csv taken in turn.
per_class() { echo $(((CALLS + 4 - $1) / 5)); }
A_CALLS=$(($(per_class 0) + $(per_class 1)))
B_CALLS=$(per_class 2)
TAMPERED=$(per_class 3)
STRIPPED=$(per_class 4)
SIGNED=$((CALLS + GW_CALLS))
PASSED_CALLS=$((A_CALLS + B_CALLS + GW_CALLS))

# check_counter DIR GROUP NAME EXPECTED
check_counter() {
  local got
  got=$(counter "$1" "$2" "$3")
  printf '  %-24s %6s (expected %s)\n' "$2.$3" "$got" "$4" >&2
  [ "$got" = "$4" ] || fail "counter $2.$3 is $got, expected $4"
}
log "Kamailio's counters"
check_counter "$KAM/as" sti_as signed "$SIGNED"
check_counter "$KAM/as" sti_as sign_failed 0
check_counter "$KAM/as" sti_as untrusted 0
check_counter "$KAM/vs" sti_vs passed "$PASSED_CALLS"
check_counter "$KAM/vs" sti_vs failed "$TAMPERED"
check_counter "$KAM/vs" sti_vs no_validation "$STRIPPED"
check_counter "$KAM/vs" sti_vs no_identity "$STRIPPED"
check_counter "$KAM/vs" sti_vs sks_error 0
check_counter "$KAM/vs" sti_vs malformed 0
check_counter "$KAM/vs" sti_vs second_ok "$PASSED_CALLS"
check_counter "$KAM/vs" sti_vs second_failed "$TAMPERED"
check_counter "$KAM/vs" sti_vs disagree 0

# Keep-alive: sks accepted a handful of TLS connections for thousands of
# requests (each Kamailio worker keeps its own; the test's metric reads
# with curl are new connections too).
metric() { metrics | awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'; }
ACCEPTED=$(metric sks_connections_accepted_total)
REQUESTS=$(metrics | awk '$1 ~ /^sks_requests_total\{route="(signing|verification)"/ { n += $2 } END { print n + 0 }')
printf '  %-24s %6s for %s signing and verification requests\n' "sks connections" "$ACCEPTED" "$REQUESTS" >&2
[ "$REQUESTS" -ge $((SIGNED + PASSED_CALLS + TAMPERED)) ] || fail "sks answered $REQUESTS requests, fewer than the calls need"
# 8 Kamailio workers talk to sks; 40 leaves room for reconnects and curl.
[ "$ACCEPTED" -le 40 ] || fail "sks accepted $ACCEPTED connections for $REQUESTS requests: no keep-alive"

# Calls verified under both certificates: the x5u URLs the UAS saw.
X5US=$(grep -o 'info=<[^>]*>' "$WORK/sipp/uas-messages.log" | sort | uniq -c)
printf '%s\n' "$X5US" | sed 's/^/  x5u /' >&2
[ "$(printf '%s\n' "$X5US" | grep -c .)" -ge 2 ] || fail "the calls were not signed under two x5u URLs (before and after the rotation)"

# Hostile input. To the STI-AS from the customer trunk: an Identity of the
# customer's own (removed, the call signed as usual); from the gateway peer,
# one it signed (relayed as it is). Straight to the
# STI-VS: an Identity with JSON in it, one of 5,000 characters (both
# refused before sks is asked: malformed), one well-formed but forged
# (sks refuses it). From an untrusted source: 403 from the STI-AS.
log "hostile input: forged, injected and oversized Identity headers; an untrusted source"
cd "$WORK/sipp"
# hostile NAME PORT EXPECTED IDENTITY [SOURCE_IP SOURCE_PORT]: one call,
# from the customer trunk unless a source is given.
hostile() {
  printf 'SEQUENTIAL\n12155550121;12155550131;%s\n' "$3" >"$1.csv"
  sipp -sf "$HERE/sipp/uac-identity.xml" -inf "$1.csv" -key identity "$4" -i "${5:-127.0.0.1}" \
    -p "${6:-$UAC_PORT}" -r 1 -m 1 "${SIPP_COMMON[@]}" -stf "$1.stat" -screen_file "$1-screen.log" \
    -error_file "$1-errors.log" "127.0.0.1:$2" >"$1.out" 2>&1 </dev/null ||
    fail "hostile input $1: the call failed (SIPp's $1-errors.log: $(grep -m1 Warning "$1-errors.log" || true))"
}
FORGED_HEADER=$(printf '{"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"https://127.0.0.1:%s/absent.pem"}' "$TNCR_PORT" | base64 -w0 | tr '+/' '-_' | tr -d '=')
FORGED="$FORGED_HEADER.eyJhdHRlc3QiOiJBIn0.c2lnbmF0dXJl;info=<https://127.0.0.1:$TNCR_PORT/absent.pem>;alg=ES256;ppt=shaken"
hostile forged-to-as "$AS_PORT" "$PASSED|A" "$FORGED"
# A peer's call that arrives signed (here by sks, through curl) is relayed
# as it is, not signed again, and verifies.
PEER_IDENTITY=$(curl -sS "${MTLS[@]}" -H 'Content-Type: application/json' \
  --data "{\"signingRequest\":{\"attest\":\"A\",\"dest\":{\"tn\":[\"12155550131\"]},\"iat\":$(date +%s),\"orig\":{\"tn\":\"12155550121\"}}}" \
  "$SKS_BASE/stir/v1/signing" | sed -n 's/.*"identity":"\([^"]*\)".*/\1/p')
[ -n "$PEER_IDENTITY" ] || fail "no Identity from sks for the peer's call"
hostile signed-by-peer "$AS_PORT" "$PASSED|A" "$PEER_IDENTITY" 127.0.0.2 "$GW_PORT"
hostile injected "$VS_PORT" "$NONE_VS" 'a.b.c;info=<https://127.0.0.1/x.pem>;alg=ES256;ppt=shaken","from":{"tn":"1"},"x":"'
hostile oversized "$VS_PORT" "$NONE_VS" "$(head -c 5000 /dev/zero | tr '\0' A).b.c;info=<https://127.0.0.1/x.pem>;alg=ES256;ppt=shaken"
hostile forged-to-vs "$VS_PORT" "$NONE_VS" "$FORGED"
sipp -sf "$HERE/sipp/uac-refused.xml" -inf "$WORK/sipp/customer.csv" -i 127.0.0.3 -p "$UAC_PORT" -r 1 -m 1 \
  "${SIPP_COMMON[@]}" -stf untrusted.stat -screen_file untrusted-screen.log -error_file untrusted-errors.log \
  "127.0.0.1:$AS_PORT" >untrusted.out 2>&1 </dev/null || fail "untrusted source: the call was not refused"
cd "$WORK"
check_counter "$KAM/as" sti_as signed $((SIGNED + 1))
check_counter "$KAM/as" sti_as passed_through 1
check_counter "$KAM/as" sti_as untrusted 1
check_counter "$KAM/vs" sti_vs malformed 2
check_counter "$KAM/vs" sti_vs passed $((PASSED_CALLS + 2))
check_counter "$KAM/vs" sti_vs no_validation $((STRIPPED + 3))
check_counter "$KAM/vs" sti_vs disagree 0

# fail-open and fail-closed: sks does not answer (a TCP peer that accepts
# and never replies); the STI-AS waits its 1 s budget, then relays the call
# unsigned (SITE_FAIL_CLOSED 0) or refuses it with 503 (1).
log "sks not answering: fail-open and fail-closed STI-AS, STI-VS"
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' >"$WORK/blackhole.port" 2>/dev/null </dev/null &
bench_pids+=($!)
blackhole_up() { [ -s "$WORK/blackhole.port" ]; }
until_true 10 blackhole_up || die "the silent TCP peer did not start"
BLACKHOLE=https://127.0.0.1:$(cat "$WORK/blackhole.port")
mkdir -p "$KAM/as-open" "$KAM/as-closed" "$KAM/vs-silent"
as_site "$KAM/as-open" "$AS2_PORT" "$BLACKHOLE" 0
as_site "$KAM/as-closed" "$AS3_PORT" "$BLACKHOLE" 1
vs_site "$KAM/vs-silent" "$VS2_PORT" "$UAS_PORT" 0 "$BLACKHOLE"
[ ${#KAM_USER[@]} -eq 0 ] || chown -R kamailio:kamailio "$KAM"
start_kamailio as-open "$KAM/as-open/sti-as.cfg"
start_kamailio as-closed "$KAM/as-closed/sti-as.cfg"
start_kamailio vs-silent "$KAM/vs-silent/sti-vs.cfg"
check_unprivileged
{
  echo SEQUENTIAL
  echo "12155550121;12155550131;$NONE_VS"
} >"$WORK/sipp/open.csv"
cd "$WORK/sipp"
sipp -sf "$HERE/sipp/uac.xml" -inf open.csv -i 127.0.0.1 -p "$UAC_PORT" -r 5 -m 5 "${SIPP_COMMON[@]}" \
  -stf open.csv.stat -screen_file open-screen.log -error_file open-errors.log \
  "127.0.0.1:$AS2_PORT" >open.out 2>&1 </dev/null || fail "fail-open: SIPp reported failed calls"
sipp -sf "$HERE/sipp/uac-refused.xml" -inf open.csv -i 127.0.0.1 -p "$UAC_PORT" -r 5 -m 5 "${SIPP_COMMON[@]}" \
  -stf closed.csv.stat -screen_file closed-screen.log -error_file closed-errors.log \
  "127.0.0.1:$AS3_PORT" >closed.out 2>&1 </dev/null || fail "fail-closed: SIPp reported failed calls"
# An STI-VS whose sks does not answer: No-TN-Validation after its budget.
hostile vs-sks-silent "$VS2_PORT" "$NONE_VS" "$FORGED"
cd "$WORK"
report_sipp "fail-open (unsigned, No-TN-Validation)" "$WORK/sipp/open.csv.stat" 5
report_sipp "fail-closed (503)" "$WORK/sipp/closed.csv.stat" 5
check_counter "$KAM/as-open" sti_as sign_failed 5
check_counter "$KAM/as-open" sti_as sent_unsigned 5
check_counter "$KAM/as-open" sti_as signed 0
check_counter "$KAM/as-closed" sti_as sign_failed 5
check_counter "$KAM/as-closed" sti_as refused 5
check_counter "$KAM/vs-silent" sti_vs sks_error 1
check_counter "$KAM/vs-silent" sti_vs no_validation 1
grep -q 'STI-AS: signing failed (code 28' "$KAM/as-open.log" || fail "fail-open: no 'signing failed (code 28' (timeout) in the log"

# The benchmark (bench/README.md): A calls through the same three Kamailio
# hops with and without the Identity steps, to a callee that only answers
# (uas-plain.xml). With: STI-AS -> transit -> STI-VS (no second opinion),
# signing and verification by sks. Without: three transit hops (the same
# SIP work: transaction, Record-Route, relay). Saturation: as many calls as
# 32 in flight allow; latency: SIPp's INVITE->200 time at a fixed 100/s.
if [ "$BENCH" = 1 ]; then
  log "benchmark: with and without the Identity steps"
  mkdir -p "$KAM/bas" "$KAM/btransit" "$KAM/bvs" "$KAM/p1" "$KAM/p2" "$KAM/p3"
  as_site "$KAM/bas" "$BAS_PORT" "$SKS_BASE" 0 "$BTRANSIT_PORT"
  transit_site "$KAM/btransit" "$BTRANSIT_PORT" "$BVS_PORT"
  vs_site "$KAM/bvs" "$BVS_PORT" "$UAS_PORT" 0
  transit_site "$KAM/p1" "$P1_PORT" "$P2_PORT"
  transit_site "$KAM/p2" "$P2_PORT" "$P3_PORT"
  transit_site "$KAM/p3" "$P3_PORT" "$UAS_PORT"
  [ ${#KAM_USER[@]} -eq 0 ] || chown -R kamailio:kamailio "$KAM"
  for name in bas btransit bvs p1 p2 p3; do
    for cfg in "$KAM/$name"/*.cfg; do
      case "$cfg" in *-site.cfg) ;; *) start_kamailio "$name" "$cfg" ;; esac
    done
  done
  kill "$UAS_PID" 2>/dev/null || true
  wait "$UAS_PID" 2>/dev/null || true
  cd "$WORK/sipp"
  sipp -sf "$HERE/sipp/uas-plain.xml" -i 127.0.0.1 -p "$UAS_PORT" -nostdin >uas-plain.out 2>&1 </dev/null &
  bench_pids+=($!)
  UAS_PID=$!
  { echo SEQUENTIAL; echo "12155550121;12155550131;-"; } >bench.csv
  BENCH_CALLS=$((CALLS * 3))
  # bench_run NAME PORT ARGS...: SIPp's statistics file NAME.stat.
  bench_run() {
    local name=$1 port=$2
    shift 2
    date +%s.%N >"$name.start"
    sipp -sf "$HERE/sipp/uac.xml" -inf bench.csv -i 127.0.0.1 -p "$UAC_PORT" "$@" -nostdin \
      -trace_stat -fd 1 -stf "$name.stat" -recv_timeout 10000 "127.0.0.1:$port" >"$name.out" 2>&1 </dev/null ||
      fail "benchmark $name: SIPp reported failed calls"
    date +%s.%N >"$name.end"
  }
  bench_run with-sat "$BAS_PORT" -r 5000 -l 32 -m "$BENCH_CALLS"
  bench_run without-sat "$P1_PORT" -r 5000 -l 32 -m "$BENCH_CALLS"
  bench_run with-100 "$BAS_PORT" -r 100 -m "$CALLS" -trace_msg -message_file with-100.msg
  bench_run without-100 "$P1_PORT" -r 100 -m "$CALLS" -trace_msg -message_file without-100.msg
  cd "$WORK"
  python3 - "$WORK/sipp" <<'PY'
import sys
d = sys.argv[1]
def last(name):
    rows = [l.rstrip("\n").split(";") for l in open(f"{d}/{name}.stat") if l.strip()]
    return dict(zip(rows[0], rows[-1]))
def secs(v):
    h, m, s, us = (int(x) for x in v.split(":"))
    return (h * 60 + m) * 60 + s + us / 1e6
def rate(name):
    # SIPp's ElapsedTime has whole seconds only: the wall time of the run.
    r = last(name)
    took = float(open(f"{d}/{name}.end").read()) - float(open(f"{d}/{name}.start").read())
    return int(r["SuccessfulCall(C)"]) / took, int(r["FailedCall(C)"])
def rtd(name):
    # INVITE sent -> 200 received per call, from the timestamps (us) of
    # SIPp's message log (its own response-time figures are whole ms).
    import datetime
    sent, answered = {}, {}
    for block in open(f"{d}/{name}.msg").read().split("-" * 47 + " ")[1:]:
        stamp, _, rest = block.partition("\n")
        t = datetime.datetime.strptime(stamp.strip(), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        call = next((l.split(":", 1)[1].strip() for l in rest.splitlines() if l.lower().startswith("call-id:")), None)
        cseq = next((l for l in rest.splitlines() if l.lower().startswith("cseq:")), "")
        if call is None or "INVITE" not in cseq:
            continue
        if " sent " in rest.splitlines()[0] and rest.split("\n\n", 1)[1].startswith("INVITE"):
            sent.setdefault(call, t)
        elif "received" in rest.splitlines()[0] and rest.split("\n\n", 1)[1].startswith("SIP/2.0 200"):
            answered.setdefault(call, t)
    ms = sorted((answered[c] - sent[c]) * 1000 for c in answered if c in sent)
    return sum(ms) / len(ms), ms[len(ms) // 2], ms[int(len(ms) * 0.99)], len(ms)
w, wf = rate("with-sat"); o, of = rate("without-sat")
wl, w50, w99, wn = rtd("with-100"); ol, o50, o99, on = rtd("without-100")
print(f"{'SIP path (3 Kamailio hops, SIPp)':40} {'calls/s, 32 in flight':>22}   INVITE->200 at 100 calls/s: mean / p50 / p99 (calls)")
print(f"{'with Identity (sks sign + sks verify)':40} {w:22.0f}   {wl:.2f} / {w50:.2f} / {w99:.2f} ms ({wn})")
print(f"{'without the Identity steps':40} {o:22.0f}   {ol:.2f} / {o50:.2f} / {o99:.2f} ms ({on})")
print(f"{'added by signing + verification':40} {'':22}   {wl - ol:.2f} / {w50 - o50:.2f} / {w99 - o99:.2f} ms")
print(f"failed calls: {wf} and {of}")
PY
fi

kill "$UAS_PID" 2>/dev/null || true
[ "$FAILED" = 0 ] || die "see above"
log "passed: $((CALLS + GW_CALLS)) calls, every verstat as expected, a rotation in the middle; sks ${OLD_KEY} -> ${NEW_KEY}"
