#!/usr/bin/env bash
# Regenerate the hashed lock every Ray node installs from (run after editing requirements.in).
# One universal lock: it covers every CPython 3.10-3.14 and architecture Ray has wheels for.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
files="$here/roles/ray_venv/files"
uv=${UV:-$here/.venv/bin/uv}
[ -x "$uv" ] || { echo "uv not found at $uv: run scripts/bootstrap.sh" >&2; exit 1; }
"$uv" pip compile "$files/requirements.in" --universal --generate-hashes \
  --python-version 3.10 --no-header --custom-compile-command scripts/lock.sh \
  -o "$files/requirements.lock"
echo "lock sha256: $(sha256sum "$files/requirements.lock" | cut -d' ' -f1)"
