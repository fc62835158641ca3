"""Converge timings on a fresh sandbox: artifact build, cold converge, warm re-run.

Prints numbers; asserts nothing about them. Uses its own sandbox (raykit-bench) and, for
the artifact build, an empty cache directory of its own, so the real cache is untouched.

    .venv/bin/python scripts/bench_converge.py [--hosts 3] [--skip-artifacts] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from raykit import sandbox

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NAME = "raykit-bench"


def playbook(inv: Path, *books: str, env: dict[str, str] | None = None) -> tuple[float, str]:
    start = time.monotonic()
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inv), *books],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), **(env or {})},
    )
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-4000:])
        raise SystemExit(f"{' '.join(books)} failed (rc {proc.returncode})")
    return seconds, proc.stdout


def changed(out: str) -> int:
    return sum(int(n) for n in re.findall(r"changed=(\d+)", out.split("PLAY RECAP")[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument(
        "--skip-artifacts",
        action="store_true",
        help="skip the artifact build from an empty cache (about 5 min)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the sandbox up")
    args = parser.parse_args()
    rows: list[tuple[str, float, str]] = []
    try:
        if not args.skip_artifacts:
            sandbox.down(name=NAME)
            inv = sandbox.up(name=NAME, hosts=args.hosts)
            with tempfile.TemporaryDirectory(prefix="raykit-bench-cache-") as cache:
                secs, out = playbook(
                    inv,
                    "playbooks/preflight.yml",
                    "playbooks/artifacts.yml",
                    env={"RAYKIT_CACHE_DIR": cache},
                )
            rows.append(
                (
                    "artifact build, empty cache (CPython + wheelhouse + uv)",
                    secs,
                    f"{changed(out)} changed",
                )
            )
        sandbox.down(name=NAME)
        t0 = time.monotonic()
        inv = sandbox.up(name=NAME, hosts=args.hosts)
        rows.append((f"sandbox up, {args.hosts} fresh hosts", time.monotonic() - t0, ""))
        secs, out = playbook(inv, "site.yml")
        rows.append(
            (
                f"cold converge, {args.hosts} fresh hosts, warm cache",
                secs,
                f"{changed(out)} changed",
            )
        )
        secs, out = playbook(inv, "site.yml")
        rows.append(("warm re-run (nothing to do)", secs, f"{changed(out)} changed"))
    finally:
        if not args.keep:
            sandbox.down(name=NAME)
    width = max(len(r[0]) for r in rows)
    print(f"\nraykit converge benchmark ({os.cpu_count()} cores)")
    for label, secs, note in rows:
        print(f"  {label:<{width}}  {secs:7.1f} s  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
