"""scripts/demo_check.py: what `make demo` checks (alive nodes == the inventory's, exactly)
and states (reports as they record themselves, where the time went), without a cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from raykit import report
from raykit.cluster import Cluster, ClusterError
from raykit.model import Report, Run
from support import REPO, load_by_path

demo_check = load_by_path(REPO / "scripts" / "demo_check.py", "demo_check")

NODES = [
    {"name": "node1", "node_ip": "10.0.0.1", "role": "head"},
    {"name": "node2", "node_ip": "10.0.0.2", "role": "worker"},
    {"name": "node3", "node_ip": "10.0.0.3", "role": "worker"},
]


def fake_cluster(monkeypatch: pytest.MonkeyPatch, nodes: list[dict[str, str]], ray: Any) -> None:
    cluster = Cluster(
        inventory="inv.yml",
        name="demo",
        access={"nodes": nodes, "head": "node1", "dashboard_url": "http://10.0.0.1:8265"},
        hostvars={},
        token="t",
    )
    monkeypatch.setattr(demo_check, "load", lambda inventory: cluster)

    class Direct:
        def __init__(self, *_: Any, **__: Any) -> None: ...
        def __enter__(self) -> str:
            return "http://10.0.0.1:8265"

        def __exit__(self, *_: Any) -> None: ...

    monkeypatch.setattr(demo_check, "endpoint", Direct)
    monkeypatch.setattr(demo_check, "ray_nodes", ray)


def ray_says(*alive: str, dead: tuple[str, ...] = ()) -> Any:
    return lambda cluster, url: (
        [{"node_ip": ip, "state": "ALIVE"} for ip in alive]
        + [{"node_ip": ip, "state": "DEAD"} for ip in dead]
    )


def test_every_inventory_node_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cluster(monkeypatch, NODES, ray_says("10.0.0.1", "10.0.0.2", "10.0.0.3"))
    ok, msg = demo_check.check_nodes("inv.yml", 3)
    assert ok, msg
    assert msg.startswith("3 node(s) alive in Ray") and "node3 (10.0.0.3)" in msg


def test_a_node_that_did_not_join_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cluster(monkeypatch, NODES, ray_says("10.0.0.1", "10.0.0.2", dead=("10.0.0.3",)))
    ok, msg = demo_check.check_nodes("inv.yml", 3)
    assert not ok
    assert "not alive in Ray: node3" in msg and "Ray reports 2 alive node(s)" in msg


def test_an_inventory_smaller_than_expected_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's old failure: a 1-host inventory where 3 were meant, all of it alive."""
    fake_cluster(monkeypatch, NODES[:1], ray_says("10.0.0.1"))
    ok, msg = demo_check.check_nodes("inv.yml", 3)
    assert not ok and "has 1 Ray node(s), the demo expected 3" in msg


def test_an_alive_node_outside_the_inventory_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cluster(monkeypatch, NODES[:1], ray_says("10.0.0.1", "10.0.0.9"))
    ok, msg = demo_check.check_nodes("inv.yml", 1)
    assert not ok and "alive in Ray but not in the inventory: 10.0.0.9" in msg


def test_unreachable_or_undeployed_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_ray(cluster: Any, url: str) -> Any:
        raise ValueError("unexpected answer")

    fake_cluster(monkeypatch, NODES, no_ray)
    ok, msg = demo_check.check_nodes("inv.yml", 3)
    assert not ok and "cannot ask Ray" in msg

    def undeployed(inventory: str) -> Any:
        raise ClusterError("cluster.json is missing")

    monkeypatch.setattr(demo_check, "load", undeployed)
    ok, msg = demo_check.check_nodes("inv.yml", 3)
    assert not ok and "cluster.json is missing" in msg


def test_main_exit_codes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_cluster(monkeypatch, NODES, ray_says("10.0.0.1"))
    assert demo_check.main(["nodes", "inv.yml", "3"]) == 1
    assert "demo: FAILED: not alive in Ray: node2, node3" in capsys.readouterr().err


def write_report(tmp_path: Path, name: str, alive: list[bool], status: str = "succeeded") -> Path:
    runs = [{"index": 0, "status": "SUCCEEDED", "wall_s": 2.5, "workload_wall_s": 2.0}]
    doc = {
        "schema": 1,
        "id": f"20261201T000000Z-{name}-{len(alive)}",
        "name": name,
        "kind": "workload",
        "params": {},
        "status": status,
        "error": None if status == "succeeded" else "boom",
        "manifest": {
            "hosts": [
                {"name": f"h{i}", "node_ip": f"10.0.0.{i}", "alive": a} for i, a in enumerate(alive)
            ]
        },
        "runs": runs,
        "summary": {
            key: stats.to_dict()
            for key, stats in report.summarize_runs([Run.from_dict(r) for r in runs]).items()
        },
    }
    return report.write(Report.load(doc), tmp_path / doc["id"])["json"].parent


def test_reports_say_what_each_report_measured(tmp_path: Path) -> None:
    one = write_report(tmp_path, "simple_tasks", [True])
    three = write_report(tmp_path, "simple_tasks", [True, True, True])
    index = tmp_path / "index"
    index.write_text(f"1node|simple_tasks|{one}\n3nodes|simple_tasks|{three}\n")
    ok, lines = demo_check.describe_reports(index)
    assert ok
    assert "1 node " in lines[0] and "succeeded" in lines[0] and "2.50 s" in lines[0]
    assert "3 nodes" in lines[1]


def test_reports_a_failed_or_unreadable_one_fails(tmp_path: Path) -> None:
    bad = write_report(tmp_path, "fake_nn", [True, False], status="failed")
    index = tmp_path / "index"
    index.write_text(f"3nodes|fake_nn|{bad}\n3nodes|gone|{tmp_path / 'missing'}\n")
    ok, lines = demo_check.describe_reports(index)
    assert not ok
    assert "1 node " in lines[0] and "failed" in lines[0]
    assert "UNREADABLE" in lines[1]


def test_breakdown(tmp_path: Path) -> None:
    tsv = tmp_path / "timings.tsv"
    tsv.write_text("control node venv\t60.0\nsandbox hosts\t120.5\n")
    up = tmp_path / "up-1node.json"
    up.write_text(
        json.dumps(
            {
                "seconds": 300.0,
                "steps": {"Preflight": 10.0, "Artifacts": 250.0},
                "slowest_tasks": [{"task": "Compile", "host": "n1", "seconds": 170.0}],
            }
        )
    )
    text = "\n".join(demo_check.breakdown(tsv, [up, tmp_path / "absent.json"]))
    assert "control node venv" in text and "180  (3.0 min)" in text
    assert "up-1node: 300 s (Preflight 10 s, Artifacts 250 s)" in text
    assert "170 s  Compile  [n1]" in text
