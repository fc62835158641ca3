"""The runner's own cost, and balanced vs round-robin dispatch on unequal nodes.

Prints numbers; asserts nothing about them. Two sandboxes of its own, removed at the end
(unless --keep):

1. raykit-bench-run (2 hosts): `raykit bench` several times; per run, the time the runner
   adds beyond the workload's own wall time: job submission, the driver's start and its
   connection to Ray, result collection (wall_s - workload_wall_s), and separately the wait
   for Prometheus' first scrape after the run (the report's metrics settle) and the command's
   whole duration.
2. raykit-bench-cpu (3 hosts, `--cpus 1,1,0.25`: the last worker has a quarter of the CPU of
   the others): `fake_nn` (round-robin, the seed's dispatch) against `fake_nn_balanced`
   (the next batch to whichever actor is free), same parameters and checksum; the ratio of
   their workload wall times.

    .venv/bin/python scripts/bench_runner.py [--runs 5] [--task-num 10000] [--keep]
                                             [--only overhead|dispatch]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RAYKIT = str(Path(sys.executable).parent / "raykit")


def raykit(*args: str, capture: bool = True) -> str:
    proc = subprocess.run([RAYKIT, *args], cwd=REPO, capture_output=capture, text=True, check=False)
    if proc.returncode != 0:
        if capture:
            sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"raykit {' '.join(args)} failed (rc {proc.returncode})")
    return proc.stdout.strip().splitlines()[-1] if capture and proc.stdout.strip() else ""


def sandbox_cluster(name: str, hosts: int, cpus: str | None) -> str:
    args = ["sandbox", "up", "--name", name, "--hosts", str(hosts), "--distro", "bookworm"]
    if cpus:
        args += ["--cpus", cpus]
    inv = raykit(*args)
    # Every node says 2 CPUs, as identical machines would (a CPU-limited container would
    # otherwise report fewer, or none, and get no actors: no slow node to measure).
    raykit("up", "-i", inv, "-e", "ray_node_num_cpus=2", capture=False)
    return inv


def bench(inv: str, reports: Path, workload: str, *sets: str, repeat: int = 1) -> dict[str, Any]:
    args = ["bench", "-i", inv, "--workload", workload, "--reports", str(reports)]
    for s in sets:
        args += ["--set", s]
    args += ["--repeat", str(repeat)]
    start = time.monotonic()
    out = raykit(*args)
    doc: dict[str, Any] = json.loads((Path(out) / "report.json").read_text())
    doc["_command_s"] = time.monotonic() - start
    return doc


def overhead(inv: str, reports: Path, runs: int) -> None:
    print("\n== runner overhead (2 hosts; simple_tasks, 5 tasks x 1 s)")
    print("wall: submit to end, seen by the runner; driver: the job's python process, start to")
    print("result; workload: the workload's own timing; overhead = wall - driver; command: the")
    print("whole `raykit bench` (inventory, manifest, metrics settle, report files)")
    print(f"{'run':>4} {'wall':>7} {'driver':>7} {'workload':>9} {'overhead':>9} {'command':>8}")
    over = []
    for i in range(runs):
        doc = bench(inv, reports, "simple_tasks")
        run = doc["runs"][0]
        over.append(run["overhead_s"])
        print(
            f"{i + 1:>4} {run['wall_s']:>6.2f}s {run['driver_s']:>6.2f}s"
            f" {run['workload_wall_s']:>8.2f}s {run['overhead_s']:>8.2f}s"
            f" {doc['_command_s']:>7.2f}s"
        )
    print(
        f"runner overhead beyond the driver's own time: median {statistics.median(over):.2f} s,"
        f" max {max(over):.2f} s (target <= 3 s)"
    )
    doc = bench(inv, reports, "simple_tasks", repeat=runs)
    s = doc["summary"]["wall_s"]
    w = doc["summary"]["workload_wall_s"]
    print(
        f"--repeat {runs} in one command: {doc['_command_s']:.1f} s; wall median "
        f"{s['median']:.2f} s, workload median {w['median']:.2f} s"
    )


def dispatch(inv: str, reports: Path, task_num: int) -> None:
    print(f"\n== round-robin vs balanced (3 hosts, --cpus 1,1,0.25; fake_nn large, {task_num})")
    sets = (f"task_num={task_num}", "preset=large")
    rr = bench(inv, reports, "fake_nn", *sets)
    bal = bench(inv, reports, "fake_nn_balanced", *sets)
    for label, doc in (("fake_nn (round-robin)", rr), ("fake_nn_balanced", bal)):
        res = doc["runs"][0]["result"]
        print(
            f"{label:24} workload {res['wall_s']:7.2f} s  batches per node "
            + ", ".join(f"{ip}={n}" for ip, n in sorted(res["per_node"].items()))
            + "  actors per node "
            + ", ".join(f"{ip}={n}" for ip, n in sorted(res["actor_nodes"].items()))
        )
    same = rr["runs"][0]["result"]["checksum"] == bal["runs"][0]["result"]["checksum"]
    ratio = rr["runs"][0]["result"]["wall_s"] / bal["runs"][0]["result"]["wall_s"]
    print(f"balanced is {ratio:.2f}x faster (target >= 1.5x); same checksum: {same}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--task-num", type=int, default=10000)
    parser.add_argument("--keep", action="store_true", help="leave the sandboxes up")
    parser.add_argument("--only", choices=("overhead", "dispatch"), help="run one of the two parts")
    args = parser.parse_args()
    reports = Path(tempfile.mkdtemp(prefix="raykit-bench-reports-"))
    names = ["raykit-bench-run", "raykit-bench-cpu"]
    try:
        if args.only in (None, "overhead"):
            overhead(sandbox_cluster(names[0], 2, None), reports, args.runs)
            if not args.keep:
                raykit("sandbox", "down", "--name", names[0], capture=False)
        if args.only in (None, "dispatch"):
            dispatch(sandbox_cluster(names[1], 3, "1,1,0.25"), reports, args.task_num)
    finally:
        if not args.keep:
            for name in names:
                subprocess.run([RAYKIT, "sandbox", "down", "--name", name], check=False)
    print(f"\nreports: {reports}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
