"""Molecule verify: one remote task pinned to each alive node; print where each one ran.

Run on a cluster node as the Ray user, with the node's client.env in the environment
(RAY_ADDRESS and the token settings). Prints one JSON line: {"driver": {...}, "nodes": [...],
"tasks": [{"node_id", "scheduled_on", "node_ip", "hostname", "python", "ray"}, ...]}
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy


@ray.remote
def where() -> dict[str, Any]:
    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "hostname": socket.gethostname(),
        "python": sys.version,
        "ray": ray.__version__,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout-s", type=float, default=120.0)
    args = parser.parse_args(argv)

    ray.init(logging_level="ERROR", log_to_driver=False)  # the address comes from RAY_ADDRESS
    alive = [n for n in ray.nodes() if n["Alive"]]
    refs = [
        where.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=n["NodeID"], soft=False)
        ).remote()
        for n in alive
    ]
    tasks = ray.get(refs, timeout=args.timeout_s)
    for node, task in zip(alive, tasks, strict=True):
        task["scheduled_on"] = node["NodeID"]
        task["node_ip"] = node["NodeManagerAddress"]
    print(
        json.dumps(
            {
                "driver": {
                    "hostname": socket.gethostname(),
                    "python": sys.version,
                    "ray": ray.__version__,
                },
                "nodes": [n["NodeManagerAddress"] for n in alive],
                "tasks": tasks,
            }
        )
    )


if __name__ == "__main__":
    main()
