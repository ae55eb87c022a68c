#!/usr/bin/env bash
# The README's two commands, on a fresh Debian 12 machine (as root, or with sudo):
#
#   scripts/dev.sh run    install what is missing, build, set up the SoftHSM2
#                         token, a test STI PKI and the TN-CR under var/dev,
#                         start TN-CR (:8443) and SKS (:8444) on loopback, sign
#                         a call over mutual TLS with curl, fetch the
#                         certificate from its x5u URL and verify the token
#   scripts/dev.sh test   install what is missing, build, run the whole suite
#   scripts/dev.sh stop   stop the services `run` left running on loopback
#   scripts/dev.sh tls    only the development TLS CA, server and client
#                         certificates, in $SKS_DEV_DIR/tls (bench/run.sh)
#
# Both are idempotent: a second run installs nothing, reuses the build, the
# token and the key.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${SKS_BUILD_DIR:-$ROOT/build}
DEV=${SKS_DEV_DIR:-$ROOT/var/dev}

# Every package the build, the tests and the demo use; all from Debian 12.
PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libssl-dev openssl libp11-kit-dev p11-kit p11-kit-modules  # p11-kit server + p11-kit-client.so
  softhsm2 opensc libengine-pkcs11-openssl
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev libgtest-dev
  libboost1.81-dev  # Boost.Beast and Asio (http/), header-only
  secsipidx ca-certificates curl libcpp-httplib-dev
  python3 libboost1.81-dev  # bench/run.sh, bench/loadgen
  clang-14 libclang-rt-14-dev  # fuzz/run.sh (libFuzzer)
  python3-jinja2 systemd  # scripts/unit-security.sh (systemd-analyze security)
)

log() { printf '== %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root (or sudo) to install packages: $*" >&2
    exit 1
  fi
}

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "packages: all present"
    return
  fi
  log "packages: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

build() {
  log "build: $BUILD"
  local generator=()
  [ -f "$BUILD/CMakeCache.txt" ] || generator=(-G Ninja)
  cmake -S "$ROOT" -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSTIR_WERROR=ON >/dev/null
  cmake --build "$BUILD" --parallel "$(nproc)"
}

