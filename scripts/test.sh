#!/usr/bin/env bash
# Every test, on a fresh machine too: installs what it needs (the control node's venv; podman,
# the sandbox images and the artifact cache come on first use), then
#   lint -> unit -> integration (real sandbox hosts) -> molecule default + cluster.
# Usage: scripts/test.sh [lint|unit|integration|molecule]...   (default: all, in that order)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/bootstrap.sh test
export PATH="$here/.venv/bin:$PATH" ANSIBLE_CONFIG="$here/ansible.cfg" PY_COLORS=0 ANSIBLE_NOCOLOR=1

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(lint unit integration molecule)

step() { printf '\n=== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }
for stage in "${stages[@]}"; do
  case "$stage" in
    lint)
      step "lint: yamllint, ansible-lint (production profile), ruff"
      yamllint --strict .
      ansible-lint --offline
      ruff check runner tests workloads plugins roles/*/files roles/*/filter_plugins scripts
      ruff format --check runner tests workloads plugins roles/*/files roles/*/filter_plugins scripts
      ;;
    unit)
      step "unit tests"
      pytest -m "not integration" tests/unit
      ;;
    integration)
      step "integration tests: sandbox hosts, preflight and the version gate"
      pytest -m integration tests/integration --durations=15
      ;;
    molecule)
      step "molecule: default (1 host)"
      molecule test -s default
      step "molecule: cluster (3 hosts: Debian 12 head + worker, Debian 13 worker)"
      molecule test -s cluster
      ;;
    *) echo "unknown stage: $stage (lint, unit, integration, molecule)" >&2; exit 2 ;;
  esac
done
step "all passed"
