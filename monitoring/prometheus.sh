#!/usr/bin/env bash
# A real Prometheus (Debian's prometheus package) scraping an sks fleet with
# the rules of sks.rules.yml, for tests: ansible/tests/ci.sh starts it on the
# CI fleet, causes an alert and reads its state from Prometheus's HTTP API.
#
#   prometheus.sh start DIR CA CERT KEY TARGET...   scrape TARGETs (host:port,
#       HTTPS with the client certificate; JOB=host:port for another job
#       than "sks", e.g. tn-cr=127.0.0.1:8443) every second; returns once
#       every target is up; the API address is in DIR/address
#   prometheus.sh alert DIR NAME INSTANCE STATE [SECONDS]   wait (default
#       60 s) until alert NAME for INSTANCE ("*": any instance, or none, for
#       alerts aggregated over instances) is STATE (firing, pending or
#       inactive); exit 1 with the alerts Prometheus has if it never is
#   prometheus.sh stop DIR
# The pid is in DIR/run/prometheus.pid (ci.sh's clean-up stops every
# STATE/*/run/*.pid).
#
# The rules are evaluated every second with their `for:` durations cut to 0
# (CI cannot wait minutes); the expressions and labels are the real ones.
# Binds 127.0.0.1 only, on a port the kernel chose free.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fail() { echo "prometheus.sh: $*" >&2; exit 1; }

api() { # PATH: GET from the API, the JSON on stdout
  python3 - "$(cat "$DIR/address")" "$1" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(f"http://{sys.argv[1]}{sys.argv[2]}", timeout=5) as r:
    sys.stdout.write(r.read().decode())
PY
}

cmd=${1:-}
DIR=${2:-}
[ -n "$cmd" ] && [ -n "$DIR" ] || fail "usage: prometheus.sh start|alert|stop DIR ..."
case $cmd in
start)
  [ $# -ge 6 ] || fail "usage: prometheus.sh start DIR CA CERT KEY TARGET..."
  ca=$3 cert=$4 key=$5
  shift 5
  mkdir -p "$DIR/data" "$DIR/run"
  sed -E 's/^( *)for: .*/\1for: 0s/' "$HERE/sks.rules.yml" >"$DIR/sks.rules.yml"
  jobs=$(for t in "$@"; do case $t in *=*) echo "${t%%=*}" ;; *) echo sks ;; esac; done | sort -u)
  {
    printf 'global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n'
    printf 'rule_files: [%s]\n' "$DIR/sks.rules.yml"
    printf 'scrape_configs:\n'
    for job in $jobs; do
      targets=$(for t in "$@"; do
        case $t in "$job="*) echo "${t#*=}" ;; *=*) ;; *) if [ "$job" = sks ]; then echo "$t"; fi ;; esac
      done | paste -sd, -)
      printf '  - job_name: %s\n    scheme: https\n    scrape_timeout: 1s\n' "$job"
      printf '    tls_config: {ca_file: %s, cert_file: %s, key_file: %s}\n' "$ca" "$cert" "$key"
      printf '    static_configs:\n      - targets: [%s]\n' "$targets"
    done
  } >"$DIR/prometheus.yml"
  promtool check config "$DIR/prometheus.yml" >/dev/null
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  echo "127.0.0.1:$port" >"$DIR/address"
  prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/data" \
    --web.listen-address="127.0.0.1:$port" >"$DIR/prometheus.log" 2>&1 &
  echo $! >"$DIR/run/prometheus.pid"
  want=$#
  for _ in $(seq 1 60); do
    up=$(api '/api/v1/query?query=sum(up)' 2>/dev/null |
      python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)' 2>/dev/null || echo 0)
    [ "$up" -eq "$want" ] && { echo "prometheus on $(cat "$DIR/address"): $up of $want targets up"; exit 0; }
    kill -0 "$(cat "$DIR/run/prometheus.pid")" 2>/dev/null || { tail -n 20 "$DIR/prometheus.log" >&2; fail "prometheus exited"; }
    sleep 1
  done
  api /api/v1/targets >&2 || true
  fail "targets not up after 60 s"
  ;;
alert)
  [ $# -ge 5 ] || fail "usage: prometheus.sh alert DIR NAME INSTANCE STATE [SECONDS]"
  name=$3 instance=$4 state=$5 seconds=${6:-60}
  for _ in $(seq 1 "$seconds"); do
    got=$(api /api/v1/alerts | python3 -c '
import json, sys
name, instance = sys.argv[1], sys.argv[2]
states = [a["state"] for a in json.load(sys.stdin)["data"]["alerts"]
          if a["labels"].get("alertname") == name
          and (instance == "*" or a["labels"].get("instance") == instance)]
states = ["firing"] if "firing" in states else states
print(states[0] if states else "inactive")' "$name" "$instance")
    [ "$got" = "$state" ] && { echo "prometheus: $name for $instance is $state"; exit 0; }
    sleep 1
  done
  api /api/v1/alerts >&2 || true
  fail "$name for $instance is $got, not $state, after $seconds s"
  ;;
stop)
  [ -f "$DIR/run/prometheus.pid" ] && kill "$(cat "$DIR/run/prometheus.pid")" 2>/dev/null || true
  ;;
*) fail "unknown command $cmd" ;;
esac
