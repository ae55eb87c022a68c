#!/usr/bin/env bash
# The README's two commands, on a fresh Debian 12 machine (as root, or with sudo):
#
#   scripts/dev.sh run    install what is missing, build, set up the SoftHSM2
#                         token under var/dev, then sign a sample call with a
#                         key that lives only in the token and verify it
#   scripts/dev.sh test   install what is missing, build, run the whole suite
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
  libssl-dev openssl libp11-kit-dev p11-kit
  softhsm2 opensc libengine-pkcs11-openssl
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev libgtest-dev
  secsipidx ca-certificates
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
  cmake -S "$ROOT" -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD" --parallel "$(nproc)"
}

run_demo() {
  local sks=$BUILD/sks/sks
  log "token: sks init --dir $DEV"
  local config
  config=$("$sks" init --dir "$DEV")
  export SKS_CONFIG=$config
  "$sks" check-config --login
  local label=shaken-demo
  local x5u=https://127.0.0.1:8443/$label.pem
  log "key: $label (generated in the token if missing; sensitive, not extractable)"
  "$sks" keys generate --label "$label" --if-missing
  "$sks" keys public --label "$label" --out "$DEV/$label.pub.pem"

  log "sign: a call from 12155550121 to 12155550131, attestation A"
  local identity
  identity=$("$sks" sign --label "$label" --x5u "$x5u" --orig 12155550121 --dest 12155550131 \
    --attest A)
  printf 'Identity: %s\n' "$identity"

  log "verify: sks verify against the token's public key"
  "$sks" verify --identity "$identity" --public-key "$DEV/$label.pub.pem"
  log "verify: secsipidx (an independent verifier)"
  printf 'secsipidx: %s\n' "$(secsipidx -c -fpubkey "$DEV/$label.pub.pem" -identity "$identity" -expire 60)"
  log "done. Config: $config (export SKS_CONFIG=$config to use the sks CLI on this token)"
}

run_tests() {
  log "test: ctest in $BUILD"
  # --no-tests=error: a build that registered no test must not pass.
  ctest --test-dir "$BUILD" --output-on-failure --no-tests=error -j "$(nproc)" --timeout 600
  if [ "${SKS_BENCH_SMOKE:-1}" = 1 ]; then
    log "bench: smoke run of the signing benchmark"
    "$ROOT/scripts/bench.sh" --smoke
  fi
}

case "${1:-}" in
  run) install_packages; build; run_demo ;;
  test) install_packages; build; run_tests ;;
  *)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 64
    ;;
esac
