"""raykit.status: the verdict from answers recorded on a healthy 3-node sandbox cluster
(scripts/record_status.py), as recorded and with one thing broken at a time."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from raykit import cli, status
from raykit.cluster import Cluster, ClusterError
from support import REPO

FIXTURE = REPO / "tests" / "fixtures" / "status" / "healthy-3nodes.json"


@pytest.fixture
def rec() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


def cluster_of(rec: dict[str, Any]) -> Cluster:
    return Cluster(inventory="inv", name="sbx", access=rec["access"], hostvars={}, token="t")


def evaluate(rec: dict[str, Any]) -> dict[str, Any]:
    prom = {k: tuple(v) for k, v in rec["prom"].items()}
    return status.evaluate(
        cluster_of(rec), rec["ray_nodes"], prom, rec["prom_health"], rec["grafana_health"]
    )


def node_ips(rec: dict[str, Any]) -> list[str]:
    return [n["node_ip"] for n in rec["access"]["nodes"]]


def names(rec: dict[str, Any]) -> list[str]:
    return [n["name"] for n in rec["access"]["nodes"]]


def test_the_recorded_cluster_is_healthy(rec: dict[str, Any]) -> None:
    doc = evaluate(rec)
    assert doc["code"] == status.HEALTHY, doc["problems"]
    assert doc["verdict"] == "healthy: 3 of 3 nodes alive, every target up"
    assert [n["name"] for n in doc["nodes"]] == names(rec)
    for n in doc["nodes"]:
        assert n["alive"] is True
        assert (n["python"], n["ray"], n["lock"]) == (
            rec["access"]["python"],
            rec["access"]["ray"],
            rec["access"]["lock_sha12"],
        )
        assert 0 <= n["cpu_pct"] <= 100 and 0 < n["mem_pct"] < 100 and 0 < n["disk_pct"] < 100
        assert n["cpus"] >= 1 and n["object_store_capacity_bytes"] > 0
        assert n["object_store_used_bytes"] is not None
        assert n["targets_up"] and all(v == 1 for v in n["targets_up"].values())
    head = doc["nodes"][0]
    assert set(head["targets_up"]) == {"node", "autoscaler", "dashboard"}
    assert doc["prometheus"]["healthy"] is True and doc["grafana"]["healthy"] is None


def test_a_dead_node_is_degraded(rec: dict[str, Any]) -> None:
    worker = node_ips(rec)[2]
    for n in rec["ray_nodes"]:
        if n["node_ip"] == worker:
            n["state"] = "DEAD"
    doc = evaluate(rec)
    assert doc["code"] == status.DEGRADED
    assert f"{names(rec)[2]} is not alive in Ray (DEAD)" in doc["verdict"]
    assert doc["alive"] == 2


def test_a_node_ray_never_saw_is_degraded(rec: dict[str, Any]) -> None:
    worker = node_ips(rec)[1]
    rec["ray_nodes"] = [n for n in rec["ray_nodes"] if n["node_ip"] != worker]
    doc = evaluate(rec)
    assert doc["code"] == status.DEGRADED
    assert f"{names(rec)[1]} is not alive in Ray (unknown to Ray)" in doc["problems"]


def test_a_target_down_is_degraded(rec: dict[str, Any]) -> None:
    for item in rec["prom"]["targets"][0]["result"]:
        if item["metric"]["host"] == names(rec)[1]:
            item["value"][1] = "0"
    doc = evaluate(rec)
    assert doc["code"] == status.DEGRADED
    assert doc["problems"] == [f"{names(rec)[1]}: Prometheus target(s) down: node"]


def test_a_node_without_a_target_is_degraded(rec: dict[str, Any]) -> None:
    result = rec["prom"]["targets"][0]["result"]
    rec["prom"]["targets"][0]["result"] = [
        i for i in result if i["metric"]["host"] != names(rec)[2]
    ]
    doc = evaluate(rec)
    assert doc["problems"] == [
        f"{names(rec)[2]}: Prometheus has not scraped it (no target for it, or not yet: a new "
        "target waits for its first scrape)"
    ]


def test_spilling_is_degraded(rec: dict[str, Any]) -> None:
    spilled = rec["prom"]["spilled_bytes"][0]
    spilled["result"] = [{"metric": {"NodeAddress": node_ips(rec)[0]}, "value": [1.0, "1048576"]}]
    doc = evaluate(rec)
    assert doc["code"] == status.DEGRADED
    assert doc["nodes"][0]["spilled_bytes"] == 1048576
    assert f"{names(rec)[0]} is spilling objects to disk (1048576 bytes)" in doc["problems"]


def test_a_full_disk_is_degraded(rec: dict[str, Any]) -> None:
    for item in rec["prom"]["disk_pct"][0]["result"]:
        if item["metric"]["ip"] == node_ips(rec)[1]:
            item["value"][1] = "95.4"
    doc = evaluate(rec)
    assert doc["problems"] == [f"{names(rec)[1]}: disk 95 % full (over 90 %)"]


def test_a_drifted_version_is_degraded(rec: dict[str, Any]) -> None:
    for n in rec["ray_nodes"]:
        if n["node_ip"] == node_ips(rec)[2]:
            n["labels"]["raykit/ray"] = "2.59.0"
    doc = evaluate(rec)
    assert doc["problems"] == [f"{names(rec)[2]} runs ray 2.59.0 (pinned {rec['access']['ray']})"]


def test_an_alive_node_outside_the_inventory_is_degraded(rec: dict[str, Any]) -> None:
    extra = copy.deepcopy(rec["ray_nodes"][0])
    extra["node_ip"] = "10.0.0.99"
    rec["ray_nodes"].append(extra)
    doc = evaluate(rec)
    assert doc["problems"] == ["alive in Ray but not in the inventory: 10.0.0.99"]


def test_prometheus_unhealthy_or_unreachable(rec: dict[str, Any]) -> None:
    rec["prom_health"] = {"url": "http://x:9090", "healthy": False, "detail": "unreachable"}
    reason = "Prometheus unreachable at http://x:9090: connection refused"
    rec["prom"] = {k: [None, reason] for k in rec["prom"]}
    doc = evaluate(rec)
    assert doc["code"] == status.DEGRADED
    assert doc["problems"] == ["Prometheus is not healthy (unreachable)"]
    assert doc["missing"]["cpu_pct"] == reason
    assert all(n["cpu_pct"] is None for n in doc["nodes"])


def test_grafana_unhealthy(rec: dict[str, Any]) -> None:
    rec["grafana_health"] = {"url": "http://x:3000", "healthy": False, "detail": "HTTP 503"}
    assert evaluate(rec)["problems"] == ["Grafana is not healthy (HTTP 503)"]


def test_collect_unreachable_dashboard_is_2(
    rec: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_way(*_: Any, **__: Any) -> Any:
        raise ClusterError("cannot open an SSH tunnel to http://x:8265 through head: refused")

    monkeypatch.setattr(status, "open_endpoints", no_way)
    doc = status.collect(cluster_of(rec))
    assert doc["code"] == status.UNREACHABLE
    assert doc["verdict"].startswith("unreachable: cannot open an SSH tunnel")


def test_render_shows_the_table_and_the_verdict_last(rec: dict[str, Any]) -> None:
    doc = evaluate(rec) | {"seconds": 0.4, "last_report": "reports/x", "notes": []}
    buf = io.StringIO()
    status.render(Console(file=buf, width=220), doc)
    text = buf.getvalue()
    for name in names(rec):
        assert name in text
    lines = text.strip().splitlines()
    assert lines[-1] == "healthy: 3 of 3 nodes alive, every target up (0.4 s)"
    assert "Prometheus: healthy at http" in text and "Grafana: not deployed" in text
    assert "last report: reports/x" in text


def test_last_report(tmp_path: Path) -> None:
    assert status.last_report(tmp_path) is None
    old = tmp_path / "a" / "report.json"
    new = tmp_path / "demo-1" / "b" / "report.json"
    for p in (old, new):
        p.parent.mkdir(parents=True)
        p.write_text("{}")
    import os

    os.utime(old, (1, 1))
    assert status.last_report(tmp_path) == str(new.parent)


@pytest.mark.parametrize("code", [status.HEALTHY, status.DEGRADED, status.UNREACHABLE])
def test_the_cli_exits_with_the_verdicts_code(
    code: int,
    rec: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("raykit.cluster.load", lambda inventory: cluster_of(rec))
    doc = {"code": code, "verdict": f"v{code}", "nodes": [], "cluster": "sbx"}
    monkeypatch.setattr(status, "collect", lambda *a, **kw: doc)
    assert cli.main(["status", "-i", "inv", "--json"]) == code
    assert json.loads(capsys.readouterr().out)["verdict"] == f"v{code}"


def test_the_cli_bad_inventory_is_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["status", "-i", str(tmp_path / "none.yml"), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["code"] == 2
