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

# Debian's python3 ships venv's pip bootstrap (ensurepip) in a package of its own.
if ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "raykit: installing python3-venv (apt-get), which $py needs for a virtualenv"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null
  else
    echo "raykit: $py cannot make a virtualenv (no ensurepip): install python3-venv." >&2
    exit 1
  fi
fi

stamp="$venv/.raykit-bootstrap"
hash=$(sha256sum "$here/pyproject.toml" | cut -d' ' -f1)
want="$hash ${group:-none}"
if [ -x "$venv/bin/raykit" ] && [ -f "$stamp" ]; then
  # A venv made for a group has the base dependencies too: a plain bootstrap is satisfied.
  if grep -qxF "$want" "$stamp" || { [ -z "$group" ] && grep -q "^$hash " "$stamp"; }; then
    exit 0
  fi
fi

echo "raykit: preparing the control node's virtualenv in $venv ${group:+(with group $group)}"
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install -qq --upgrade 'pip>=25.1'
args=(-qq -e "$here")
[ -n "$group" ] && args+=(--group "$here/pyproject.toml:$group")
"$venv/bin/python" -m pip install "${args[@]}"
echo "$want" >"$stamp"
