#!/usr/bin/env bash
# ansible/tests/ci.sh BUILD_DIR: the Ansible roles and playbooks, end to end,
# on this machine only (127.0.0.1; tn-cr on 8443, sks on 9444/9445, HAProxy
# on 9440 with stats on 9441), in a temporary state folder:
#   1. site.yml against the CI inventory installs and starts everything;
#   2. a second run reports changed=0; a --check run changes nothing;
#   3. ansible-lint (production profile) and yamllint pass on ansible/;
#   4. signing through HAProxy over mutual TLS works and the tokens verify
#      (sks verify --from --to: x5u fetched from the TN-CR, chain to the
#      test STI-PA root);
#   5. one sks instance is killed under ~200 req/s through HAProxy: HAProxy
#      takes it out by its health check and requests keep succeeding; the
#      failures before the check noticed are printed; site.yml starts it again.
# Everything it started is stopped on exit, and the state folder removed
# (SKS_CI_KEEP_LOGS=DIR keeps the logs of a failed run there).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ANSIBLE_DIR=$(dirname "$HERE")
[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 64; }
BUILD=$(cd "$1" && pwd)
for bin in sks/sks tn-cr/tn-cr dev-pki/sti-dev-ca; do
  [ -x "$BUILD/$bin" ] || { echo "ci.sh: $BUILD/$bin is missing (build the sks, tn-cr and sti-dev-ca targets)" >&2; exit 66; }
done

STATE=$(mktemp -d "${TMPDIR:-/tmp}/sks-ansible-ci.XXXXXX")
export SKS_CI_STATE=$STATE SKS_BUILD_DIR=$BUILD
export ANSIBLE_CONFIG=$ANSIBLE_DIR/ansible.cfg ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
INVENTORY=$ANSIBLE_DIR/inventories/ci/hosts.yml
TLS=$STATE/tls

log() { printf '== ci.sh %s: %s\n' "$(date -u +%T)" "$*" >&2; }
fail() { printf 'ci.sh: FAIL: %s\n' "$*" >&2; exit 1; }

