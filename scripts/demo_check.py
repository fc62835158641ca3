#!/usr/bin/env python3
"""What `make demo` checks and states, measured, never assumed.

  demo_check.py nodes INVENTORY N        the inventory has N Ray nodes and Ray reports exactly
                                         those N alive (exit 1 naming what differs)
  demo_check.py reports INDEX            one line per report the demo wrote: workload, nodes
                                         Ray reported alive, status (exit 1 if any failed)
  demo_check.py breakdown TIMINGS.tsv [UP.json ...]
                                         where the demo's time went: its phases, and inside each
                                         deploy the steps and slowest tasks (raykit up --timings)

Run with the control node's venv (.venv/bin/python): it uses raykit's own cluster discovery,
SSH tunnel and the dashboard's state API.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import requests

from raykit import compare, report
from raykit.bench import ray_nodes
from raykit.cluster import ClusterError, endpoint, load


def check_nodes(inventory: str, expected: int) -> tuple[bool, str]:
    """(ok, message): the inventory's Ray nodes are `expected` in number and each is alive in
    Ray, with no alive node Ray knows that the inventory does not list."""
    try:
        cluster = load(inventory)
    except ClusterError as exc:
        return False, f"cannot check the cluster of {inventory}: {exc}"
    names = {n["node_ip"]: n["name"] for n in cluster.nodes}
    problems = []
    if len(names) != expected:
        problems.append(
            f"the inventory {inventory} has {len(names)} Ray node(s), the demo expected {expected}"
        )
    try:
        with endpoint(cluster, cluster.dashboard_url, cluster.head) as url:
            nodes = ray_nodes(cluster, url)
    except (ClusterError, requests.RequestException, ValueError) as exc:
        return False, f"cannot ask Ray which nodes are alive ({cluster.dashboard_url}): {exc}"
    alive = {str(n.get("node_ip")) for n in nodes if n.get("state") == "ALIVE"}
    missing = sorted(names[ip] for ip in names if ip not in alive)
    extra = sorted(alive - set(names))
    if missing:
        problems.append(f"not alive in Ray: {', '.join(missing)}")
    if extra:
        problems.append(f"alive in Ray but not in the inventory: {', '.join(extra)}")
    if len(alive) != expected:
        problems.append(f"Ray reports {len(alive)} alive node(s), the demo expected {expected}")
    if problems:
        return False, "; ".join(dict.fromkeys(problems))
    listed = ", ".join(f"{names[ip]} ({ip})" for ip in sorted(alive, key=lambda i: names[i]))
    return True, f"{len(alive)} node(s) alive in Ray, exactly the inventory's: {listed}"


def describe_reports(index: Path) -> tuple[bool, list[str]]:
    """One line per report in the demo's index (`label|key|dir`), read from the report."""
    ok, lines = True, []
    for row in index.read_text().splitlines():
        label, key, directory = row.split("|", 2)
        try:
            doc = report.load(Path(directory))
        except (OSError, ValueError) as exc:
            ok = False
            lines.append(f"{label:7} {key:22} UNREADABLE ({exc})")
            continue
        nodes = compare.label(doc).rsplit(" · ", 1)[-1]
        median = doc.stats("wall_s").median
        took = f"{median:.2f} s" if median is not None else "-"
        if not doc.succeeded:
            ok = False
        lines.append(f"{label:7} {key:22} {nodes:8} {doc.status!s:10} {took:>9}  {directory}")
    return ok, lines


def breakdown(tsv: Path, ups: list[Path]) -> list[str]:
    rows = [line.split("\t") for line in tsv.read_text().splitlines() if line.strip()]
    total = sum(float(r[1]) for r in rows)
    lines = [f"{'phase':46} {'seconds':>8}"]
    lines += [f"{name:46} {float(sec):8.0f}" for name, sec in rows]
    lines.append(f"{'total':46} {total:8.0f}  ({total / 60:.1f} min)")
    for path in ups:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        steps = ", ".join(f"{s} {t:.0f} s" for s, t in (data.get("steps") or {}).items())
        lines.append(f"\n{path.stem}: {data.get('seconds', 0):.0f} s ({steps})")
        for t in (data.get("slowest_tasks") or [])[:5]:
            lines.append(f"  {t['seconds']:6.0f} s  {t['task']}  [{t['host']}]")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo_check.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("nodes")
    p.add_argument("inventory")
    p.add_argument("expected", type=int)
    p = sub.add_parser("reports")
    p.add_argument("index", type=Path)
    p = sub.add_parser("breakdown")
    p.add_argument("tsv", type=Path)
    p.add_argument("ups", type=Path, nargs="*")
    args = parser.parse_args(argv)
    if args.cmd == "nodes":
        ok, message = check_nodes(args.inventory, args.expected)
        print(message if ok else f"demo: FAILED: {message}", file=sys.stdout if ok else sys.stderr)
        return 0 if ok else 1
    if args.cmd == "reports":
        ok, lines = describe_reports(args.index)
        print("\n".join(lines))
        return 0 if ok else 1
    print("\n".join(breakdown(args.tsv, args.ups)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
