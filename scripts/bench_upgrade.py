"""What an upgrade costs a running cluster: `raykit upgrade` and `raykit rollback` against the
only alternative on bare metal, stopping everything, reinstalling and starting again.

Prints numbers; asserts nothing about them. One 3-host sandbox of its own (raykit-bench-upgrade),
removed at the end unless --keep. The two pins are Ray 2.60.0 (the kit's lock) and Ray 2.59.0
(tests/data/ray-2.59.0), same Python. Each of --repeat rounds:

- upgrade 2.60 -> 2.59, the 2.59 venv removed from every host first, so that the upgrade
  installs it (while the old cluster runs) as a first upgrade to new pins would; then a
  rollback to 2.60. Downtime is what the switch recorded in switches.json (first node stopped
  to every node alive, one task run on each); total is the command's wall time.
- the alternative: `raykit down` (every node stopped), the 2.59 venv removed, `raykit up` with
  the 2.59 pins (install, start, alive check, monitoring), then back to 2.60 the same way. The
  cluster is down from the start of `down` to the end of `up`: downtime = total.

    .venv/bin/python scripts/bench_upgrade.py [--repeat 3] [--keep]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_runner import RAYKIT, REPO, raykit  # scripts/ is on sys.path when run as a script

NAME = "raykit-bench-upgrade"
HOSTS = 3
NEW = (
    "-e", "raykit_ray_version=2.59.0",
    "-e", f"raykit_lock_file={REPO}/tests/data/ray-2.59.0/requirements.lock",
)  # fmt: skip
SWITCHES = Path.home() / ".config/raykit/clusters" / NAME / "switches.json"


def timed(*args: str) -> float:
    start = time.monotonic()
    raykit(*args)
    return time.monotonic() - start


def last_downtime(kind: str) -> float:
    record = json.loads(SWITCHES.read_text())[-1]
    if record["kind"] != kind or not record["ok"]:
        raise SystemExit(f"the last switch is not a successful {kind}: {record}")
    return float(record["downtime_s"])


def remove_venvs(pattern: str) -> None:
    """Remove the venvs matching pattern on every host (none of them is in use)."""
    for i in range(1, HOSTS + 1):
        command = f"rm -rf /opt/raykit/venvs/{pattern}"
        subprocess.run(["podman", "exec", f"{NAME}-node{i}", "sh", "-c", command], check=True)


def line(label: str, values: list[float]) -> str:
    return (
        f"{label:44} {statistics.median(values):7.1f} s"
        f" ({min(values):.1f}-{max(values):.1f}, n={len(values)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the sandbox up")
    args = parser.parse_args()
    got: dict[str, list[float]] = {}
    try:
        inv = raykit("sandbox", "up", "--name", NAME, "--hosts", str(HOSTS))
        raykit("up", "-i", inv, capture=False)
        for _ in range(args.repeat):
            remove_venvs("*-ray2.59.0-*")
            got.setdefault("upgrade total", []).append(timed("upgrade", "-i", inv, *NEW))
            got.setdefault("upgrade downtime", []).append(last_downtime("upgrade"))
            got.setdefault("rollback total", []).append(timed("rollback", "-i", inv))
            got.setdefault("rollback downtime", []).append(last_downtime("rollback"))
        for _ in range(args.repeat):
            remove_venvs("*-ray2.59.0-*")
            t = timed("down", "-i", inv) + timed("up", "-i", inv, *NEW)
            got.setdefault("stop all, reinstall, start (2.59)", []).append(t)
            remove_venvs("*-ray2.60.0-*")
            t = timed("down", "-i", inv) + timed("up", "-i", inv)
            got.setdefault("stop all, reinstall, start (back to 2.60)", []).append(t)
    finally:
        if not args.keep:
            subprocess.run([RAYKIT, "sandbox", "down", "--name", NAME], check=False)
    print(f"\n== Ray 2.60.0 <-> 2.59.0 on {HOSTS} sandbox hosts (median, min-max)")
    print("raykit upgrade (the new venv installed while the old cluster runs, then the switch):")
    print("  " + line("downtime (first stop -> every node alive)", got["upgrade downtime"]))
    print("  " + line("total", got["upgrade total"]))
    print("raykit rollback (to the previous venv, kept on every host):")
    print("  " + line("downtime", got["rollback downtime"]))
    print("  " + line("total", got["rollback total"]))
    alt = got["stop all, reinstall, start (2.59)"]
    back = got["stop all, reinstall, start (back to 2.60)"]
    print("stop everything, reinstall, start again (raykit down, then raykit up; down throughout):")
    print("  " + line("downtime = total, to 2.59", alt))
    print("  " + line("downtime = total, back to 2.60", back))
    up_ratio = statistics.median(alt) / statistics.median(got["upgrade downtime"])
    rb_ratio = statistics.median(back) / statistics.median(got["rollback downtime"])
    print(
        f"\ndowntime ratio, stop-all-reinstall / raykit upgrade: {up_ratio:.1f}x;"
        f" / raykit rollback: {rb_ratio:.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
