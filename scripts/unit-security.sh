#!/bin/sh
# Renders the systemd units of the Ansible roles (sks, tn-cr, hsm_remote) with the
# roles' default values and scores them with
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

python3 - "$here/ansible/roles" "$work" <<'PY'
import sys, jinja2
roles, out = sys.argv[1], sys.argv[2]
common = {"ansible_managed": "rendered by scripts/unit-security.sh"}
units = {
    "sks.service": ("sks/templates/sks.service.j2", {
        "sks_service_name": "sks", "sks_user": "sks", "sks_group": "sks",
        "sks_binary": "/usr/local/bin/sks", "sks_config_dir": "/etc/sks",
        "sks_config_path": "/etc/sks/sks.toml", "sks_state_dir": "/var/lib/sks",
        "sks_keyring_dir": "/var/lib/sks/keyring", "sks_token_write_paths": [],
        "sks_port": 8444}),
    "tn-cr.service": ("tn_cr/templates/tn-cr.service.j2", {
        "tn_cr_service_name": "tn-cr", "tn_cr_user": "tn-cr", "tn_cr_group": "tn-cr",
        "tn_cr_binary": "/usr/local/bin/tn-cr", "tn_cr_config_dir": "/etc/tn-cr",
        "tn_cr_config_path": "/etc/tn-cr/tn-cr.toml",
        "tn_cr_repository_dir": "/var/lib/tn-cr/certs", "tn_cr_port": 8443}),
    "sks-hsm-remote.service": ("hsm_remote/templates/hsm-remote.service.j2", {
        "hsm_remote_service_name": "sks-hsm-remote", "hsm_remote_owner": "sks",
        "hsm_remote_group": "sks", "hsm_remote_token_label": "sks",
        "hsm_remote_provider_env": {"SOFTHSM2_CONF": "/var/lib/sks/softhsm/softhsm2.conf"},
        "hsm_remote_argv": ["/usr/bin/p11-kit", "server", "-f", "-n", "/run/sks-hsm/token.sock",
                            "--provider", "/usr/lib/softhsm/libsofthsm2.so", "pkcs11:token=sks"],
        "hsm_remote_run_dir": "/run/sks-hsm", "hsm_remote_write_paths": ["/var/lib/sks/softhsm"]}),
}
env = jinja2.Environment(loader=jinja2.FileSystemLoader(roles), undefined=jinja2.StrictUndefined,
                         keep_trailing_newline=True)
for name, (template, values) in units.items():
    with open(f"{out}/{name}", "w") as f:
        f.write(env.get_template(template).render(**common, **values))
PY

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
