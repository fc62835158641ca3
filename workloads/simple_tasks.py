"""The seed's smoke test: remote tasks that report the node they ran on, sleep, return x*x.

Run on a cluster node: `python -m workloads.simple_tasks` (connects with address="auto").
"""

from __future__ import annotations

import argparse
import json
import socket
import time
from typing import Any

import ray


@ray.remote
def square(x: int, sleep_s: float) -> dict[str, Any]:
    node_id = ray.get_runtime_context().get_node_id()
    print(f"task {x} running on node {node_id}")
    time.sleep(sleep_s)
    return {"x": x, "result": x * x, "node_id": node_id, "hostname": socket.gethostname()}


def run(tasks: int = 5, sleep_s: float = 1.0) -> dict[str, Any]:
    """Run `tasks` remote tasks; return the wall time, per-task placement and the results."""
    start = time.perf_counter()
    results = ray.get([square.remote(i, sleep_s) for i in range(tasks)])
    wall = time.perf_counter() - start
    per_node: dict[str, int] = {}
    for r in results:
        per_node[r["hostname"]] = per_node.get(r["hostname"], 0) + 1
    return {
        "workload": "simple_tasks",
        "wall_time_s": round(wall, 3),
        "tasks": results,
        "per_node_task_counts": per_node,
        "checksum": sum(r["result"] for r in results),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--sleep-s", type=float, default=1.0)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
    result = run(args.tasks, args.sleep_s)
    if args.json:
        print(json.dumps(result))
    else:
        for t in result["tasks"]:
            print(f"task {t['x']}: {t['result']:>3} on {t['hostname']} (node {t['node_id'][:12]})")
        print(f"wall time: {result['wall_time_s']} s")


if __name__ == "__main__":
    main()
