#!/usr/bin/env bash
# setup-token.sh: idempotent set-up of a SoftHSM2 token for sks.
#
# Creates DIR/tokens and DIR/softhsm2.conf (from softhsm2.conf.in beside this
# script) and, when no token labelled LABEL exists yet, initialises one with
# the SO and user PINs read from PIN files (created with random PINs when
# missing). Prints one line on stdout:
#     label=<LABEL> serial=<SERIAL> conf=<DIR/softhsm2.conf>
# Running it again changes nothing and prints the same line.
#
# The recommended path for development is `sks init --dir DIR`, which does
# the same through PKCS#11 (C_InitToken/C_InitPIN) with no PIN on any
# command line. This script is for hosts where only the Debian tools exist.
set -euo pipefail

readonly PROG=${0##*/}
SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
readonly SCRIPT_DIR
readonly TEMPLATE="$SCRIPT_DIR/softhsm2.conf.in"

usage() {
    cat <<EOF
Usage: $PROG --dir DIR --label LABEL [--user-pin-file F] [--so-pin-file F]

Idempotently set up a SoftHSM2 token for sks:
  DIR/tokens          token directory (created, mode 0700)
  DIR/softhsm2.conf   SoftHSM2 config from softhsm2.conf.in (created once;
                      an existing one is kept only if it points at DIR/tokens)
  token LABEL         initialised only if no token has this label yet

Options:
  --dir DIR            working directory for the token (created if missing)
  --label LABEL        token label, 1..32 printable ASCII characters, no
                       blanks (tokens are selected by label, never by slot)
  --user-pin-file F    user PIN file (default DIR/user.pin)
  --so-pin-file F      security officer PIN file (default DIR/so.pin)
  -h, --help           show this help

PIN files hold a PIN of 4..255 characters on one line (trailing newlines are
ignored), must be owned by the current user and have mode 0600 or 0400. A
missing PIN file is created with a random 32-hex-digit PIN (mode 0600), but
only when the token is about to be initialised. softhsm2-util takes PINs only
on its argv or a tty, so they are on this short-lived command's argv while it
runs; prefer \`sks init --dir DIR\`, which puts no PIN on any command line.

Output (stdout, one line):
  label=<LABEL> serial=<SERIAL> conf=<DIR/softhsm2.conf>

Use the token with:  SOFTHSM2_CONF=DIR/softhsm2.conf
  pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label LABEL \\
      --login --list-objects        (prompts for the PIN)
EOF
}

die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

warn() {
    printf '%s: warning: %s\n' "$PROG" "$*" >&2
}

# ---------------------------------------------------------------- arguments
dir='' label='' user_pin_file='' so_pin_file=''
need_arg() { [[ $# -ge 2 ]] || { usage >&2; die "option $1 needs a value"; }; }
while [[ $# -gt 0 ]]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --dir) need_arg "$@"; dir=$2; shift 2 ;;
        --dir=*) dir=${1#*=}; shift ;;
        --label) need_arg "$@"; label=$2; shift 2 ;;
        --label=*) label=${1#*=}; shift ;;
        --user-pin-file) need_arg "$@"; user_pin_file=$2; shift 2 ;;
        --user-pin-file=*) user_pin_file=${1#*=}; shift ;;
        --so-pin-file) need_arg "$@"; so_pin_file=$2; shift 2 ;;
        --so-pin-file=*) so_pin_file=${1#*=}; shift ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[[ -n $dir ]] || { usage >&2; die "--dir is required"; }
[[ -n $label ]] || { usage >&2; die "--label is required"; }

# CK_TOKEN_INFO.label is 32 bytes, blank padded: longer labels would be cut
# and blanks could not be matched reliably (nor parsed from the output line).
LC_ALL=C
export LC_ALL
[[ ${#label} -le 32 ]] || die "label is longer than 32 bytes: $label"
[[ $label =~ ^[[:graph:]]+$ ]] ||
    die "label must be printable ASCII without blanks"
[[ $dir != *$'\n'* ]] || die "DIR must not contain a newline"

command -v softhsm2-util >/dev/null ||
    die "softhsm2-util not found (apt-get install softhsm2)"
[[ -r $TEMPLATE ]] || die "template not found: $TEMPLATE"

# ------------------------------------------------------------ directories
umask 077
mkdir -p -- "$dir"
dir=$(cd -- "$dir" && pwd -P)
readonly tokdir="$dir/tokens"
readonly conf="$dir/softhsm2.conf"
: "${user_pin_file:=$dir/user.pin}"
: "${so_pin_file:=$dir/so.pin}"

# One set-up at a time per DIR: two concurrent runs must not both decide
# that the label is free and create two tokens with the same label.
exec 9>"$dir/.setup-token.lock"
flock 9

# ------------------------------------------------------------ config file
template=$(<"$TEMPLATE")
# Quoted replacement: no '&' expansion (bash 5.2 patsub_replacement).
rendered="${template//@TOKEN_DIR@/"$tokdir"}"$'\n'

# Print the directories.tokendir value of a SoftHSM config, without
# surrounding blanks and trailing slashes.
conf_tokendir() {
    sed -n 's/^[[:space:]]*directories\.tokendir[[:space:]]*=[[:space:]]*//p' "$1" |
        tail -n 1 | sed -e 's/[[:space:]]*$//' -e 's:/*$::'
}

if [[ -e $conf || -L $conf ]]; then
    [[ -f $conf ]] || die "$conf exists and is not a regular file"
    if [[ $(<"$conf")$'\n' != "$rendered" ]]; then
        existing=$(conf_tokendir "$conf")
        [[ $existing == "$tokdir" ]] ||
            die "$conf exists and points at '${existing:-<unset>}', not $tokdir; refusing to overwrite it (move it away or use another --dir)"
        # A different but compatible config (e.g. edited log level): keep it.
    fi
else
    tmp=$(mktemp "$dir/.softhsm2.conf.XXXXXX")
    printf '%s' "$rendered" >"$tmp"
    chmod 0644 "$tmp"
    mv -f -- "$tmp" "$conf"
fi
mkdir -p -- "$tokdir"
export SOFTHSM2_CONF="$conf"

# ------------------------------------------------------------ token lookup
# Print the serial numbers of all initialised tokens labelled $1, one a line.
# softhsm2-util --show-slots prints "Serial number:" before "Label:" for each
# slot; both fields are blank padded.
serials_for_label() {
    softhsm2-util --show-slots | awk -v want="$1" '
        function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
        /^Slot /                         { serial = "" }
        /^[ \t]*Serial number:/          { serial = trim(substr($0, index($0, ":") + 1)) }
        /^[ \t]*Label:/ {
            lab = trim(substr($0, index($0, ":") + 1))
            if (lab == want && serial != "") print serial
        }'
}

# ------------------------------------------------------------ PIN files
# Check a PIN file: regular file, owned by us, mode 0600 or 0400.
check_pin_file() {
    local f=$1 owner mode
    [[ -f $f ]] || die "PIN file $f is not a regular file"
    read -r owner mode < <(stat -L -c '%u %a' -- "$f")
    [[ $owner == "$(id -u)" ]] ||
        die "PIN file $f is owned by uid $owner, not by the current user (uid $(id -u))"
    [[ $mode == 600 || $mode == 400 ]] ||
        die "PIN file $f has mode 0$mode; it must be 0600 or 0400 (chmod 600 '$f')"
}

# Read a checked PIN file into the variable named $2 (never echoed).
read_pin() {
    local f=$1 _pin
    check_pin_file "$f"
    _pin=$(<"$f")     # drops the trailing newline(s)
    [[ $_pin != *$'\n'* ]] || die "PIN file $f holds more than one line"
    [[ ${#_pin} -ge 4 && ${#_pin} -le 255 ]] ||
        die "PIN in $f must be 4..255 characters long (it has ${#_pin})"
    printf -v "$2" '%s' "$_pin"
}

# Create a PIN file with a random PIN (32 hex digits, no trailing newline),
# mode 0600. noclobber makes the creation fail rather than overwrite a file
# that appeared meanwhile.
create_pin_file() {
    local f=$1 pin
    pin=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    [[ ${#pin} -eq 32 ]] || die "could not read random bytes for $f"
    (umask 077 && set -o noclobber && printf '%s' "$pin" >"$f") ||
        die "could not create PIN file $f"
    chmod 0600 -- "$f"
    printf '%s: created PIN file %s (random PIN)\n' "$PROG" "$f" >&2
}

mapfile -t serials < <(serials_for_label "$label")
if [[ ${#serials[@]} -gt 1 ]]; then
    die "${#serials[@]} tokens are labelled '$label' in $tokdir (serials: ${serials[*]}); labels must be unique"
fi

if [[ ${#serials[@]} -eq 0 ]]; then
    for f in "$user_pin_file" "$so_pin_file"; do
        if [[ -e $f || -L $f ]]; then check_pin_file "$f"; else create_pin_file "$f"; fi
    done
    user_pin='' so_pin=''
    read_pin "$user_pin_file" user_pin
    read_pin "$so_pin_file" so_pin
    # softhsm2-util reads PINs only from its argv or from a terminal, so for
    # this one short-lived set-up command the PINs are on its command line
    # (visible in /proc to the same user and root while it runs). The
    # long-lived sks service never takes a PIN on argv; `sks init` avoids
    # this entirely by calling C_InitToken/C_InitPIN itself. Its chatter
    # goes to stderr so stdout stays the one result line.
    softhsm2-util --init-token --free --label "$label" \
        --so-pin "$so_pin" --pin "$user_pin" >&2 ||
        die "softhsm2-util --init-token failed for label '$label'"
    unset -v user_pin so_pin
    mapfile -t serials < <(serials_for_label "$label")
    [[ ${#serials[@]} -eq 1 ]] ||
        die "token '$label' not found exactly once after initialisation"
else
    # The token exists: nothing to do. Still refuse unsafe PIN files, and do
    # not invent a PIN file whose PIN could not match the existing token.
    for f in "$user_pin_file" "$so_pin_file"; do
        if [[ -e $f || -L $f ]]; then
            check_pin_file "$f"
        else
            warn "token '$label' exists but PIN file $f is missing; not creating it"
        fi
    done
fi

printf 'label=%s serial=%s conf=%s\n' "$label" "${serials[0]}" "$conf"
