"""What TLS costs on the seed's workloads: the same 3-host sandbox cluster, TLS off then on.

Prints numbers; asserts nothing about them. One sandbox of its own (raykit-bench-tls), removed
at the end unless --keep. For each workload, --repeat runs in one `raykit bench` with TLS off
(raykit_tls=false), then the same with TLS on (the default), and the ratio of the medians of
the workload's own wall time (on/off: above 1 means TLS is slower).

    .venv/bin/python scripts/bench_tls.py [--repeat 3] [--keep]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_runner import RAYKIT, raykit  # scripts/ is on sys.path when run as a script

NAME = "raykit-bench-tls"

# The seed's workloads, as the demo runs them (name, --set values).
WORKLOADS: list[tuple[str, tuple[str, ...]]] = [
    ("simple_tasks", ()),
    ("fake_nn", ("preset=small",)),
    ("fake_nn", ("preset=large",)),
    ("forward_remote", ()),
]


def bench(inv: str, reports: Path, workload: str, sets: tuple[str, ...], repeat: int) -> Any:
    args = ["bench", "-i", inv, "--workload", workload, "--reports", str(reports)]
    for s in sets:
        args += ["--set", s]
    out = raykit(*args, "--repeat", str(repeat))
    return json.loads((Path(out) / "report.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the sandbox up")
    args = parser.parse_args()
    reports = Path(tempfile.mkdtemp(prefix="raykit-bench-tls-"))
    results: dict[str, dict[str, Any]] = {}
    try:
        inv = raykit("sandbox", "up", "--name", NAME, "--hosts", "3")
        for tls in ("false", "true"):
            raykit("up", "-i", inv, "-e", f"raykit_tls={tls}", capture=False)
            for workload, sets in WORKLOADS:
                label = " ".join([workload, *sets])
                doc = bench(inv, reports, workload, sets, args.repeat)
                results.setdefault(label, {})[tls] = doc["summary"]["workload_wall_s"]
    finally:
        if not args.keep:
            subprocess.run([RAYKIT, "sandbox", "down", "--name", NAME], check=False)
    print(f"\n== TLS off vs on (3 hosts; workload wall time, median of {args.repeat}, min-max)")
    print(f"{'workload':28} {'TLS off':>18} {'TLS on':>18} {'on/off':>7}")
    for label, by in results.items():
        off, on = by["false"], by["true"]
        print(
            f"{label:28} {off['median']:7.2f} s ({off['min']:.2f}-{off['max']:.2f})"
            f" {on['median']:7.2f} s ({on['min']:.2f}-{on['max']:.2f})"
            f" {on['median'] / off['median']:6.2f}x"
        )
    print(f"\nreports: {reports}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
