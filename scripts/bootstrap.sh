#!/usr/bin/env bash
# Prepare the control node: a virtualenv in .venv with raykit and its pinned dependencies.
# Idempotent and quick when nothing changed (it compares a stamp of pyproject.toml).
# Usage: scripts/bootstrap.sh [test|dev]   (the dependency group to add; default: none)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
group=${1:-}
venv="$here/.venv"
py=${RAYKIT_PYTHON:-python3}

if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "raykit: the control node needs Python >= 3.11 (found: $("$py" --version 2>&1))." >&2
  echo "        Install it, or point RAYKIT_PYTHON at one." >&2
  exit 1
fi

stamp="$venv/.raykit-bootstrap"
want="$(sha256sum "$here/pyproject.toml" | cut -d' ' -f1) ${group:-none}"
if [ -x "$venv/bin/raykit" ] && [ -f "$stamp" ] && grep -qxF "$want" "$stamp"; then
  exit 0
fi

echo "raykit: preparing the control node's virtualenv in $venv ${group:+(with group $group)}"
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install -qq --upgrade 'pip>=25.1'
args=(-qq -e "$here")
[ -n "$group" ] && args+=(--group "$here/pyproject.toml:$group")
"$venv/bin/python" -m pip install "${args[@]}"
echo "$want" >"$stamp"
