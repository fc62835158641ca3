"""The seed's two-machine lesson on sandbox hosts, and its reversal.

The seed: `fake_nn` large took 59.3 s on a 20-core machine alone and 3 min 44 s on that machine
plus a 2-core one, because round-robin dispatch made the big machine wait for the small one.
Here, for each pair of CPU limits (default: 1.5,0.5 then 1.75,0.25, the nearest to the seed's
10:1 that two cores allow), on a sandbox of its own (removed at the end unless --keep):

1. one host limited to BIG cores (podman --cpus; it announces CPUs in proportion, see
   `raykit sandbox up --help`): `fake_nn` large, round-robin, --repeat N: the big node alone;
2. a second host limited to SMALL cores joins (`raykit sandbox up --cpus BIG,SMALL`, then
   `raykit up`): `fake_nn` again (the seed's result: slower than alone), then
   `fake_nn_balanced` (the next batch to whichever actor is free: faster than alone);
3. `raykit compare` of the three reports, and a summary: each one's median workload wall
   time, its speedup over the big node alone next to the ideal one (the CPUs announced over
   the big node's), the checksums, and each report's balance verdict.

Prints numbers; asserts nothing about them.

    .venv/bin/python scripts/bench_unequal.py [--cpus 1.5,0.5 [--cpus ...]] [--repeat 3]
                                              [--task-num 10000] [--keep]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_runner import RAYKIT, REPO, raykit  # scripts/ is on sys.path when run as a script

from raykit import balance, compare, report
from raykit.model import Report

NAME = "raykit-bench-unequal"


def sandbox(cpus: list[str]) -> str:
    """The sandbox with one host per CPU limit (the first kept as it is), converged."""
    inv = raykit(
        "sandbox", "up", "--name", NAME, "--hosts", str(len(cpus)),
        "--distro", "bookworm", "--cpus", ",".join(cpus),
    )  # fmt: skip
    start = time.monotonic()
    raykit("up", "-i", inv, capture=False)
    took = time.monotonic() - start
    print(f"raykit up, {len(cpus)} host(s) ({', '.join(cpus)} cores): {took:.1f} s")
    return inv


def bench(inv: str, reports: Path, workload: str, task_num: int, repeat: int) -> Path:
    out = raykit(
        "bench", "-i", inv, "--workload", workload, "--reports", str(reports),
        "--set", "preset=large", "--set", f"task_num={task_num}", "--repeat", str(repeat),
    )  # fmt: skip
    return Path(out)


def summary(labels: list[str], docs: list[Report]) -> None:
    alone_wall = docs[0].stats("workload_wall_s").median
    alone_cpus = compare.announced_cpus(docs[0])
    sums = [{r.checksum for r in d.ok_runs} for d in docs]
    print("\n== summary (medians over the runs; speedup = the big node alone's wall time / this)")
    print(f"{'':34} {'workload wall':>13} {'speedup':>8} {'ideal':>6} {'last node lag':>14}")
    for lab, doc in zip(labels, docs, strict=True):
        wall = doc.stats("workload_wall_s").median
        cpus = compare.announced_cpus(doc)
        speedup = alone_wall / wall if alone_wall and wall else None
        ideal = cpus / alone_cpus if cpus and alone_cpus else None
        late = compare.last_node_lag(doc)
        print(
            f"{lab:34} {report.fmt_seconds(wall):>13} "
            f"{f'{speedup:.2f}x' if speedup else '-':>8} {f'{ideal:.2f}x' if ideal else '-':>6} "
            f"{report.fmt_seconds(late) if late is not None else '-':>14}"
        )
    same = all(len(s) == 1 for s in sums) and len(set().union(*sums)) == 1
    print(f"same checksum in every run of every report: {same}")
    for lab, doc in zip(labels, docs, strict=True):
        note = compare.balance_note(doc)
        print(f"{lab}: {note or 'one node: nothing to balance'}")
    # Ray's SPREAD places the 10 actors; how many landed on each node decides round robin.
    print("per run, actors / calls on each node (big, small):")
    for lab, doc in zip(labels, docs, strict=True):
        cells = []
        for run in doc.ok_runs:
            rows = balance.nodes(run.result)
            cells.append(" ".join(f"{r.workers}/{r.calls}" for r in rows))
        print(f"  {lab:34} " + " | ".join(cells))


def pair(cpus: list[str], reports: Path, task_num: int, repeat: int) -> None:
    """The three reports for one pair of limits, their comparison and the summary."""
    print(
        f"\n== {NAME}: --cpus {','.join(cpus)}; fake_nn large, {task_num} inputs, --repeat {repeat}"
    )
    subprocess.run([RAYKIT, "sandbox", "down", "--name", NAME], cwd=REPO, check=False)
    inv = sandbox(cpus[:1])
    alone = bench(inv, reports, "fake_nn", task_num, repeat)
    inv = sandbox(cpus)
    both = bench(inv, reports, "fake_nn", task_num, repeat)
    balanced = bench(inv, reports, "fake_nn_balanced", task_num, repeat)
    paths = [alone, both, balanced]
    tag = "-".join(cpus)
    print()
    subprocess.run(
        [RAYKIT, "compare", *map(str, paths), "--markdown", str(reports / f"compare-{tag}.md"),
         "--html", str(reports / f"compare-{tag}.html")],
        cwd=REPO, check=True,
    )  # fmt: skip
    labels = [
        f"fake_nn, big node alone ({cpus[0]})",
        f"fake_nn, both ({cpus[0]} + {cpus[1]})",
        f"fake_nn_balanced, both ({cpus[0]} + {cpus[1]})",
    ]
    summary(labels, [report.load(p) for p in paths])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--cpus",
        action="append",
        help="BIG,SMALL cores; repeat for several pairs (default: 1.5,0.5 and 1.75,0.25)",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--task-num", type=int, default=10000)
    parser.add_argument("--keep", action="store_true", help="leave the last sandbox up")
    args = parser.parse_args()
    pairs = [c.split(",") for c in args.cpus or ["1.5,0.5", "1.75,0.25"]]
    if any(len(p) != 2 for p in pairs):
        parser.error("--cpus takes two limits: BIG,SMALL")
    reports = Path(tempfile.mkdtemp(prefix="raykit-bench-unequal-"))
    try:
        for cpus in pairs:
            pair(cpus, reports, args.task_num, args.repeat)
    finally:
        if not args.keep:
            subprocess.run([RAYKIT, "sandbox", "down", "--name", NAME], cwd=REPO, check=False)
    print(f"\nreports: {reports} (compare-*.md, compare-*.html beside them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
