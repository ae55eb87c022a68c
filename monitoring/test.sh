#!/usr/bin/env bash
# Checks the alert rules (syntax, PromQL) and runs their unit tests, and that
# every alert has a RUNBOOK.md entry and a unit test. Needs promtool
# (Debian: apt-get install prometheus). Exit 0 only when all of it passes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
command -v promtool >/dev/null || { echo "test.sh: promtool not found (apt-get install prometheus)" >&2; exit 69; }
promtool check rules sks.rules.yml
promtool test rules sks.rules.test.yml
missing=0
for alert in $(sed -n 's/^ *- alert: *//p' sks.rules.yml); do
  grep -qx "## $alert" RUNBOOK.md || { echo "test.sh: $alert has no '## $alert' in RUNBOOK.md" >&2; missing=1; }
  grep -q "alertname: $alert\$" sks.rules.test.yml || { echo "test.sh: $alert has no unit test" >&2; missing=1; }
done
exit $missing
