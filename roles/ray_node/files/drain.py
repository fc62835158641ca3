"""Drain one worker before it leaves the cluster; run on the head with the client environment.

    drain.py NODE_IP TIMEOUT_S

Finds the node by its address in Ray's state API, asks the GCS to drain it (`ray drain-node`,
reason preemption, deadline TIMEOUT_S: nothing new is placed there), then waits until no task
runs on it, at most TIMEOUT_S seconds. Prints one JSON object: node_id, state (before the
drain), drain (accepted, not alive, absent, or the GCS's refusal), running (tasks still running
on it when the wait ended) and waited_s. The stop that follows is the caller's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path


def api(path: str, **query: str | list[str]) -> dict:
    base = os.environ["RAY_DASHBOARD_ADDRESS"].rstrip("/")
    if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
        raise SystemExit(f"RAY_DASHBOARD_ADDRESS is not an http(s) URL: {base}")
    url = f"{base}{path}?{urllib.parse.urlencode(query, doseq=True)}"
    headers = {}
    token_path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if token_path:
        headers["Authorization"] = f"Bearer {Path(token_path).read_text().strip()}"
    req = urllib.request.Request(url, headers=headers)  # noqa: S310 -- http(s), checked above
    with urllib.request.urlopen(req, timeout=15) as r:  # noqa: S310
        return json.load(r)["data"]["result"]


def running_tasks(node_id: str) -> int:
    res = api(
        "/api/v0/tasks",
        limit="1000",
        detail="false",
        filter_keys=["node_id", "state"],
        filter_predicates=["=", "="],
        filter_values=[node_id, "RUNNING"],
    )
    return int(res.get("total", len(res.get("result") or [])))


def main() -> int:
    node_ip, timeout = sys.argv[1], float(sys.argv[2])
    out: dict = {"node_ip": node_ip, "node_id": None, "state": None, "running": 0, "waited_s": 0}
    nodes = api("/api/v0/nodes", limit="10000", detail="false").get("result") or []
    mine = [n for n in nodes if n.get("node_ip") == node_ip]
    alive = [n for n in mine if n.get("state") == "ALIVE"]
    if not alive:
        out["state"] = mine[-1].get("state") if mine else None
        out["drain"] = "not alive" if mine else "absent"
        print(json.dumps(out))
        return 0
    node = alive[0]
    out["node_id"], out["state"] = node["node_id"], node["state"]
    ray = Path(sys.executable).with_name("ray")
    proc = subprocess.run(
        [str(ray), "drain-node", "--node-id", node["node_id"],
         "--reason", "DRAIN_NODE_REASON_PREEMPTION",
         "--reason-message", "raykit remove-node",
         "--deadline-remaining-seconds", str(int(timeout))],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    if proc.returncode != 0:
        words = (proc.stderr or proc.stdout).strip().splitlines()
        out["drain"] = words[-1] if words else f"ray drain-node exited {proc.returncode}"
        print(json.dumps(out))
        return 0
    out["drain"] = "accepted"
    start = time.monotonic()
    while True:
        out["running"] = running_tasks(node["node_id"])
        out["waited_s"] = round(time.monotonic() - start, 1)
        if out["running"] == 0 or time.monotonic() - start >= timeout:
            break
        time.sleep(1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
