"""The seed's smoke test: remote tasks that say where they run, sleep, and return x*x.

`tasks` tasks, each prints the node it runs on, sleeps `sleep_s` and returns x*x with the
node's IP (and hostname, for the smoke test's table).

As a benchmark: `python -m workloads simple_tasks --set tasks=5`. As the smoke test, on a
cluster node: `python workloads/simple_tasks.py [--tasks N] [--sleep-s S] [--json]`
(connects with address="auto"; --json prints the result dict as the last line).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

import ray

if not __package__:  # run as a file: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workloads import _common

NAME = "simple_tasks"
CHOICES: dict[str, tuple[str, ...]] = {}


@ray.remote
def square(x: int, sleep_s: float) -> dict[str, Any]:
    """x*x, and where it ran (self-contained: when this file runs as a script, Ray ships the
    function by value to nodes that do not have the package)."""
    ctx = ray.get_runtime_context()
    node_ip = ray.util.get_node_ip_address()
    print(f"task {x} running on node {ctx.get_node_id()} ({node_ip})", flush=True)
    time.sleep(sleep_s)
    return {
        "x": x,
        "result": x * x,
        "node_ip": node_ip,
        "hostname": socket.gethostname(),
        "node_id": ctx.get_node_id(),
    }


def check(params: dict[str, Any]) -> None:
    """ValueError for parameters run() would refuse (also checked before submission)."""
    if params["tasks"] < 0:
        raise ValueError(f"tasks must be >= 0, got {params['tasks']}")
    if params["sleep_s"] < 0:
        raise ValueError(f"sleep_s must be >= 0, got {params['sleep_s']}")


def run(
    tasks: int = 5, sleep_s: float = 1.0, progress: _common.ProgressFn | None = None
) -> dict[str, Any]:
    """Submit `tasks` tasks at once, wait for all; the result dict of docs/reports.md plus
    `results` (one {x, result, node_ip, hostname, node_id} per task, in order)."""
    params = {"tasks": tasks, "sleep_s": sleep_s}
    check(params)
    info = _common.cluster_info()
    start = time.perf_counter()
    refs = [square.remote(i, sleep_s) for i in range(tasks)]
    results = _common.wait_all(refs, _common.Progress(progress, tasks))
    wall = time.perf_counter() - start
    per_node: dict[str, int] = {}
    for r in results:
        per_node[r["node_ip"]] = per_node.get(r["node_ip"], 0) + 1
    return _common.result(
        NAME,
        params,
        wall_s=wall,
        tasks=tasks,
        per_node=per_node,
        outputs=[r["result"] for r in results],
        results=results,
        **info,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--sleep-s", type=float, default=1.0)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if not ray.is_initialized():
        ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
    res = run(args.tasks, args.sleep_s)
    if args.json:
        print(json.dumps(res))
    else:
        for t in res["results"]:
            print(f"task {t['x']}: {t['result']:>3} on {t['hostname']} ({t['node_ip']})")
        print(f"wall time: {res['wall_s']:.2f} s")


if __name__ == "__main__":
    main()
