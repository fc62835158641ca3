"""`raykit status`: the cluster's health at a glance, asked of the cluster itself.

Three HTTP sources, asked at once: Ray's state API on the head's dashboard (which nodes are
alive, their resources, and the labels each node starts with: ``raykit/python``,
``raykit/ray``, ``raykit/lock``), Prometheus' query API on the monitoring host (CPU, memory,
disk, object store and spilling now, and whether each scrape target is up), and Grafana's
health when it is deployed. Nothing runs on the hosts: the per-host Ansible probe (units and
versions on disk) is `raykit status --deep`.

The verdict: 0 healthy; 1 degraded (a node missing or extra, a target down, spilling, a disk
over DISK_LIMIT %, a node whose versions differ from the pins, Prometheus or Grafana
unhealthy); 2 the cluster cannot be asked (bad input, the dashboard unreachable).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from raykit import metrics
from raykit.cluster import Cluster, ClusterError, open_endpoints

DISK_LIMIT = 90.0  # percent
HEALTHY, DEGRADED, UNREACHABLE = 0, 1, 2
LABELS = {"python": "raykit/python", "ray": "raykit/ray", "lock": "raykit/lock"}
TIMEOUT = 3.0


def prom_queries(ips: list[str]) -> dict[str, str]:
    """Instant PromQL, one sample per node (labelled `ip`, `NodeAddress` or `host`)."""
    osl = metrics.OBJECT_STORE_LABEL
    regex = metrics.ip_regex(ips)
    return {
        "cpu_pct": f"avg by (ip) ({metrics.selector(metrics.CPU, ips)})",
        "mem_pct": (
            f"100 * max by (ip) ({metrics.selector(metrics.MEM_USED, ips)})"
            f" / on(ip) max by (ip) ({metrics.selector(metrics.MEM_TOTAL, ips)})"
        ),
        "disk_pct": f"max by (ip) ({metrics.selector(metrics.DISK_PCT, ips)})",
        "object_store_used_bytes": (
            f"max by ({osl}) ({metrics.selector(metrics.OBJECT_STORE_USED, ips, osl)})"
        ),
        "spilled_bytes": (
            f'max by ({osl}) (ray_object_store_memory{{{osl}=~{regex},Location="SPILLED"}})'
        ),
        # The scrape targets raykit writes (job "ray", labelled host/role/exporter).
        "targets": 'up{job="ray"}',
    }


def _label_of(field: str) -> str:
    if field in ("object_store_used_bytes", "spilled_bytes"):
        return metrics.OBJECT_STORE_LABEL
    return "ip"


def _get(url: str, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(url, headers=headers, timeout=TIMEOUT)


def _health(url: str | None, path: str) -> dict[str, Any]:
    """{"url", "healthy", "detail"} of a service's health endpoint; None url: not deployed."""
    if not url:
        return {"url": None, "healthy": None, "detail": "not deployed"}
    try:
        r = _get(url.rstrip("/") + path)
    except requests.RequestException as exc:
        return {"url": url, "healthy": False, "detail": f"unreachable: {type(exc).__name__}"}
    return {"url": url, "healthy": r.ok, "detail": f"HTTP {r.status_code}"}


def last_report(reports: Path) -> str | None:
    """The newest report directory under `reports` (its report.json, at any of two depths)."""
    found = [*reports.glob("*/report.json"), *reports.glob("*/*/report.json")]
    with contextlib.suppress(OSError):
        if found:
            return str(max(found, key=lambda p: p.stat().st_mtime).parent)
    return None


