"""One task on every alive node, pinned there; print, as JSON, what each one ran.

usage: every_node.py  (on a cluster node, with its client environment: address="auto")

Prints {"nodes": [{"node_ip", "hostname", "python", "ray", "executable"}, ...]}, one entry
per alive node, each measured inside a task that Ray was told to run on that node and no other.
"""

import json
import platform
import socket
import sys

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy


@ray.remote(num_cpus=0)
def where() -> dict:
    return {
        "node_ip": ray.util.get_node_ip_address(),
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "ray": ray.__version__,
        "executable": sys.executable,
    }


def main() -> None:
    ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
    alive = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    refs = [
        where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote()
        for n in alive
    ]
    print(json.dumps({"nodes": ray.get(refs, timeout=120)}))


if __name__ == "__main__":
    main()
