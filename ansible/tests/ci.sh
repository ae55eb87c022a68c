#!/usr/bin/env bash
# ansible/tests/ci.sh BUILD_DIR: the Ansible roles and playbooks, end to end,
# on this machine only (127.0.0.1; tn-cr on 8443, sks on 9444/9445 with
# their metrics listeners on 9464/9465, HAProxy on 9440 with stats on
# 9441), in a temporary state folder:
#   1. site.yml against the CI inventory installs (the Debian packages cpack
#      makes from the build, with dpkg) and starts everything;
#   2. a second run reports changed=0; a --check run changes nothing;
#   3. ansible-lint (production profile) and yamllint pass on ansible/; the
#      production inventory's sks and HAProxy configs render and load
#      (sks check-config, haproxy -c);
#   4. signing through HAProxy over mutual TLS works and the tokens verify
#      (sks verify --from --to: x5u fetched from the TN-CR, chain to the
#      test STI-PA root); both instances sign on the token p11-kit server
#      serves (hsm_remote), each through its own connection;
#   5. one sks instance is killed under ~200 req/s through HAProxy: HAProxy
#      takes it out by its health check and requests keep succeeding; the
#      failures before the check noticed are printed; site.yml starts it again;
#      a real Prometheus scraping both instances and the TN-CR with monitoring/sks.rules.yml
#      shows SksInstanceDown firing for it, and inactive again after;
#   5b. the p11-kit server (the fleet's HSM) is killed with its process group
#      under ~100 req/s through HAProxy: both instances answer 503 POL5003
#      with Retry-After, HAProxy marks both down, SksTokenBreakerOpen fires;
#      site.yml --limit softhsm1 starts the server again; signing comes back
#      through HAProxy with the same sks processes, no request fails after
#      the first one signed, every token of the run verifies, the alert
#      clears; the time from the server's start to the first signed request
#      is printed;
#   6. rotate.yml rotates the key across the fleet under >= 200 signing
#      requests/s through HAProxy (mutual TLS), in two runs: the first stops
#      before retire (the drain has not passed), tokens from before, during
#      and after the switch (old and new x5u) are verified while the old URL
#      is still served; the second waits out the drain, retires and destroys.
#      No request fails; both instances sign with the new key and x5u; the
#      old URL is gone and the old key is no longer in the token; a third run
#      and a --check run change nothing;
#   7. rotate.yml renews the new key's certificate with --reuse-key under the
#      same load (key_rotation_replace_x5u): no request fails, both
#      instances sign with the same key at the new URL, the old URL is gone,
#      the key stays in the token, a second run changes nothing; and neither
#      does site.yml;
#   6b. (between the two rotation runs, under the same load) the controller's
#      fleet state and the control node's copy are deleted: rotate.yml must
#      refuse, -e phase=recover must bring the same generation back from an
#      instance's adopted state;
#   8. site.yml --limit sks under ~220 req/s through HAProxy: a profile change
#      (each instance reloaded once, same processes, the new SBC signs) and an
#      upgrade (each restarted on the new binary), one instance at a time by
#      HAProxy's stats, no failed request;
#   9. a rebuilt repository host under ~220 req/s through HAProxy: a chain
#      the fleet signs with is deleted from the TN-CR's folder, its x5u
#      answers 404; rotate.yml -e phase=republish serves every active x5u
#      again with the same bytes; no failed request.
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