def evaluate(
    cluster: Cluster,
    ray_nodes: list[dict[str, Any]],
    prom: Mapping[str, Any],
    prom_health: Mapping[str, Any],
    grafana_health: Mapping[str, Any],
) -> dict[str, Any]:
    """The status document from what the services answered (pure: unit-tested on recorded
    answers). `prom` maps each prom_queries() key to (data, error)."""
    problems: list[str] = []
    by_ip: dict[str, dict[str, Any]] = {}
    for node in ray_nodes:
        ip = str(node.get("node_ip"))
        if node.get("state") == "ALIVE" or ip not in by_ip:
            by_ip[ip] = node
    values: dict[str, dict[str, float | None]] = {}
    missing: dict[str, str] = {}
    for field, (data, error) in prom.items():
        if field == "targets":
            continue
        if error:
            missing[field] = error
        values[field] = metrics._by_node(data, _label_of(field)) if not error else {}
    targets_data, targets_error = prom.get("targets", (None, "not asked"))
    targets: dict[str, dict[str, float | None]] = {}
    if not targets_error and isinstance(targets_data, dict):
        for item in targets_data.get("result") or []:
            m = item.get("metric") or {}
            value = metrics._number((item.get("value") or [None, None])[1])
            targets.setdefault(str(m.get("host", m.get("instance"))), {})[
                str(m.get("exporter", m.get("instance")))
            ] = value
    pins = {k: cluster.access.get(k) for k in ("python", "ray")} | {
        "lock": cluster.access.get("lock_sha12")
    }
    nodes = []
    for n in cluster.nodes:
        ray = by_ip.get(n["node_ip"], {})
        alive = ray.get("state") == "ALIVE"
        res = ray.get("resources_total") or {}
        labels = ray.get("labels") or {}
        versions = {k: labels.get(label) for k, label in LABELS.items()}
        up = targets.get(n["name"], {})
        row = {
            "name": n["name"],
            "role": n["role"],
            "address": n["node_ip"],
            "alive": alive,
            "state": ray.get("state") or "unknown to Ray",
            **versions,
            "cpus": res.get("CPU"),
            "object_store_capacity_bytes": res.get("object_store_memory"),
            **{f: values.get(f, {}).get(n["node_ip"]) for f in values},
            "targets_up": up,
        }
        nodes.append(row)
        if not alive:
            problems.append(f"{n['name']} is not alive in Ray ({row['state']})")
        drift = [
            f"{k} {versions[k]} (pinned {pins[k]})"
            for k in LABELS
            if alive and versions[k] is not None and pins[k] and versions[k] != pins[k]
        ]
        if drift:
            problems.append(f"{n['name']} runs {', '.join(drift)}")
        down = sorted(e for e, v in up.items() if v != 1)
        if prom_health.get("healthy") and not targets_error and not up:
            problems.append(
                f"{n['name']}: Prometheus has not scraped it (no target for it, or not yet: "
                "a new target waits for its first scrape)"
            )
        elif down:
            problems.append(f"{n['name']}: Prometheus target(s) down: {', '.join(down)}")
        spilled = row.get("spilled_bytes")
        if spilled:
            problems.append(f"{n['name']} is spilling objects to disk ({spilled:.0f} bytes)")
        disk = row.get("disk_pct")
        if disk is not None and disk > DISK_LIMIT:
            problems.append(f"{n['name']}: disk {disk:.0f} % full (over {DISK_LIMIT:.0f} %)")
    known = {n["node_ip"] for n in cluster.nodes}
    extra = sorted(
        ip for ip, node in by_ip.items() if node.get("state") == "ALIVE" and ip not in known
    )
    if extra:
        problems.append(f"alive in Ray but not in the inventory: {', '.join(extra)}")
    if prom_health.get("healthy") is False:
        problems.append(f"Prometheus is not healthy ({prom_health.get('detail')})")
    if grafana_health.get("healthy") is False:
        problems.append(f"Grafana is not healthy ({grafana_health.get('detail')})")
    alive_count = sum(1 for n in nodes if n["alive"])
    code = DEGRADED if problems else HEALTHY
    verdict = (
        f"healthy: {alive_count} of {len(nodes)} nodes alive, every target up"
        if code == HEALTHY
        else f"degraded: {'; '.join(problems)}"
    )
    return {
        "cluster": cluster.name,
        "dashboard_url": cluster.dashboard_url,
        "alive": alive_count,
        "inventory": len(nodes),
        "nodes": nodes,
        "prometheus": dict(prom_health),
        "grafana": dict(grafana_health),
        "missing": missing,
        "problems": problems,
        "code": code,
        "verdict": verdict,
    }


def unreachable(cluster_name: str, reason: str) -> dict[str, Any]:
    return {
        "cluster": cluster_name,
        "problems": [reason],
        "code": UNREACHABLE,
        "verdict": f"unreachable: {reason}",
        "nodes": [],
    }


