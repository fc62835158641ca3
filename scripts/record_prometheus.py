#!/usr/bin/env python3
"""Record Prometheus' answers to raykit's metric queries, as fixtures for the unit tests.

It runs `raykit.metrics.collect` against a live Prometheus over a window and saves, under
`tests/fixtures/prometheus/<name>/`:

- `meta.json`: the call's arguments (URL, node IPs, window, scrape interval), the clock
  readings `collect` made (so a replay can give it the same ones), and a note;
- `exchanges.json`: every HTTP request `collect` made (path and form parameters) with the
  response as it came (status code and body), in order;
- `raw.json`: the raw samples of each Ray metric involved, from a little before the window
  to its end (`<metric>{...}[range]` at the window's end), which the tests compute the
  expected figures from, independently of the PromQL.

The window is either given (`--start`/`--end`, epoch seconds) or that of a load generated
on the cluster for the occasion (`--load SECONDS`): a Ray driver run on the head over ssh as
the Ray user with the node's client.env (as playbooks/smoke.yml does), which keeps every
CPU of the cluster busy with matrix products while fetching objects put by the head (so the
object store and the network move too).

The fixtures in the repository came from the sandbox cluster `raykit-dev` (3 nodes, Ray
2.60.0, Debian 12's Prometheus 2.42 scraping every 5 s), with:

    scripts/record_prometheus.py --name load-3nodes --load 25 \\
        --inventory .raykit/raykit-dev/inventory.yml
    scripts/record_prometheus.py --name node-absent --load 8 --extra-node 10.89.154.14 \\
        --inventory .raykit/raykit-dev/inventory.yml
    scripts/record_prometheus.py --name short-run --load 1 \\
        --inventory .raykit/raykit-dev/inventory.yml
    scripts/record_prometheus.py --name short-no-settle --no-settle \\
        --start 1795726320 --end 1795726322 --inventory .raykit/raykit-dev/inventory.yml

(`--extra-node` adds an address that no Ray node has, like an inventory host whose Ray never
started: Prometheus has no samples for it and the settle wait runs out. `short-no-settle` is
a past 2 s window without the settle wait, shorter than the scrape interval, picked from the
samples' timestamps so that one node only has a sample in it.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "runner"))

from raykit import metrics  # noqa: E402

RAW_METRICS = (
    metrics.CPU,
    metrics.CPU_COUNT,
    metrics.MEM_USED,
    metrics.MEM_TOTAL,
    metrics.DISK_PCT,
    metrics.OBJECT_STORE_USED,
    metrics.NET_SENT,
    metrics.NET_RECV,
)
# Raw samples from this long before the window's start: enough for the instant look-ups of
# the subqueries and of `query_range` near the start, and for the rate's own range.
RAW_MARGIN_S = 60.0

LOAD = r"""
import sys, time
import numpy as np
import ray

ray.init(address="auto", logging_level="ERROR")
seconds = float(sys.argv[1])
cpus = int(ray.cluster_resources()["CPU"])

@ray.remote(num_cpus=1, scheduling_strategy="SPREAD")
def burn(seconds, blob):
    x = np.random.default_rng(0).random((200, 200))
    t, n = time.time(), 0
    while time.time() - t < seconds:
        x = x @ x.T
        x /= np.abs(x).max()
        n += 1
    return float(blob.sum()) + n

