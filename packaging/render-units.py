#!/usr/bin/env python3
"""Renders the systemd units of the Ansible roles with the roles' production
defaults (the Debian package's paths), so the package ships the units the
roles install and scripts/unit-security.sh scores the same files.

    packaging/render-units.py OUT_DIR [--prefix /usr]

Writes OUT_DIR/sks.service, OUT_DIR/tn-cr.service and
OUT_DIR/sks-hsm-remote.service. Needs python3-jinja2 (Debian 12)."""
import argparse
import os
import sys

import jinja2

here = os.path.dirname(os.path.abspath(__file__))
roles = os.path.join(here, "..", "ansible", "roles")

parser = argparse.ArgumentParser()
parser.add_argument("out")
parser.add_argument("--prefix", default="/usr")
args = parser.parse_args()
bindir = args.prefix.rstrip("/") + "/bin"

common = {"ansible_managed": "installed by the sks Debian package (packaging/render-units.py); "
          "the Ansible roles replace it with /etc/systemd/system/<name>.service"}
units = {
    "sks.service": ("sks/templates/sks.service.j2", {
        "sks_service_name": "sks", "sks_user": "sks", "sks_group": "sks",
        "sks_binary": bindir + "/sks", "sks_config_dir": "/etc/sks",
        "sks_config_path": "/etc/sks/sks.toml", "sks_state_dir": "/var/lib/sks",
        "sks_keyring_dir": "/var/lib/sks/keyring", "sks_token_write_paths": [],
        "sks_extra_groups": [], "sks_access_log_file": "",
        "sks_journal_rate_limit_interval": "30s", "sks_journal_rate_limit_burst": 300000,
        "sks_port": 8444}),
    "tn-cr.service": ("tn_cr/templates/tn-cr.service.j2", {
        "tn_cr_service_name": "tn-cr", "tn_cr_user": "tn-cr", "tn_cr_group": "tn-cr",
        "tn_cr_binary": bindir + "/tn-cr", "tn_cr_config_dir": "/etc/tn-cr",
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
os.makedirs(args.out, exist_ok=True)
for name, (template, values) in units.items():
    text = env.get_template(template).render(**common, **values)
    path = os.path.join(args.out, name)
    # Unchanged text keeps the file's time: no rebuild of what depends on it.
    if os.path.exists(path) and open(path).read() == text:
        continue
    with open(path, "w") as f:
        f.write(text)
sys.exit(0)