def collect(
    cluster: Cluster,
    *,
    tunnel: str = "auto",
    reports: Path | None = None,
    ray_nodes: Callable[[Cluster, str], list[dict[str, Any]]] | None = None,
    record: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Ask the cluster (dashboard, Prometheus, Grafana, in parallel) and evaluate. `record`,
    when given, receives the raw answers (scripts/record_status.py saves them as fixtures)."""
    from raykit.bench import ray_nodes as ask_ray

    ask = ray_nodes or ask_ray
    started = time.monotonic()
    notes: list[str] = []
    with contextlib.ExitStack() as stack:
        try:
            dash, prom_url = open_endpoints(cluster, stack, tunnel, notes)
        except ClusterError as exc:
            return unreachable(cluster.name, str(exc))
        grafana_url = cluster.access.get("grafana_url")
        queries = prom_queries(cluster.node_ips)
        prom = metrics._Prometheus(prom_url or "", requests.Session(), TIMEOUT)
        now = time.time()
        with ThreadPoolExecutor(max_workers=len(queries) + 3) as pool:
            nodes_f = pool.submit(ask, cluster, dash)
            prom_h = pool.submit(_health, prom_url, "/-/healthy")
            graf_h = pool.submit(_health, grafana_url, "/api/health")
            futures = (
                {k: pool.submit(prom.query, q, now) for k, q in queries.items()} if prom_url else {}
            )
            try:
                nodes = nodes_f.result()
            except (requests.RequestException, ValueError) as exc:
                return unreachable(
                    cluster.name, f"Ray's state API at {cluster.dashboard_url}: {exc}"
                )
            answers = {k: f.result() for k, f in futures.items()}
            if not prom_url:
                reason = (
                    "no monitoring host in the inventory"
                    if not cluster.prometheus_url
                    else ("Prometheus could not be reached")
                )
                answers = {k: (None, reason) for k in queries}
            if record is not None:
                record.update(
                    ray_nodes=nodes,
                    prom=answers,
                    prom_health=prom_h.result(),
                    grafana_health=graf_h.result(),
                )
            doc = evaluate(cluster, nodes, answers, prom_h.result(), graf_h.result())
    doc["notes"] = notes
    doc["last_report"] = last_report(reports) if reports else None
    doc["seconds"] = round(time.monotonic() - started, 2)
    return doc


# --- output -----------------------------------------------------------------------------------


def _fmt(value: Any, unit: str = "", digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def _bytes(value: Any) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return "-"


def render(console: Any, doc: Mapping[str, Any]) -> None:
    """The status as a table, the cluster's services, and the verdict line last."""
    from rich.table import Table

    if doc["code"] == UNREACHABLE:
        console.print(f"[red]{doc['verdict']}[/red]", highlight=False)
        return
    table = Table(title=f"cluster {doc['cluster']}", title_justify="left")
    columns = ("node", "role", "address", "alive", "python", "ray", "lock", "CPUs", "CPU %",
               "mem %", "object store", "spilled", "disk %", "targets")  # fmt: skip
    for col in columns:
        left = col in ("node", "role", "address")
        table.add_column(col, justify="left" if left else "right", no_wrap=True)
    for n in doc["nodes"]:
        targets = n.get("targets_up") or {}
        up = sum(1 for v in targets.values() if v == 1)
        table.add_row(
            n["name"],
            n["role"],
            n["address"],
            "[green]yes[/green]" if n["alive"] else f"[red]{n['state']}[/red]",
            _fmt(n.get("python")),
            _fmt(n.get("ray")),
            _fmt(n.get("lock")),
            _fmt(n.get("cpus"), digits=0),
            _fmt(n.get("cpu_pct"), digits=0),
            _fmt(n.get("mem_pct"), digits=0),
            _bytes(n.get("object_store_used_bytes"))
            + " / "
            + _bytes(n.get("object_store_capacity_bytes")),
            _bytes(n.get("spilled_bytes")),
            _fmt(n.get("disk_pct"), digits=0),
            f"{up}/{len(targets)}" if targets else "-",
        )
    console.print(table)
    prom, graf = doc.get("prometheus") or {}, doc.get("grafana") or {}

    def service(name: str, health: Mapping[str, Any]) -> str:
        if health.get("healthy") is None:
            return f"{name}: {health.get('detail')}"
        state = "healthy" if health["healthy"] else f"[red]not healthy ({health['detail']})[/red]"
        return f"{name}: {state} at {health.get('url')}"

    console.print(f"dashboard: {doc['dashboard_url']}", highlight=False)
    console.print(service("Prometheus", prom), highlight=False)
    console.print(service("Grafana", graf), highlight=False)
    for field, reason in sorted((doc.get("missing") or {}).items()):
        console.print(f"[yellow]missing[/yellow] {field}: {reason}", highlight=False)
    for note in doc.get("notes") or []:
        console.print(f"note: {note}", highlight=False)
    console.print(f"last report: {doc.get('last_report') or '-'}", highlight=False)
    colour = "green" if doc["code"] == HEALTHY else "yellow"
    console.print(
        f"[{colour}]{doc['verdict']}[/{colour}] ({doc.get('seconds', 0):.1f} s)", highlight=False
    )
