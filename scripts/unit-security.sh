#!/bin/sh
# Renders the systemd units of the Ansible roles (sks, tn-cr, hsm_remote) with the
# roles' default values (packaging/render-units.py: the units the Debian
# package ships) and scores them with
# `systemd-analyze security --offline=yes` (systemd 252, Debian 12).
# Fails when a unit scores above THRESHOLD (default 1.5; 0 is best, 10
# worst). Needs python3-jinja2 (with ansible) and systemd; runs as any user,
# touches nothing outside a temporary folder.
#
#   scripts/unit-security.sh [--threshold N]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
threshold=1.5
if [ "${1:-}" = "--threshold" ]; then threshold=$2; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 "$here/packaging/render-units.py" "$work"

status=0
for unit in sks.service tn-cr.service sks-hsm-remote.service; do
  score=$(systemd-analyze security --offline=yes "$work/$unit" 2>/dev/null |
    sed -n 's/^.*Overall exposure level for .*: \([0-9.]*\).*$/\1/p')
  if [ -z "$score" ]; then
    echo "$unit: systemd-analyze gave no score" >&2
    systemd-analyze security --offline=yes "$work/$unit" >&2 || true
    status=1
    continue
  fi
  if awk -v s="$score" -v t="$threshold" 'BEGIN { exit !(s <= t) }'; then
    echo "$unit: exposure $score (threshold $threshold)"
  else
    echo "$unit: exposure $score is above the threshold $threshold" >&2
    systemd-analyze security --offline=yes "$work/$unit" | grep -v '^  ✓' >&2 || true
    status=1
  fi
done
exit $status