# 32 MB objects in the head's store; the tasks on other nodes fetch theirs over the network.
blobs = [ray.put(np.random.default_rng(i).random(4_000_000)) for i in range(cpus)]
print(sum(ray.get([burn.remote(seconds, b) for b in blobs])))
"""


class RecordingSession:
    """A requests session that keeps every exchange."""

    def __init__(self) -> None:
        self.inner = requests.Session()
        self.exchanges: list[dict[str, Any]] = []

    def post(self, url: str, data: dict[str, str], timeout: float) -> requests.Response:
        response = self.inner.post(url, data=data, timeout=timeout)
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        self.exchanges.append(
            {
                "path": requests.utils.urlparse(url).path,
                "params": dict(data),
                "status": response.status_code,
                "body": body,
            }
        )
        return response


class RecordingClock:
    def __init__(self) -> None:
        self.readings: list[float] = []

    def __call__(self) -> float:
        t = time.time()
        self.readings.append(t)
        return t


def inventory_facts(path: Path) -> tuple[list[str], str, str, dict[str, str]]:
    """Node IPs, Prometheus URL, head address and ssh settings from a sandbox inventory."""
    inv = yaml.safe_load(path.read_text())["all"]
    hosts = inv["hosts"]
    ips = [h.get("raykit_node_ip", h["ansible_host"]) for h in hosts.values()]
    head = next(iter(inv["children"]["ray_head"]["hosts"]))
    monitor = next(iter(inv["children"]["monitoring"]["hosts"]))
    ssh = {
        "key": inv["vars"]["ansible_ssh_private_key_file"],
        "user": hosts[head]["ansible_user"],
        "host": hosts[head]["ansible_host"],
    }
    return ips, f"http://{hosts[monitor]['ansible_host']}:9090", head, ssh


def run_load(ssh: dict[str, str], seconds: float) -> tuple[float, float]:
    remote = (
        "sudo -u raykit bash -c 'set -a; . /etc/raykit/client.env; "
        f"/opt/raykit/current/bin/python - {seconds:g}'"
    )
    argv = [
        "ssh",
        "-i",
        ssh["key"],
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        f"{ssh['user']}@{ssh['host']}",
        remote,
    ]
    start = time.time()
    done = subprocess.run(argv, input=LOAD, text=True, capture_output=True, check=False)
    end = time.time()
    if done.returncode != 0:
        raise SystemExit(f"the load failed ({done.returncode}): {done.stderr[-2000:]}")
    return start, end


def raw_samples(prom_url: str, node_ips: list[str], start: float, stop: float) -> dict[str, Any]:
    rng = metrics.duration(stop - start + RAW_MARGIN_S)
    out = {}
    for name in RAW_METRICS:
        label = metrics.OBJECT_STORE_LABEL if name == metrics.OBJECT_STORE_USED else "ip"
        promql = f"{metrics.selector(name, node_ips, label)}[{rng}]"
        response = requests.post(
            prom_url + "/api/v1/query",
            data={"query": promql, "time": f"{stop:.3f}"},
            timeout=10,
        )
        response.raise_for_status()
        out[name] = {"query": promql, "time": f"{stop:.3f}", "body": response.json()}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="fixture directory name")
    parser.add_argument("--inventory", type=Path, help="a raykit inventory (sandbox layout)")
    parser.add_argument("--prom", help="Prometheus URL (default: from the inventory)")
    parser.add_argument("--nodes", help="comma-separated node IPs (default: the inventory's)")
    parser.add_argument("--extra-node", action="append", default=[], help="add an address")
    parser.add_argument("--start", type=float)
    parser.add_argument("--end", type=float)
    parser.add_argument("--load", type=float, metavar="SECONDS", help="generate load first")
    parser.add_argument("--scrape-interval", type=float, default=5.0)
    parser.add_argument(
        "--no-settle", action="store_true", help="do not wait for the scrape after the end"
    )
    parser.add_argument("--note", default="")
    parser.add_argument("--out", type=Path, default=REPO / "tests/fixtures/prometheus")
    args = parser.parse_args()

    node_ips: list[str] = []
    prom_url, ssh = args.prom, None
    if args.inventory:
        node_ips, inv_prom, _, ssh = inventory_facts(args.inventory)
        prom_url = prom_url or inv_prom
    if args.nodes:
        node_ips = args.nodes.split(",")
    node_ips += args.extra_node
    if not prom_url or not node_ips:
        parser.error("give --inventory, or --prom and --nodes")

    command = None
    if args.load is not None:
        if ssh is None:
            parser.error("--load needs --inventory (to reach the head)")
        start, end = run_load(ssh, args.load)
        command = f"the built-in load for {args.load:g} s on {ssh['host']}"
    elif args.start is not None and args.end is not None:
        start, end = args.start, args.end
    else:
        parser.error("give --start and --end, or --load")

    session = RecordingSession()
    clock = RecordingClock()
    block = metrics.collect(
        prom_url,
        node_ips,
        start,
        end,
        scrape_interval=args.scrape_interval,
        settle=not args.no_settle,
        session=session,  # type: ignore[arg-type]
        now=clock,
    )
    stop = block["window"]["end"]

    out = args.out / args.name
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "prom_url": prom_url,
        "node_ips": node_ips,
        "start": start,
        "end": end,
        "scrape_interval": args.scrape_interval,
        "settle": not args.no_settle,
        "clock": clock.readings,
        "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load": command,
        "note": args.note,
        "window_end": stop,
        "missing": block["missing"],
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    (out / "exchanges.json").write_text(json.dumps(session.exchanges, indent=1) + "\n")
    raw = raw_samples(prom_url, node_ips, start, stop)
    (out / "raw.json").write_text(json.dumps(raw, indent=1) + "\n")
    print(f"{out}: {len(session.exchanges)} exchanges, window {stop - start:.1f} s")
    print(json.dumps({"cluster": block["cluster"], "missing": block["missing"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
