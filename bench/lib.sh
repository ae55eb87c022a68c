# What the benchmark and end-to-end scripts share (bench/run.sh, bench/soak.sh,
# integrations/kamailio/test.sh, monitoring/fire_test.sh); sourced, not run.
# Needs ROOT (the checkout) set, and a `die MESSAGE` that reports and exits.
#
#   usage                     "usage: $0 $USAGE" on stderr, exit 64
#   bench_configure BUILD     configure BUILD (Release at -O2, ccache if
#                             present) unless it is configured already
#   bench_workdir PREFIX      WORK=$(mktemp -d /tmp/PREFIX.XXXXXX), cd into it,
#                             umask 077; on exit the servers started are
#                             stopped and WORK removed
#   bench_start NAME CMD...   run a server that prints "listening on URL";
#                             sets URL and NAME_pid; dies when it does not
#                             print that line within 30 s
#   bench_tls_and_tncr        the dev TLS PKI in WORK/tls (sets TLS) and a
#                             TN-CR config tn-cr.toml serving WORK/cr
#   bench_token_and_chain     a token (sks init in WORK/token, sets and exports
#                             SKS_CONFIG) with key "bench" and its certificate
#                             from a test STI CA (WORK/pki): chain.pem; needs
#                             SKS and BUILD
#   bench_serve_config X5U    WORK/token/serve.toml (sets SERVE_CONFIG): the
#                             token's config, [server] and profile "bench"
#                             with x5u X5U for the demo SBC's certificate
#   bench_sks_server_toml     an sks config's [server] section (on stdout):
#                             127.0.0.1, a port the kernel picks, mutual TLS
#                             with the dev TLS PKI ($TLS)
#   bench_sks_rotation_toml   the [rotation] and [server] sections, for a
#                             key that rotates through the test STI CA ($CA,
#                             $TOKEN_CONFIG, WORK/pki) and the TN-CR ($TNCR,
#                             WORK/cr)
#   bench_profile_rotation_toml SUBJECT
#                             a profile's [profile.rotation]: x5u on
#                             $TNCR_URL, SPC 1234, certificate SUBJECT
#   bench_start_rotating_sks  check $SKS_CONFIG, make the first key (sks
#                             rotate run) and start `$SKS serve` (sets URL)
#   until_true SECONDS CMD... polls CMD until it succeeds or the deadline
#                             passes (then returns 1)
#   bench_logs                the last lines of each non-empty WORK/*.log
#   bench_checks NAME         log, fail (report, set FAILED=1, go on) and die
#                             (fail, bench_logs, exit 1) for a script
#                             reporting as NAME

usage() {
  echo "usage: $0 $USAGE" >&2
  exit 64
}

bench_configure() {
  local build=$1 launcher=()
  [ -f "$build/CMakeCache.txt" ] && return
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # -O2, not CMake's -O3: GCC 12 at -O3 warns falsely (-Wrestrict, GCC bug
  # 105329) in std::string concatenation, and warnings are errors here.
  cmake -S "$ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" "${launcher[@]}" >/dev/null
}

bench_pids=()
bench_cleanup() {
  for pid in "${bench_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}

bench_workdir() {
  WORK=$(mktemp -d "/tmp/$1.XXXXXX")
  trap bench_cleanup EXIT
  cd "$WORK"
  umask 077
}

bench_start() {
  local name=$1
  shift
  # The file exists before the poll reads it: the child's own redirect may
  # come later, and sed on a missing file would end the script (set -e).
  : >"$name.out"
  "$@" >>"$name.out" 2>"$name.log" </dev/null &
  bench_pids+=($!)
  eval "${name}_pid=$!"
  for _ in $(seq 600); do
    URL=$(sed -n 's/^listening on //p' "$name.out")
    [ -n "$URL" ] && return
    kill -0 "${bench_pids[-1]}" 2>/dev/null || break
    sleep 0.05
  done
  die "$name did not start"
}

bench_tls_and_tncr() {
  SKS_DEV_DIR=$WORK "$ROOT/scripts/dev.sh" tls
  TLS=$WORK/tls
  mkdir -p "$WORK/cr"
  cat >"$WORK/tn-cr.toml" <<TOML
[repository]
dir = "$WORK/cr"
[server]
listen = "127.0.0.1"
port = 0
tls_cert = "$TLS/server.pem"
tls_key = "$TLS/server.key"
TOML
}

bench_sks_server_toml() {
  cat <<TOML
[server]
listen = "127.0.0.1"
port = 0
tls_cert = "$TLS/server.pem"
tls_key = "$TLS/server.key"
client_ca = "$TLS/ca.pem"
TOML
}

bench_token_and_chain() {
  export SKS_CONFIG
  SKS_CONFIG=$("$SKS" init --dir "$WORK/token")
  "$SKS" keys generate --label bench >/dev/null
  "$BUILD/dev-pki/sti-dev-ca" init --dir pki --crl-url https://127.0.0.1/crl/bench.crl >/dev/null
  "$SKS" keys csr --label bench --spc 1234 --subject "/C=US/O=SKS Bench" --out bench.csr
  "$BUILD/dev-pki/sti-dev-ca" issue --dir pki --csr bench.csr --out chain.pem >/dev/null
  "$SKS" keys install-cert --label bench --chain chain.pem >/dev/null
}

bench_serve_config() {
  # Beside the config `sks init` wrote, so the key ring folder is the same.
  SERVE_CONFIG=$(dirname "$SKS_CONFIG")/serve.toml
  {
    cat "$SKS_CONFIG"
    echo
    bench_sks_server_toml
    cat <<TOML

[[profile]]
name = "bench"
key = "bench"
x5u = "$1"
origid = "123e4567-e89b-12d3-a456-426655440000"
attest = ["A"]
clients = ["demo-sbc.example.net"]
TOML
  } >"$SERVE_CONFIG"
}

bench_sks_rotation_toml() {
  cat <<TOML
[rotation]
state_file = "$WORK/rot/state.json"
issue_command = ["$CA", "issue", "--config", "$TOKEN_CONFIG", "--dir", "$WORK/pki", "--csr", "{csr}", "--out", "{chain}"]
publish_command = ["$TNCR", "publish", "--dir", "$WORK/cr", "--chain", "{chain}", "--name", "{name}"]
unpublish_command = ["$TNCR", "unpublish", "{name}", "--yes", "--dir", "$WORK/cr"]
x5u_ca_file = "$TLS/ca.pem"

TOML
  bench_sks_server_toml
}

bench_profile_rotation_toml() {
  cat <<TOML
[profile.rotation]
x5u_base = "$TNCR_URL"
spc = "1234"
subject = "$1"
drain_s = 150  # the floor: max_iat_skew_s 60 + 60 + 15 + 15
TOML
}

bench_start_rotating_sks() {
  "$SKS" check-config --login >/dev/null
  "$SKS" rotate run >rotate-first.log 2>&1 || die "sks rotate run (first key) failed"
  bench_start sks "$SKS" serve
}

until_true() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

bench_logs() {
  local f
  [ -n "${WORK:-}" ] || return 0
  for f in "$WORK"/*.log; do [ -s "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done
  return 0
}

bench_checks() {
  BENCH_NAME=$1
  FAILED=0
  log() { printf '%s %s: %s\n' "$(date -u +%H:%M:%S)" "$BENCH_NAME" "$*" >&2; }
  fail() {
    echo "$BENCH_NAME: FAILED: $*" >&2
    FAILED=1
  }
  die() {
    fail "$*"
    bench_logs
    exit 1
  }
}