LOAD_PID=
cleanup() {
  local rc=$?
  # The load of the rotation runs until a file appears: stop it first.
  [ -z "$LOAD_PID" ] || kill "$LOAD_PID" 2>/dev/null || true
  [ -z "${WATCH_PID:-}" ] || kill "$WATCH_PID" 2>/dev/null || true
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
  if [ "${PACKAGES_BEFORE:-1}" -eq 0 ]; then
    for p in sks tn-cr; do
      echo "$p install" | dpkg --set-selections 2>/dev/null || true
      dpkg --purge "$p" >/dev/null 2>&1 || true
    done
  fi
  rm -rf "$STATE"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The ports the CI inventory binds must be free (the demo of scripts/dev.sh
# uses 8443 too: it must be stopped first).
for port in 8443 9440 9441 9444 9445 9464 9465; do
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
    # The SBC step 8's profile change adds.
    issue client2 ci-sbc-2.example.net $'subjectAltName=DNS:ci-sbc-2.example.net\nextendedKeyUsage=clientAuth'
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
    # The failed tasks first: with several hosts, a failure can be far above
    # the end of the output.
    grep -B 3 -A 20 -E '^(fatal|failed): ' "$out" >&2 || true
    echo "--- last lines of $name" >&2
    tail -n 60 "$out" >&2
    fail "ansible-playbook $* failed"
  fi
  sed -n '/^PLAY RECAP/,$p' "$out" >&2
  # awk, not bc: a fresh Debian 12 (minimal image) has no bc.
  RECAP_CHANGED=$(sed -n '/^PLAY RECAP/,$p' "$out" | grep -o 'changed=[0-9]*' | cut -d= -f2 | awk '{ n += $1 } END { print n + 0 }')
  local bad
  bad=$(sed -n '/^PLAY RECAP/,$p' "$out" | grep -Eo '(failed|unreachable)=[1-9][0-9]*' || true)
  [ -z "$bad" ] || fail "$name: $bad"
}

log "state folder $STATE, build $BUILD"
make_tls

# The production install path: the Debian packages of this build (cpack,
# packaging/), installed by the roles with dpkg on this machine. Removed
# again on exit unless they were installed before the run.
PACKAGES_BEFORE=$(dpkg-query -W -f='${Package} ${Status}\n' sks tn-cr 2>/dev/null | grep -c ' installed$' || true)
log "cpack: the sks and tn-cr packages of $BUILD"
(cd "$BUILD" && nice -n 10 cpack -G DEB -B "$STATE/packages" >"$STATE/cpack.out" 2>&1) ||
  { cat "$STATE/cpack.out" >&2; fail "cpack"; }
ls "$STATE"/packages/sks_*.deb "$STATE"/packages/tn-cr_*.deb >/dev/null || fail "cpack made no sks or tn-cr package"
# Depends from dpkg-shlibdeps (the libraries a copied binary lacked), and the unit.
grep -q 'libtomlplusplus3' <<<"$(dpkg-deb -f "$STATE"/packages/sks_*.deb Depends)" ||
  fail "the sks package does not depend on libtomlplusplus3"
grep -q '/lib/systemd/system/sks.service$' <<<"$(dpkg-deb -c "$STATE"/packages/sks_*.deb)" ||
  fail "the sks package has no unit"
PACKAGE_VERSION=$(dpkg-deb -f "$STATE"/packages/sks_*.deb Version)

playbook site-1 site.yml
[ "$(dpkg-query -W -f='${Version}' sks tn-cr)" = "$PACKAGE_VERSION$PACKAGE_VERSION" ] ||
  fail "site.yml did not install sks and tn-cr $PACKAGE_VERSION"
getent passwd sks tn-cr >/dev/null || fail "the packages did not create the sks and tn-cr users"
log "installed: sks and tn-cr $PACKAGE_VERSION (packages), their users exist"
playbook site-2 site.yml
[ "$RECAP_CHANGED" -eq 0 ] || { grep -B3 '^changed:' "$STATE/site-2.out" >&2 || true; fail "second run of site.yml changed $RECAP_CHANGED task(s)"; }
log "second run: changed=0"
playbook site-check site.yml --check --diff
[ "$RECAP_CHANGED" -eq 0 ] || { grep -B3 '^changed:' "$STATE/site-check.out" >&2 || true; fail "check mode would change $RECAP_CHANGED task(s)"; }
log "check mode: changed=0"

log "ansible-lint --profile production; yamllint"
(cd "$ANSIBLE_DIR" && nice -n 10 ansible-lint --offline --profile production --nocolor -q) || fail "ansible-lint"
(cd "$ANSIBLE_DIR" && yamllint -s .) || fail "yamllint"

# The production example makes configs that load: every sks host's through
# `sks check-config` (the packaged binary), every HAProxy's through
# `haproxy -c` (tests/render-production.yml; stand-in TLS files, no host).
log "the production inventory rendered: sks check-config, haproxy -c"
(cd "$ANSIBLE_DIR" && nice -n 10 ansible-playbook -i inventories/production/hosts.yml \
  tests/render-production.yml -e "render_dir=$STATE/render" -e "render_tls=$TLS") >"$STATE/render.out" 2>&1 ||
  { grep -A 12 -E '^(fatal|failed): ' "$STATE/render.out" >&2; tail -n 20 "$STATE/render.out" >&2; fail "the production inventory's configs"; }

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
SKS=/usr/bin/sks   # from the package

verify_identities() { # file of JSON lines {identity, orig, dest[, iat]}; checks every Nth
  local file=$1 every=$2 n=0 checked=0 identity orig dest iat
  # A token is checked as a verifier did when it arrived (at its iat).
  while IFS=$'\t' read -r identity orig dest iat; do
    n=$((n + 1))
    [ $((n % every)) -eq 1 ] || [ "$every" -eq 1 ] || continue
    "$SKS" verify --config "$VERIFY_CONFIG" --identity "$identity" --from "$orig" --to "$dest" \
      ${iat:+--time "$iat"} >/dev/null || fail "token $n does not verify: $identity"
    checked=$((checked + 1))
  done < <(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print("\t".join([r["identity"], r["orig"], r["dest"], str(r.get("iat", ""))]))' "$file")
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

# The fleet's token is the p11-kit server's (hsm_remote): both instances load
# the client module, and the server holds a connection (a p11-kit-remote
# process) for each of them.
P11_PID=$(cat "$STATE/softhsm1/run/softhsm1-p11.pid")
for instance in sks1 sks2; do
  grep -q '^module = ".*/p11-kit-client.so"' "$STATE/$instance/etc/sks.toml" || fail "$instance does not load p11-kit-client.so"
done
REMOTES=$(pgrep -c -P "$P11_PID" -x p11-kit-remote || true)
[ "$REMOTES" -ge 2 ] || fail "p11-kit server $P11_PID holds $REMOTES connection(s); both sks instances should hold one"
log "both instances sign on the remote token: p11-kit server $P11_PID serves $REMOTES connection(s)"

# /metrics is on each instance's metrics listener only ([metrics], mutual
# TLS, its own allow-list): the SBCs' ports and HAProxy answer it 404, an
# SBC identity is refused there, the check identity (the CI's Prometheus)
# reads it.
metrics_code() { # URL CERT-NAME: the status code of GET URL with that client certificate
  curl -sS -o /dev/null -w '%{http_code}' --cacert "$TLS/ca.pem" --cert "$TLS/$2.pem" \
    --key "$TLS/$2.key" "$1" || true
}
for url in https://127.0.0.1:9440/metrics https://127.0.0.1:9444/metrics https://127.0.0.1:9445/metrics; do
  [ "$(metrics_code "$url" client)" = 404 ] || fail "$url does not answer 404 to an SBC"
done
for port in 9464 9465; do
  [ "$(metrics_code "https://127.0.0.1:$port/metrics" check)" = 200 ] || fail "the metrics listener on :$port does not serve the check identity"
  [ "$(metrics_code "https://127.0.0.1:$port/metrics" client)" = 403 ] || fail "the metrics listener on :$port does not refuse an SBC"
done
log "/metrics: 404 through HAProxy and on the SBCs' ports; 200 on the metrics listeners (9464, 9465) for Prometheus's identity, 403 for an SBC"

# A real Prometheus scrapes both instances' metrics listeners and the TN-CR
# (its /metrics for the check identity, tn_cr_metrics_clients) with
# monitoring/sks.rules.yml: the kill below must fire SksInstanceDown for
# sks2, and site.yml clear it.
PROM=$ANSIBLE_DIR/../monitoring/prometheus.sh
"$PROM" start "$STATE/prometheus" "$TLS/ca.pem" "$TLS/check.pem" "$TLS/check.key" \
  127.0.0.1:9464 127.0.0.1:9465 tn-cr=127.0.0.1:8443 || fail "Prometheus does not scrape both instances and the TN-CR"
"$PROM" alert "$STATE/prometheus" TnCrDown 127.0.0.1:8443 inactive 5 || fail "TnCrDown with the TN-CR up"
"$PROM" alert "$STATE/prometheus" SksInstanceDown 127.0.0.1:9465 inactive 5 || fail "SksInstanceDown before the kill"

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

"$PROM" alert "$STATE/prometheus" SksInstanceDown 127.0.0.1:9465 firing 30 || fail "no SksInstanceDown for the killed sks2"

log "site.yml --limit sks2 brings sks2 back"
playbook site-heal site.yml --limit sks2
[ "$RECAP_CHANGED" -ge 1 ] || fail "site.yml did not start sks2 again"
curl -sS --fail --cacert "$TLS/ca.pem" --cert "$TLS/check.pem" --key "$TLS/check.key" \
  https://127.0.0.1:9445/readyz >/dev/null || fail "sks2 is not ready after site.yml"
"$PROM" alert "$STATE/prometheus" SksInstanceDown 127.0.0.1:9465 inactive 30 || fail "SksInstanceDown stays after sks2 is back"

# ---- 5b. the HSM goes away under load, and comes back (issue 19)
# The p11-kit server and its p11-kit-remote children (one process group:
# start-stop-daemon --background starts it in a session of its own, whose
# leader exits at once, so the group's id is not the server's pid) are
# killed under signing load through HAProxy. Every instance must then answer
# 503 POL5003 with Retry-After, HAProxy must mark both down (/readyz), and
# Prometheus fire SksTokenBreakerOpen. site.yml --limit softhsm1 starts the
# server again, as an operator would; signing must come back through HAProxy
# with the same sks processes, no request may fail after the first signed
# one, and every token signed in the run must verify at its own x5u.
P11_PIDFILE=$STATE/softhsm1/run/softhsm1-p11.pid
P11_PID=$(cat "$P11_PIDFILE")
P11_PGID=$(ps -o pgid= -p "$P11_PID" | tr -d ' ')
[ -n "$P11_PGID" ] && [ "$P11_PGID" != "$(ps -o pgid= -p $$ | tr -d ' ')" ] ||
  fail "p11-kit server $P11_PID has no process group of its own"
[ "$(pgrep -g "$P11_PGID" -x p11-kit-remote | wc -l)" -ge 2 ] ||
  fail "the p11-kit-remote processes are not in the server's process group $P11_PGID"
proc_id() { # pidfile: "pid start-time" of the live process
  local pid
  pid=$(cat "$1")
  echo "$pid $(cut -d' ' -f22 "/proc/$pid/stat")"
}
SKS_BEFORE="$(proc_id "$STATE/sks1/run/sks1.pid") $(proc_id "$STATE/sks2/run/sks2.pid")"
haproxy_state() { # "sks1=UP sks2=DOWN" from HAProxy's stats CSV
  python3 - <<'PY'
import csv, io, urllib.request
with urllib.request.urlopen("http://127.0.0.1:9441/;csv", timeout=2) as r:
    rows = csv.DictReader(io.StringIO(r.read().decode().lstrip("# ")))
    print(" ".join(r["svname"] + "=" + r["status"].split()[0] for r in rows
                   if r["pxname"] == "sks" and r["svname"] in ("sks1", "sks2")))
PY
}
wait_for() { # SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.1 s until it succeeds
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "after $seconds s: $what"
    sleep 0.1
  done
}
lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
refused_while_token_gone() { # port: signing answers 503 POL5003 with Retry-After
  local code
  code=$(curl -sS -o "$STATE/hsm-503-$1.body" -D "$STATE/hsm-503-$1.headers" -w '%{http_code}' \
    --cacert "$TLS/ca.pem" --cert "$TLS/client.pem" --key "$TLS/client.key" \
    -H 'Content-Type: application/json' -H 'Accept: application/json' \
    --data "{\"signingRequest\":{\"attest\":\"A\",\"dest\":{\"tn\":[\"12155550199\"]},\"iat\":$(date +%s),\"orig\":{\"tn\":\"12155550121\"}}}" \
    "https://127.0.0.1:$1/stir/v1/signing" 2>/dev/null) || return 1
  [ "$code" = 503 ] && grep -q POL5003 "$STATE/hsm-503-$1.body" && grep -qi '^retry-after: 1' "$STATE/hsm-503-$1.headers"
}
haproxy_is() { [ "$(haproxy_state)" = "sks1=$1 sks2=$1" ]; }
[ "$(haproxy_state)" = "sks1=UP sks2=UP" ] || fail "HAProxy before the HSM kill: $(haproxy_state)"

HSM_STOP=$STATE/hsm-load.stop
HSM_SIGNED=$STATE/signed-hsm.jsonl
HSM_RESULTS=$STATE/results-hsm.jsonl
log "kill p11-kit server $P11_PID (process group $P11_PGID: $(pgrep -g "$P11_PGID" | wc -l) processes) under ~100 signing requests/s through HAProxy"
python3 "$HERE/load.py" --port 9440 --cert "$TLS/client.pem" --key "$TLS/client.key" \
  --ca "$TLS/ca.pem" --rate 100 --workers 8 --until-file "$HSM_STOP" \
  --identities "$HSM_SIGNED" --results "$HSM_RESULTS" >"$STATE/hsm-load.json" &
LOAD_PID=$!
wait_for 30 "no signed request through HAProxy before the HSM kill" eval '[ "$(lines "$HSM_SIGNED")" -ge 100 ]'
HSM_KILLED=$(date +%s.%N)
kill -KILL -- "-$P11_PGID"
wait_for 10 "p11-kit server's process group still has processes" eval '! pgrep -g "$P11_PGID" >/dev/null'
for port in 9444 9445; do
  wait_for 30 "127.0.0.1:$port does not answer 503 POL5003 with Retry-After: 1" refused_while_token_gone "$port"
done
log "both instances answer 503 POL5003 with Retry-After: 1 ($(head -c 200 "$STATE/hsm-503-9444.body"))"
wait_for 30 "HAProxy does not mark both instances down: $(haproxy_state)" haproxy_is DOWN
log "HAProxy: $(haproxy_state) ($(python3 -c 'import sys,time; print(round(time.time() - float(sys.argv[1]), 2))' "$HSM_KILLED") s after the kill)"
for port in 9464 9465; do
  "$PROM" alert "$STATE/prometheus" SksTokenBreakerOpen "127.0.0.1:$port" firing 30 || fail "no SksTokenBreakerOpen for 127.0.0.1:$port"
done

log "site.yml --limit softhsm1 starts the p11-kit server again"
playbook hsm-heal site.yml --limit softhsm1
[ "$RECAP_CHANGED" -ge 1 ] || fail "site.yml did not start the p11-kit server again"
[ "$(cat "$P11_PIDFILE")" != "$P11_PID" ] || fail "the p11-kit server's pidfile still names $P11_PID"
# The HSM is back from the moment start-stop-daemon wrote the new pidfile.
HSM_BACK=$(python3 -c 'import os,sys; print(os.stat(sys.argv[1]).st_mtime)' "$P11_PIDFILE")
wait_for 60 "HAProxy does not mark both instances up again: $(haproxy_state)" haproxy_is UP
HSM_UP=$(date +%s.%N)
AFTER=$(($(lines "$HSM_SIGNED") + 200))
wait_for 30 "signing through HAProxy does not go on after the HSM came back" eval '[ "$(lines "$HSM_SIGNED")" -ge "$AFTER" ]'
touch "$HSM_STOP"
rc=0
wait "$LOAD_PID" || rc=$?
LOAD_PID=
cat "$STATE/hsm-load.json" >&2
[ "$rc" -eq 0 ] || fail "the load during the HSM outage failed (nothing signed?)"
[ "$(proc_id "$STATE/sks1/run/sks1.pid") $(proc_id "$STATE/sks2/run/sks2.pid")" = "$SKS_BEFORE" ] ||
  fail "an sks instance was restarted during the HSM outage"
python3 - "$HSM_RESULTS" "$HSM_KILLED" "$HSM_BACK" "$HSM_UP" <<'PY' >&2 || fail "requests failed after signing came back"
import collections, json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
killed, back, up = map(float, sys.argv[2:5])
first = min((r for r in rows if r["ok"] and r["start"] >= back), key=lambda r: r["end"], default=None)
if first is None:
    sys.exit("no signed request after the HSM came back")
kinds = collections.Counter(r["detail"].split(":")[0][:40] for r in rows if not r["ok"])
after = [r for r in rows if not r["ok"] and r["start"] >= first["end"]]
print(f"HSM outage: {len(rows)} requests, {sum(r['ok'] for r in rows)} signed, "
      f"{len(rows) - sum(r['ok'] for r in rows)} failed ({dict(kinds)}); "
      f"{sum(1 for r in rows if r['ok'] and r['start'] < killed)} signed before the kill, "
      f"{sum(1 for r in rows if r['ok'] and r['start'] >= first['end'])} after the recovery")
print(f"HSM outage: the server was gone {back - killed:.2f} s; first request signed through HAProxy "
      f"{first['end'] - back:.2f} s after the p11-kit server started; HAProxy saw both instances up "
      f"{up - back:.2f} s after it")
if after:
    sys.exit(f"{len(after)} request(s) failed after the first one signed: {after[:3]}")
PY
log "signing came back without restarting sks1 or sks2 (pids $SKS_BEFORE)"
for port in 9464 9465; do
  "$PROM" alert "$STATE/prometheus" SksTokenBreakerOpen "127.0.0.1:$port" inactive 30 || fail "SksTokenBreakerOpen stays for 127.0.0.1:$port"
done
verify_identities "$HSM_SIGNED" 1
"$PROM" stop "$STATE/prometheus"

# ---- 6. key rotation across the fleet under load
FLEET_CONFIG=$STATE/sks1/etc/fleet-rotation.toml
OLD_KEY=shaken-ci-1
OLD_X5U=https://127.0.0.1:8443/$OLD_KEY.pem
json_field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {'d': d}))" "$@"; }
info_of() { sed -n 's/.*;info=<\([^>]*\)>.*/\1/p'; }

# ~220 signing requests/s through HAProxy over mutual TLS (8 keep-alive
# connections, as SBCs keep them) until STOP-FILE exists; its summary in SUMMARY.
start_load() { # STOP-FILE SUMMARY [load.py options]
  local stop=$1 summary=$2
  shift 2
  python3 "$HERE/load.py" --port 9440 --cert "$TLS/client.pem" --key "$TLS/client.key" \
    --ca "$TLS/ca.pem" --rate 220 --workers 8 --until-file "$stop" "$@" >"$summary" &
  LOAD_PID=$!
}
# Ends start_load's load and fails unless it ran and no request failed.
stop_load() { # STOP-FILE SUMMARY WHAT
  local rc=0
  touch "$1"
  wait "$LOAD_PID" || rc=$?
  LOAD_PID=
  cat "$2" >&2
  [ "$rc" -eq 0 ] || fail "the load during $3 failed"
  [ "$(json_field "$2" "d['failed']")" -eq 0 ] || fail "requests failed during $3"
}

STOP=$STATE/rotation-load.stop
SIGNED=$STATE/signed-rotation.jsonl
log "rotate.yml under ~220 signing requests/s through HAProxy (mutual TLS), for the whole rotation"
start_load "$STOP" "$STATE/rotation-load.json" --identities "$SIGNED"
ROTATE_ARGS=(-e key_rotation_replace_key=$OLD_KEY)
playbook rotate-1 rotate.yml "${ROTATE_ARGS[@]}" -e key_rotation_stop_before_retire=true
"$SKS" rotate status --config "$FLEET_CONFIG" --json >"$STATE/fleet-status.json"
NEW_KEY=$(json_field "$STATE/fleet-status.json" "[k['label'] for k in d['profiles'][0]['keys'] if k['state'] == 'active'][0]")
NEW_X5U=$(json_field "$STATE/fleet-status.json" "[k['x5u'] for k in d['profiles'][0]['keys'] if k['state'] == 'active'][0]")
[ "$NEW_KEY" != "$OLD_KEY" ] || fail "no new key is active after rotate.yml"
log "active: $NEW_KEY ($NEW_X5U); $OLD_KEY drains"

# Tokens from before, during and after the switch of the two instances
# (both x5u), checked while the old URL is still served.
python3 - "$SIGNED" "$OLD_X5U" "$NEW_X5U" >"$STATE/sample-switch.jsonl" <<'PY'
import json, sys
rows = sorted((json.loads(line) for line in open(sys.argv[1]) if line.strip()), key=lambda r: r["t"])
x5u = [r["identity"].split(";info=<", 1)[1].split(">", 1)[0] for r in rows]
old, new = sys.argv[2], sys.argv[3]
assert set(x5u) <= {old, new}, set(x5u) - {old, new}
first_new = x5u.index(new)
last_old = len(x5u) - 1 - x5u[::-1].index(old)
pick = set(range(5)) | set(range(len(rows) - 5, len(rows)))
for at in (first_new, last_old):
    pick |= set(range(max(0, at - 5), min(len(rows), at + 5)))
pick |= set(range(0, len(rows), 2000))
for i in sorted(pick):
    print(json.dumps(rows[i]))
print(f"switch: first new-x5u token at {rows[first_new]['t']} s, last old-x5u token at "
      f"{rows[last_old]['t']} s; {x5u.count(old)} old, {x5u.count(new)} new so far; checking {len(pick)}",
      file=sys.stderr)
PY
verify_identities "$STATE/sample-switch.jsonl" 1

# ---- 6b. the controller's fleet state is lost mid-rotation (the new key
# active, the old one draining), and so is the control node's copy; the
# load goes on. rotate.yml must refuse to act on what is left; phase
# recover takes the newest copy (an instance's adopted state) back; the
# rotation then goes on from it.
FLEET_STATE=$STATE/sks1/var/fleet-rotation/state.json
said() { # REGEX FILE: Ansible's output says it (its lines unwrapped)
  python3 -c 'import re, sys; sys.exit(not re.search(sys.argv[1], " ".join(open(sys.argv[2]).read().split())))' "$@"
}
STATE_COPY=$STATE/pki-work/fleet-state.json
LOST_GENERATION=$(json_field "$FLEET_STATE" "d['generation']")
[ "$(json_field "$STATE_COPY" "d['generation']")" = "$LOST_GENERATION" ] ||
  fail "the control node's copy of the fleet state is not at generation $LOST_GENERATION"
rm -f "$FLEET_STATE" "$STATE_COPY"
log "the controller's fleet state (generation $LOST_GENERATION) and the control node's copy deleted"
if (cd "$ANSIBLE_DIR" && nice -n 10 ansible-playbook -i "$INVENTORY" rotate.yml "${ROTATE_ARGS[@]}") \
  >"$STATE/rotate-lost.out" 2>&1; then
  fail "rotate.yml ran on a controller that lost its fleet state"
fi
said "older than sks[12]:\\S+ at generation $LOST_GENERATION: the state on the controller was lost" "$STATE/rotate-lost.out" ||
  { tail -n 30 "$STATE/rotate-lost.out" >&2; fail "rotate.yml did not stop on the lost fleet state"; }
[ ! -e "$FLEET_STATE" ] || fail "the refused run wrote a fleet state"
log "rotate.yml refused the lost state"
playbook recover rotate.yml -e phase=recover
[ "$(json_field "$FLEET_STATE" "d['generation']")" = "$LOST_GENERATION" ] || fail "recover did not bring back generation $LOST_GENERATION"
cmp -s "$FLEET_STATE" "$STATE_COPY" || fail "the control node's copy is not the recovered state"
said "recovered the fleet rotation state at generation $LOST_GENERATION from sks[12]:" "$STATE/recover.out" ||
  fail "recover did not say where the state came from"
log "recovered generation $LOST_GENERATION from an instance's adopted state"

playbook rotate-2 rotate.yml "${ROTATE_ARGS[@]}"
touch "$STOP"
rc=0
wait "$LOAD_PID" || rc=$?
LOAD_PID=
[ "$rc" -eq 0 ] || { cat "$STATE/rotation-load.json" >&2; fail "the load during the rotation failed"; }
cat "$STATE/rotation-load.json" >&2
[ "$(json_field "$STATE/rotation-load.json" "d['failed']")" -eq 0 ] || fail "requests failed during the rotation"
[ "$(json_field "$STATE/rotation-load.json" "int(d['rate'] >= 200)")" -eq 1 ] || fail "the load was under 200 requests/s"
[ "$(json_field "$STATE/rotation-load.json" "len(d['x5u'])")" -eq 2 ] || fail "the load did not see both x5u"
log "load during the rotation: $(json_field "$STATE/rotation-load.json" "f\"{d['requests']} requests, {d['failed']} failed, {d['rate']}/s over {d['seconds']} s, by x5u {d['x5u']}\"")"
tail -n 5 "$SIGNED" >"$STATE/sample-after.jsonl"
verify_identities "$STATE/sample-after.jsonl" 1

log "both instances sign with $NEW_KEY and $NEW_X5U; $OLD_X5U is gone; $OLD_KEY is destroyed"
for port in 9444 9445; do
  python3 "$HERE/load.py" --port "$port" --cert "$TLS/client.pem" --key "$TLS/client.key" \
    --ca "$TLS/ca.pem" --rate 20 --duration 1 --workers 2 --expect-no-failures \
    --identities "$STATE/direct-$port.jsonl" >/dev/null || fail "signing on 127.0.0.1:$port"
  [ "$(info_of <"$STATE/direct-$port.jsonl" | sort -u)" = "$NEW_X5U" ] ||
    fail "127.0.0.1:$port does not sign with $NEW_X5U only"
  curl -sS --fail --cacert "$TLS/ca.pem" --cert "$TLS/check.pem" --key "$TLS/check.key" \
    "https://127.0.0.1:$port/admin/v1/keys" | grep -q "\"key\":\"$NEW_KEY\"" || fail "127.0.0.1:$port: /admin/v1/keys"
done
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$TLS/ca.pem" "$OLD_X5U")
[ "$code" = 404 ] || fail "$OLD_X5U answers $code after retire"
"$SKS" keys list --config "$STATE/sks1/etc/sks.toml" --json >"$STATE/token-keys.json"
[ "$(json_field "$STATE/token-keys.json" "int('$OLD_KEY' in [k['label'] for k in d])")" -eq 0 ] || fail "$OLD_KEY is still in the token"
[ "$(json_field "$STATE/token-keys.json" "int('$NEW_KEY' in [k['label'] for k in d])")" -eq 1 ] || fail "$NEW_KEY is not in the token"

playbook rotate-3 rotate.yml "${ROTATE_ARGS[@]}"
[ "$RECAP_CHANGED" -eq 0 ] || { grep -B3 '^changed:' "$STATE/rotate-3.out" >&2 || true; fail "a second run of rotate.yml changed $RECAP_CHANGED task(s)"; }
log "rotate.yml again: changed=0"
playbook rotate-check rotate.yml "${ROTATE_ARGS[@]}" --check --diff
[ "$RECAP_CHANGED" -eq 0 ] || { grep -B3 '^changed:' "$STATE/rotate-check.out" >&2 || true; fail "rotate.yml in check mode would change $RECAP_CHANGED task(s)"; }
log "rotate.yml --check: changed=0"

# ---- 7. a certificate renewal of the same key (--reuse-key) across the fleet under load
# The key stays active with a new certificate at a new URL; every check
# compares the (key, x5u) pair, so the draining entry (same key, old URL)
# retires once no instance signs with that pair.
RENEW_STOP=$STATE/renew-load.stop
RENEW_SIGNED=$STATE/signed-renew.jsonl
log "rotate.yml --reuse-key: $NEW_KEY renewed under ~220 signing requests/s through HAProxy"
start_load "$RENEW_STOP" "$STATE/renew-load.json" --identities "$RENEW_SIGNED"
RENEW_ARGS=(-e key_rotation_reuse_key=true -e "key_rotation_replace_x5u=$NEW_X5U")
playbook renew-1 rotate.yml "${RENEW_ARGS[@]}"
stop_load "$RENEW_STOP" "$STATE/renew-load.json" "the --reuse-key renewal"
[ "$(json_field "$STATE/renew-load.json" "len(d['x5u'])")" -eq 2 ] || fail "the load did not see both x5u of the renewal"
"$SKS" rotate status --config "$FLEET_CONFIG" --json >"$STATE/fleet-status-renew.json"
RENEW_KEY=$(json_field "$STATE/fleet-status-renew.json" "[k['label'] for k in d['profiles'][0]['keys'] if k['state'] == 'active'][0]")
RENEW_X5U=$(json_field "$STATE/fleet-status-renew.json" "[k['x5u'] for k in d['profiles'][0]['keys'] if k['state'] == 'active'][0]")
[ "$RENEW_KEY" = "$NEW_KEY" ] || fail "the --reuse-key renewal changed the key ($RENEW_KEY)"
[ "$RENEW_X5U" != "$NEW_X5U" ] || fail "the --reuse-key renewal kept the x5u"
tail -n 5 "$RENEW_SIGNED" >"$STATE/sample-renew.jsonl"
verify_identities "$STATE/sample-renew.jsonl" 1
for port in 9444 9445; do
  python3 "$HERE/load.py" --port "$port" --cert "$TLS/client.pem" --key "$TLS/client.key" \
    --ca "$TLS/ca.pem" --rate 20 --duration 1 --workers 2 --expect-no-failures \
    --identities "$STATE/renew-direct-$port.jsonl" >/dev/null || fail "signing on 127.0.0.1:$port"
  [ "$(info_of <"$STATE/renew-direct-$port.jsonl" | sort -u)" = "$RENEW_X5U" ] ||
    fail "127.0.0.1:$port does not sign with $RENEW_X5U only"
done
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$TLS/ca.pem" "$NEW_X5U")
[ "$code" = 404 ] || fail "$NEW_X5U answers $code after the renewal's retire"
"$SKS" keys list --config "$STATE/sks1/etc/sks.toml" --json >"$STATE/token-keys-renew.json"
[ "$(json_field "$STATE/token-keys-renew.json" "int('$NEW_KEY' in [k['label'] for k in d])")" -eq 1 ] || fail "$NEW_KEY left the token in a --reuse-key renewal"
log "renewed: $NEW_KEY signs with $RENEW_X5U on both instances; $NEW_X5U is gone, the key stays"
playbook renew-2 rotate.yml "${RENEW_ARGS[@]}"
[ "$RECAP_CHANGED" -eq 0 ] || { grep -B3 '^changed:' "$STATE/renew-2.out" >&2 || true; fail "a second run of the --reuse-key renewal changed $RECAP_CHANGED task(s)"; }

playbook site-3 site.yml
[ "$RECAP_CHANGED" -eq 0 ] || { grep -B3 '^changed:' "$STATE/site-3.out" >&2 || true; fail "site.yml after the rotation changed $RECAP_CHANGED task(s)"; }
log "site.yml after the rotation: changed=0"

# ---- 8. rolling changes under load: a profile change, then an upgrade
# Both through site.yml (serial: 1) under ~220 signing requests/s through
# HAProxy. The profile change (a second SBC) must reload each instance
# (same processes, each reports one more reload) and the new SBC must sign
# on both; the upgrade (a changed binary, with the install method the
# inventory uses: UPGRADE_ARGS) must restart each one (new processes
# running the new binary). HAProxy's stats, read every 100 ms, must show
# each instance taken out (DRAIN) and never both at once; no request fails.
instance_id() { # pidfile: "pid start-time" of the live process
  local pid
  pid=$(cat "$1")
  echo "$pid $(cut -d' ' -f22 "/proc/$pid/stat")"
}
reloads_of() { # port: the count of reloads the instance reports
  curl -sS --fail --cacert "$TLS/ca.pem" --cert "$TLS/check.pem" --key "$TLS/check.key" \
    "https://127.0.0.1:$1/admin/v1/keys" | python3 -c 'import json,sys; print(json.load(sys.stdin)["reloads"])'
}
ROLL_STOP=$STATE/roll-load.stop
log "rolling changes under ~220 signing requests/s through HAProxy"
start_load "$ROLL_STOP" "$STATE/roll-load.json" --results "$STATE/results-roll.jsonl"
python3 - "$STATE/haproxy-roll.log" "$ROLL_STOP" <<'PY' &
import csv, io, os, sys, time, urllib.request
out, stop = sys.argv[1], sys.argv[2]
with open(out, "w") as f:
    while not os.path.exists(stop) and os.path.isdir(os.path.dirname(out)):
        try:
            with urllib.request.urlopen("http://127.0.0.1:9441/;csv", timeout=1) as r:
                rows = csv.DictReader(io.StringIO(r.read().decode().lstrip("# ")))
                f.write(" ".join(r["svname"] + "=" + r["status"].replace(" ", "_") for r in rows
                                 if r["pxname"] == "sks" and r["svname"] in ("sks1", "sks2")) + "\n")
                f.flush()
        except OSError:
            pass
        time.sleep(0.1)
PY
WATCH_PID=$!
BEFORE="$(instance_id "$STATE/sks1/run/sks1.pid") $(instance_id "$STATE/sks2/run/sks2.pid")"
RELOADS_BEFORE="$(reloads_of 9444) $(reloads_of 9445)"
ROLL_START=$SECONDS
playbook roll-profile site.yml --limit sks -e '{"ci_extra_clients": ["ci-sbc-2.example.net"]}'
[ "$(instance_id "$STATE/sks1/run/sks1.pid") $(instance_id "$STATE/sks2/run/sks2.pid")" = "$BEFORE" ] ||
  fail "the profile change restarted an instance"
read -r r1 r2 <<<"$RELOADS_BEFORE"
[ "$(reloads_of 9444) $(reloads_of 9445)" = "$((r1 + 1)) $((r2 + 1))" ] ||
  fail "the profile change did not reload each instance once ($RELOADS_BEFORE -> $(reloads_of 9444) $(reloads_of 9445))"
for port in 9444 9445; do
  python3 "$HERE/load.py" --port "$port" --cert "$TLS/client2.pem" --key "$TLS/client2.key" \
    --ca "$TLS/ca.pem" --rate 20 --duration 0.5 --workers 1 --expect-no-failures >/dev/null ||
    fail "ci-sbc-2.example.net does not sign on 127.0.0.1:$port after the profile change"
done
log "profile change: both instances reloaded (same processes), ci-sbc-2.example.net signs on both ($((SECONDS - ROLL_START)) s)"

# The upgrade: the next version of the sks package (this build's package
# repacked: version +ciupgrade1, the binary with trailing bytes so the file a
# process runs can be told apart), installed through the role's
# sks_package_file as a repository's new version would be. dpkg replaces
# /usr/bin/sks for both instances at once; each keeps running the old file
# until its own turn restarts it.
UPGRADE_DIR=$STATE/upgrade
mkdir -p "$UPGRADE_DIR"
dpkg-deb -R "$STATE"/packages/sks_*.deb "$UPGRADE_DIR/root"
UPGRADE_VERSION=$PACKAGE_VERSION+ciupgrade1
sed -i "s/^Version: .*/Version: $UPGRADE_VERSION/" "$UPGRADE_DIR/root/DEBIAN/control"
printf '\nsks ci upgrade %s\n' "$UPGRADE_VERSION" >>"$UPGRADE_DIR/root/usr/bin/sks"
(cd "$UPGRADE_DIR/root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | xargs -0 md5sum >DEBIAN/md5sums)
UPGRADE_DEB=$UPGRADE_DIR/sks_${UPGRADE_VERSION}_amd64.deb
dpkg-deb -b --root-owner-group "$UPGRADE_DIR/root" "$UPGRADE_DEB" >/dev/null || fail "repacking the sks package as $UPGRADE_VERSION"
UPGRADE_ARGS=(-e "sks_package_file=$UPGRADE_DEB")
UPGRADE_START=$SECONDS
playbook roll-upgrade site.yml --limit sks "${UPGRADE_ARGS[@]}"
[ "$(dpkg-query -W -f='${Version}' sks)" = "$UPGRADE_VERSION" ] || fail "site.yml did not install sks $UPGRADE_VERSION"
for n in 1 2; do
  read -r pid _ <<<"$(instance_id "$STATE/sks$n/run/sks$n.pid")"
  case " $BEFORE " in *" $pid "*) fail "sks$n was not restarted by the upgrade" ;; esac
  exe=$(readlink "/proc/$pid/exe")
  [ "$exe" = /usr/bin/sks ] || fail "sks$n (pid $pid) runs '$exe', not the installed /usr/bin/sks"
  cmp -s "/proc/$pid/exe" "$UPGRADE_DIR/root/usr/bin/sks" || fail "sks$n (pid $pid) does not run the binary of sks $UPGRADE_VERSION"
done
log "upgrade: sks $UPGRADE_VERSION installed, both instances restarted on its binary ($((SECONDS - UPGRADE_START)) s)"
touch "$ROLL_STOP"
rc=0
wait "$LOAD_PID" || rc=$?
LOAD_PID=
wait "$WATCH_PID" || true
WATCH_PID=
cat "$STATE/roll-load.json" >&2
[ "$rc" -eq 0 ] || fail "the load during the rolling changes failed"
[ "$(json_field "$STATE/roll-load.json" "d['failed']")" -eq 0 ] || fail "requests failed during the rolling changes"
[ "$(json_field "$STATE/roll-load.json" "int(d['rate'] >= 200)")" -eq 1 ] || fail "the load was under 200 requests/s"
python3 - "$STATE/haproxy-roll.log" <<'PY' >&2 || fail "HAProxy's view of the rolling changes"
import sys
samples = [dict(kv.split("=", 1) for kv in line.split()) for line in open(sys.argv[1]) if line.strip()]
# Out of service: drained, in maintenance or down ("UP_1/2", a check that
# failed once, still takes connections).
def out_of_service(s, name):
    return not s.get(name, "UP").startswith("UP")
out = {name: sum(1 for s in samples if out_of_service(s, name)) for name in ("sks1", "sks2")}
both = [s for s in samples if all(out_of_service(s, n) for n in ("sks1", "sks2"))]
print(f"HAProxy during the rolling changes: {len(samples)} samples, out of service: {out}, both at once: {len(both)}")
if both:
    sys.exit(f"both instances out of service at once: {both[:3]}")
if not all(out.values()):
    sys.exit("an instance was never taken out of service")
PY
log "rolling changes: $(json_field "$STATE/roll-load.json" "f\"{d['requests']} requests, {d['failed']} failed, {d['rate']}/s over {d['seconds']} s\"")"

# ---- 9. a rebuilt repository host: rotate.yml -e phase=republish
# The chain of the key the fleet signs with is deleted from the TN-CR's
# folder, as on a repository host rebuilt from scratch, under ~220 signing
# requests/s through HAProxy: its x5u answers 404. rotate.yml -e
# phase=republish must put back every chain the fleet state says is served
# (published, active, draining): each x5u answers 200 with the same bytes
# as before. No request fails (signing never waits on the repository).
STEP9_START=$SECONDS
CR_DIR=$STATE/cr1/certs
"$SKS" rotate status --config "$FLEET_CONFIG" --json >"$STATE/fleet-status-9.json"
mapfile -t SERVED_X5U < <(json_field "$STATE/fleet-status-9.json" \
  "'\\n'.join(k['x5u'] for p in d['profiles'] for k in p['keys'] if k['state'] in ('published', 'active', 'draining') and k.get('x5u'))")
ACTIVE_X5U=$(json_field "$STATE/fleet-status-9.json" "[k['x5u'] for k in d['profiles'][0]['keys'] if k['state'] == 'active'][0]")
[ "${#SERVED_X5U[@]}" -ge 1 ] || fail "the fleet state names no served x5u"
x5u_code() { curl -sS -o "${2:-/dev/null}" -w '%{http_code}' --cacert "$TLS/ca.pem" "$1" || true; }
n=0
for x5u in "${SERVED_X5U[@]}"; do
  n=$((n + 1))
  [ "$(x5u_code "$x5u" "$STATE/x5u-before-$n.pem")" = 200 ] || fail "$x5u is not served before the deletion"
done
REPUB_STOP=$STATE/republish-load.stop
log "a rebuilt repository host under ~220 signing requests/s through HAProxy: ${#SERVED_X5U[@]} served x5u (${SERVED_X5U[*]})"
start_load "$REPUB_STOP" "$STATE/republish-load.json"
CHAIN_FILE=$CR_DIR/$(basename "$ACTIVE_X5U")
[ -f "$CHAIN_FILE" ] || fail "the TN-CR's folder has no $CHAIN_FILE"
rm -f "$CHAIN_FILE"
wait_for 10 "$ACTIVE_X5U is still served after its chain was deleted" eval '[ "$(x5u_code "$ACTIVE_X5U")" = 404 ]'
log "$CHAIN_FILE deleted: $ACTIVE_X5U answers 404"
REPUB_PLAY=$SECONDS
playbook republish rotate.yml -e phase=republish
[ "$RECAP_CHANGED" -ge 1 ] || fail "rotate.yml -e phase=republish changed nothing"
REPUB_PLAY=$((SECONDS - REPUB_PLAY))
n=0
for x5u in "${SERVED_X5U[@]}"; do
  n=$((n + 1))
  [ "$(x5u_code "$x5u" "$STATE/x5u-after-$n.pem")" = 200 ] || fail "$x5u is not served after phase=republish"
  cmp -s "$STATE/x5u-before-$n.pem" "$STATE/x5u-after-$n.pem" || fail "$x5u serves other bytes after phase=republish"
done
stop_load "$REPUB_STOP" "$STATE/republish-load.json" "the republish"
log "republished: every served x5u answers 200 with the same bytes (rotate.yml -e phase=republish: $REPUB_PLAY s); $(json_field "$STATE/republish-load.json" "f\"{d['requests']} requests, {d['failed']} failed, {d['rate']}/s\"") (step 9: $((SECONDS - STEP9_START)) s)"

log "PASS"