# Development TLS material for the two services and the demo SBC client,
# made with the openssl command. These are TLS keys for loopback, not
# STIR/SHAKEN signing keys: those never leave the token.
make_dev_tls() {
  local tls=$DEV/tls
  [ -f "$tls/client.pem" ] && return
  log "tls: development TLS CA, server certificate for 127.0.0.1, demo client certificate"
  mkdir -p "$tls" && chmod 700 "$tls"
  (
    cd "$tls"
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
      -subj "/O=sks dev/CN=sks dev TLS CA" -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -subj "/O=sks dev/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 \
      -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n') \
      -out server.pem 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -subj "/O=sks dev/CN=demo-sbc.example.net" -keyout client.key -out client.csr 2>/dev/null
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 \
      -extfile <(printf 'subjectAltName=DNS:demo-sbc.example.net\nextendedKeyUsage=clientAuth\n') \
      -out client.pem 2>/dev/null
    rm -f ./*.csr ca.srl
    chmod 644 ./*.pem
  )
}

stop_service() {
  local pidfile=$DEV/$1.pid
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
}

# Starts a service in the background and waits for its "listening on" line.
start_service() {
  local name=$1
  shift
  : >"$DEV/$name.log"
  setsid "$@" >"$DEV/$name.out" 2>"$DEV/$name.log" </dev/null &
  echo $! >"$DEV/$name.pid"
  for _ in $(seq 200); do
    if grep -q '^listening on ' "$DEV/$name.out" 2>/dev/null; then
      log "$name: $(cat "$DEV/$name.out")"
      return
    fi
    if ! kill -0 "$(cat "$DEV/$name.pid")" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "$name did not start; its log:" >&2
  cat "$DEV/$name.log" >&2
  exit 1
}

stop_services() {
  stop_service sks
  stop_service tn-cr
}

run_demo() {
  local sks=$BUILD/sks/sks ca=$BUILD/dev-pki/sti-dev-ca tncr=$BUILD/tn-cr/tn-cr
  local label=shaken-demo spc=1234
  log "token: sks init --dir $DEV"
  "$sks" init --dir "$DEV" >/dev/null
  make_dev_tls

  # One config for everything after init: the token part sks init wrote,
  # plus the server and the signing profile (x5u filled in below).
  local config=$DEV/sks-demo.toml
  export SKS_CONFIG=$DEV/sks.toml
  log "key: $label in the token (sensitive, not extractable)"
  "$sks" keys generate --label "$label" --if-missing

  log "test STI PKI (NOT FOR PRODUCTION): root and STI-CA keys in the token too"
  "$ca" init --dir "$DEV/pki" --crl-url https://127.0.0.1:8443/crl/sti-pa-test.crl >/dev/null
  local chain=$DEV/$label.chain.pem
  if [ ! -f "$chain" ]; then
    log "certificate: CSR signed in the token, issued by the test STI-CA"
    "$sks" keys csr --label "$label" --spc "$spc" --subject "/C=US/O=SKS Demo" \
      --out "$DEV/$label.csr"
    "$ca" issue --dir "$DEV/pki" --csr "$DEV/$label.csr" --out "$chain.tmp" >/dev/null
    mv "$chain.tmp" "$chain"
  fi
  "$sks" keys install-cert --label "$label" --chain "$chain"

  # A new certificate gets a new URL: the name carries the chain's digest.
  local name
  name=$label-$(sha256sum "$chain" | cut -c1-12).pem
  local x5u=https://127.0.0.1:8443/$name
  cat >"$DEV/tn-cr.toml" <<TOML
# TN certificate repository for the demo, on loopback.
[repository]
dir = "$DEV/cr"
[server]
listen = "127.0.0.1"
port = 8443
tls_cert = "$DEV/tls/server.pem"
tls_key = "$DEV/tls/server.key"
TOML
  mkdir -p "$DEV/cr"
  log "publish: $name on the TN-CR"
  "$tncr" publish --config "$DEV/tn-cr.toml" --chain "$chain" --name "$name"

  { cat "$DEV/sks.toml"; cat <<TOML

[server]
listen = "127.0.0.1"
port = 8444
tls_cert = "$DEV/tls/server.pem"
tls_key = "$DEV/tls/server.key"
client_ca = "$DEV/tls/ca.pem"
roles = ["signing", "verification"]

# The verification role (and sks verify --from/--to): trusts the test STI
# root and fetches x5u from the TN-CR on loopback, which is refused unless
# allowed like this.
[verifier]
trust_anchors = "$DEV/pki/root.pem"
tls_ca_file = "$DEV/tls/ca.pem"
allow_loopback = true

[[profile]]
name = "demo"
key = "$label"
x5u = "$x5u"
origid = "de305d54-75b4-431b-adb2-eb6b9e546014"
attest = ["A", "B", "C"]
clients = ["demo-sbc.example.net"]
TOML
  } >"$config.tmp" && chmod 600 "$config.tmp" && mv "$config.tmp" "$config"
  "$sks" check-config --config "$config" >/dev/null

  stop_services
  start_service tn-cr "$tncr" serve --config "$DEV/tn-cr.toml"
  start_service sks "$sks" serve --config "$config"

  log "sign: POST https://127.0.0.1:8444/stir/v1/signing (mutual TLS as demo-sbc.example.net)"
  local request response identity
  request=$(printf '{"signingRequest":{"attest":"A","dest":{"tn":["12155550131"]},"iat":%s,"orig":{"tn":"12155550121"},"origid":"123e4567-e89b-12d3-a456-426655440000"}}' "$(date +%s)")
  response=$(curl -sS --fail-with-body --cacert "$DEV/tls/ca.pem" --cert "$DEV/tls/client.pem" \
    --key "$DEV/tls/client.key" -H 'Content-Type: application/json' -H 'Accept: application/json' \
    --data "$request" https://127.0.0.1:8444/stir/v1/signing)
  printf 'Response: %s\n' "$response"
  identity=$(printf '%s' "$response" | sed -n 's/.*"identity":"\([^"]*\)".*/\1/p')
  printf 'Identity: %s\n' "$identity"

  log "fetch: the certificate chain at the x5u URL, $x5u"
  curl -sS --fail --cacert "$DEV/tls/ca.pem" -D "$DEV/x5u.headers" -o "$DEV/x5u.pem" "$x5u"
  grep -i '^content-type\|^cache-control' "$DEV/x5u.headers" | tr -d '\r' | sed 's/^/  /'
  log "verify: the chain against the test STI-PA root, then the token against the fetched certificate"
  openssl verify -CAfile "$DEV/pki/root.pem" -untrusted "$DEV/x5u.pem" "$DEV/x5u.pem"
  "$sks" verify --identity "$identity" --cert "$DEV/x5u.pem"
  log "verify: sks verify as a verification service (fetches the x5u itself, checks chain and TNAuthList)"
  "$sks" verify --config "$config" --identity "$identity" --from 12155550121 --to 12155550131
  log "verify: POST https://127.0.0.1:8444/stir/v1/verification"
  curl -sS --fail-with-body --cacert "$DEV/tls/ca.pem" --cert "$DEV/tls/client.pem" \
    --key "$DEV/tls/client.key" -H 'Content-Type: application/json' \
    --data "{\"verificationRequest\":{\"from\":{\"tn\":\"12155550121\"},\"to\":{\"tn\":[\"12155550131\"]},\"time\":$(date +%s),\"identity\":\"$identity\"}}" \
    https://127.0.0.1:8444/stir/v1/verification
  echo
  log "done. Services run on loopback: TN-CR https://127.0.0.1:8443/, SKS https://127.0.0.1:8444/"
  log "stop them with: scripts/dev.sh stop   (logs: $DEV/tn-cr.log, $DEV/sks.log)"
}

run_tests() {
  log "test: ctest in $BUILD"
  # --no-tests=error: a build that registered no test must not pass.
  ctest --test-dir "$BUILD" --output-on-failure --no-tests=error -j "$(nproc)" --timeout 600
  if [ "${SKS_BENCH_SMOKE:-1}" = 1 ]; then
    log "bench: smoke run of the benchmarks"
    "$ROOT/bench/run.sh" --smoke --build-dir "$BUILD"
  fi
}

case "${1:-}" in
  run) install_packages; build; run_demo ;;
  stop) stop_services ;;
  tls) make_dev_tls ;;
  test)
    install_packages
    build
    run_tests
    # The run command must keep working too: bring the demo up once, then down.
    trap stop_services EXIT
    run_demo
    ;;
  *)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 64
    ;;
esac
