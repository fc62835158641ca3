#!/usr/bin/env python3
"""How long `raykit status` takes, beside `ray status`, on a deployed cluster; prints numbers.

    scripts/bench_status.py -i INVENTORY [--runs 5]

Times, alternating, each command as a user runs it from the control node: `raykit status -i
INVENTORY` (Ray's state API and Prometheus, over HTTP), `raykit status --deep` (the per-host
Ansible probe), and `ray status` on the head over SSH (as the Ray user, with the node's
client.env: what a user would otherwise type). Prints min, median and max of each and the
median ratio of raykit status to ray status. Changes nothing.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from raykit.cluster import load

REPO = Path(__file__).resolve().parents[1]
RAY_STATUS = (
    'sudo -u raykit sh -c \'env $(grep -v "^#" /etc/raykit/client.env | xargs) '
    "/opt/raykit/current/bin/ray status'"
)


def ssh_to(hostvars: dict, host: str) -> list[str]:
    hv = hostvars[host]
    args = ["ssh", "-o", "BatchMode=yes"]
    if hv.get("ansible_ssh_private_key_file"):
        args += ["-i", str(hv["ansible_ssh_private_key_file"])]
    args += shlex.split(str(hv.get("ansible_ssh_common_args") or ""))
    if hv.get("ansible_port"):
        args += ["-p", str(hv["ansible_port"])]
    user = hv.get("ansible_user")
    return [
        *args,
        f"{user}@{hv.get('ansible_host', host)}" if user else str(hv.get("ansible_host", host)),
    ]


def timed(cmd: list[str]) -> tuple[float, int]:
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return time.monotonic() - start, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-i", "--inventory", required=True)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cluster = load(args.inventory)
    raykit = str(REPO / ".venv" / "bin" / "raykit")
    commands = {
        "raykit status": [raykit, "status", "-i", args.inventory],
        "raykit status --deep": [raykit, "status", "-i", args.inventory, "--deep"],
        "ray status (ssh to the head)": [*ssh_to(cluster.hostvars, cluster.head), RAY_STATUS],
    }
    times: dict[str, list[float]] = {k: [] for k in commands}
    codes: dict[str, set[int]] = {k: set() for k in commands}
    for cmd in commands.values():  # one warm-up each (SSH connection, page cache)
        timed(cmd)
    for _ in range(args.runs):
        for name, cmd in commands.items():
            seconds, code = timed(cmd)
            times[name].append(seconds)
            codes[name].add(code)
    print(f"{len(cluster.nodes)} nodes, {args.runs} runs each, alternating (seconds):")
    for name, values in times.items():
        print(
            f"  {name:30} median {statistics.median(values):6.2f}  "
            f"min {min(values):6.2f}  max {max(values):6.2f}  exit {sorted(codes[name])}"
        )
    ratio = statistics.median(times["raykit status"]) / statistics.median(
        times["ray status (ssh to the head)"]
    )
    print(f"  raykit status / ray status: {ratio:.2f}x (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