cleanup() {
  local rc=$?
  for pidfile in "$STATE"/*/run/*.pid; do
    [ -f "$pidfile" ] || continue
    start-stop-daemon --stop --quiet --oknodo --pidfile "$pidfile" --retry TERM/10/KILL/2 || true
  done
  if [ "$rc" -ne 0 ] && [ -n "${SKS_CI_KEEP_LOGS:-}" ]; then
    mkdir -p "$SKS_CI_KEEP_LOGS"
    for d in "$STATE"/*/log; do cp -r "$d" "$SKS_CI_KEEP_LOGS/$(basename "$(dirname "$d")")"; done
    cp "$STATE"/*.out "$SKS_CI_KEEP_LOGS"/ 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ]; then
    for f in "$STATE"/*/log/*.log; do
      [ -f "$f" ] && { echo "--- $f (last lines)" >&2; tail -n 20 "$f" >&2; }
    done
  fi
  rm -rf "$STATE"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The ports the CI inventory binds must be free (the demo of scripts/dev.sh
# uses 8443 too: it must be stopped first).
for port in 8443 9440 9441 9444 9445; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "127.0.0.1:$port is in use; the CI inventory needs it"
  fi
done

# TLS for loopback (not STIR/SHAKEN keys: those stay in the token): a CA,
# the server certificate of every service, the SBC client, and the client
# certificate of health checks (HAProxy and the roles' /readyz check).
make_tls() {
  mkdir -p "$TLS" && chmod 700 "$TLS"
  (
    cd "$TLS"
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -subj "/O=sks ci/CN=sks ci TLS CA" -keyout ca.key -out ca.pem 2>/dev/null
    issue() { # name CN extensions
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=sks ci/CN=$2" \
        -keyout "$1.key" -out "$1.csr" 2>/dev/null
      openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile <(printf '%s\n' "$3") -out "$1.pem" 2>/dev/null
    }
    issue server localhost $'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth'
    issue client ci-sbc.example.net $'subjectAltName=DNS:ci-sbc.example.net\nextendedKeyUsage=clientAuth'
    issue check haproxy-check.example.net $'subjectAltName=DNS:haproxy-check.example.net\nextendedKeyUsage=clientAuth'
    cat check.pem check.key >check-haproxy.pem
    rm -f ./*.csr ca.srl
    chmod 644 ./*.pem
    chmod 600 check-haproxy.pem
  )
}

# Runs ansible-playbook, keeps its output in $STATE/NAME.out, and prints the
# PLAY RECAP. Fails when a host failed or was unreachable.
RECAP_CHANGED=0
playbook() {
  local name=$1
  shift
  local out=$STATE/$name.out
  log "ansible-playbook $* ($name)"
  if ! (cd "$ANSIBLE_DIR" && nice -n 10 ansible-playbook -i "$INVENTORY" "$@") >"$out" 2>&1; then
    tail -n 60 "$out" >&2
    fail "ansible-playbook $* failed"
  fi
  sed -n '/^PLAY RECAP/,$p' "$out" >&2
  RECAP_CHANGED=$(sed -n '/^PLAY RECAP/,$p' "$out" | grep -o 'changed=[0-9]*' | cut -d= -f2 | paste -sd+ | bc)
  local bad
  bad=$(sed -n '/^PLAY RECAP/,$p' "$out" | grep -Eo '(failed|unreachable)=[1-9][0-9]*' || true)
  [ -z "$bad" ] || fail "$name: $bad"
}

log "state folder $STATE, build $BUILD"
make_tls

playbook site-1 site.yml
playbook site-2 site.yml
[ "$RECAP_CHANGED" -eq 0 ] || { grep -B3 '^changed:' "$STATE/site-2.out" >&2 || true; fail "second run of site.yml changed $RECAP_CHANGED task(s)"; }
log "second run: changed=0"
playbook site-check site.yml --check --diff
[ "$RECAP_CHANGED" -eq 0 ] || { grep -B3 '^changed:' "$STATE/site-check.out" >&2 || true; fail "check mode would change $RECAP_CHANGED task(s)"; }
log "check mode: changed=0"

log "ansible-lint --profile production; yamllint"
(cd "$ANSIBLE_DIR" && nice -n 10 ansible-lint --offline --profile production --nocolor -q) || fail "ansible-lint"
(cd "$ANSIBLE_DIR" && yamllint -s .) || fail "yamllint"

# A config for `sks verify --from --to`: sks1's, plus a verifier that trusts
# the test STI-PA root and fetches x5u from the TN-CR on loopback.
VERIFY_CONFIG=$STATE/verify.toml
{ cat "$STATE/sks1/etc/sks.toml"; cat <<TOML

[verifier]
trust_anchors = "$STATE/pki/root.pem"
tls_ca_file = "$TLS/ca.pem"
allow_loopback = true
TOML
} >"$VERIFY_CONFIG"
chmod 600 "$VERIFY_CONFIG"
SKS=$STATE/prefix/bin/sks

verify_identities() { # file of JSON lines {identity, orig, dest}; checks every Nth
  local file=$1 every=$2 n=0 checked=0
  while IFS= read -r line; do
    n=$((n + 1))
    [ $((n % every)) -eq 1 ] || [ "$every" -eq 1 ] || continue
    local identity orig dest
    identity=$(printf '%s' "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["identity"])')
    orig=$(printf '%s' "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["orig"])')
    dest=$(printf '%s' "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["dest"])')
    "$SKS" verify --config "$VERIFY_CONFIG" --identity "$identity" --from "$orig" --to "$dest" >/dev/null ||
      fail "token $n does not verify: $identity"
    checked=$((checked + 1))
  done <"$file"
  [ "$checked" -gt 0 ] || fail "no token to verify in $file"
  log "verified $checked token(s) against the chain at their x5u"
}

log "signing through HAProxy (127.0.0.1:9440) over mutual TLS"
python3 "$HERE/load.py" --port 9440 --cert "$TLS/client.pem" --key "$TLS/client.key" \
  --ca "$TLS/ca.pem" --rate 50 --duration 2 --workers 4 --expect-no-failures \
  --identities "$STATE/signed.jsonl" || fail "signing through HAProxy"
verify_identities "$STATE/signed.jsonl" 10
for instance in sks1 sks2; do
  grep -q 'signing' "$STATE/$instance/log/$instance.log" || fail "$instance served no signing request through HAProxy"
done
log "both instances signed through HAProxy"

log "kill sks2 under load (~200 req/s through HAProxy for 10 s)"
set +e
python3 "$HERE/load.py" --port 9440 --cert "$TLS/client.pem" --key "$TLS/client.key" \
  --ca "$TLS/ca.pem" --rate 200 --duration 10 --workers 8 \
  --kill-pidfile "$STATE/sks2/run/sks2.pid" --kill-after 3 \
  --stats-url 'http://127.0.0.1:9441/;csv' --server sks2 \
  --identities "$STATE/signed-kill.jsonl" | tee "$STATE/kill.json"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] || fail "requests failed after HAProxy marked sks2 down (or it never did)"
log "failed requests before HAProxy marked sks2 down: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["failed_before_marked_down"])' "$STATE/kill.json")"
verify_identities "$STATE/signed-kill.jsonl" 100

log "site.yml --limit sks2 brings sks2 back"
playbook site-heal site.yml --limit sks2
[ "$RECAP_CHANGED" -ge 1 ] || fail "site.yml did not start sks2 again"
curl -sS --fail --cacert "$TLS/ca.pem" --cert "$TLS/check.pem" --key "$TLS/check.key" \
  https://127.0.0.1:9445/readyz >/dev/null || fail "sks2 is not ready after site.yml"
log "PASS"
