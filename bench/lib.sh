# What bench/run.sh and bench/soak.sh share; sourced, not run. Needs ROOT
# (the checkout) set, and a `die MESSAGE` that reports and exits.
#
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
#   bench_logs                the last lines of each non-empty WORK/*.log
#   bench_checks NAME         log, fail (report, set FAILED=1, go on) and die
#                             (fail, bench_logs, exit 1) for a script
#                             reporting as NAME

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
