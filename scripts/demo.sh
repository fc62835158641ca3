#!/usr/bin/env bash
# The demo, on a fresh machine too: a 3-host sandbox lab (Debian 12 head + worker, Debian 13
# worker), the full deploy, the seed's smoke test (which node ran each task), the status.
# The sandbox stays up for you to explore; `.venv/bin/raykit sandbox down` removes it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/bootstrap.sh
raykit=.venv/bin/raykit

echo "== 1/4 sandbox hosts"
inv=$("$raykit" sandbox up | tail -n 1)
echo "inventory: $inv"
echo "== 2/4 deploy (site.yml: preflight, artifacts, runtime, cluster)"
"$raykit" up -i "$inv"
echo "== 3/4 the seed's smoke test"
"$raykit" smoke -i "$inv"
echo "== 4/4 status"
"$raykit" status -i "$inv"
cat <<EOT

The cluster is up. Next:
  $raykit status -i $inv          # versions, units, alive nodes
  $raykit up -i $inv              # converge again: nothing to do, changed=0
  $raykit down -i $inv [--purge]  # stop Ray (and remove everything raykit installed)
  $raykit sandbox down            # remove the sandbox hosts
EOT
