"""raykit.compare: reports side by side with ratios to the first, as the seed's single- vs
two-machine table; missing figures as "—"; notes on checksums and different workloads."""

from __future__ import annotations

import re
import statistics
from typing import Any

from rich.console import Console

from raykit import compare, report

DASH = "—"
X = compare.TIMES  # the multiplication sign


def make(
    name: str = "fake_nn",
    *,
    nodes: int = 1,
    walls: tuple[float, ...] = (10.0,),
    work: tuple[float | None, ...] | None = None,
    cluster: dict[str, Any] | None = None,
    disk: tuple[float | None, ...] = (40.0,),
    checksum: str | None = "c0ffee" * 10,
    params: dict[str, Any] | None = None,
    failed_runs: int = 0,
    rid: str | None = None,
) -> dict[str, Any]:
    ips = [f"10.0.0.{i + 1}" for i in range(nodes)]
    work = work if work is not None else tuple(w - 1 for w in walls)
    cluster = {
        "cpu_pct_mean": 50.0,
        "cpu_pct_p95": 90.0,
        "mem_used_bytes_max": 2 * 2**30,
        "object_store_used_max_bytes": 100 * 2**20,
        "net_sent_bytes": 10 * 2**20,
        "net_recv_bytes": 12 * 2**20,
        **(cluster or {}),
    }
    runs = []
    for i, (w, ww) in enumerate(zip(walls, work, strict=True)):
        runs.append(
            {
                "index": i,
                "status": "SUCCEEDED",
                "wall_s": w,
                "workload_wall_s": ww,
                "result": {"checksum": checksum},
                "metrics": {
                    "cluster": dict(cluster),
                    "nodes": {
                        ip: {"disk_used_pct_max": d} for ip, d in zip(ips, disk, strict=False)
                    },
                },
            }
        )
    for j in range(failed_runs):
        runs.append({"index": len(runs) + j, "status": "FAILED", "wall_s": 1.0, "result": None})
    return {
        "schema": 1,
        "id": rid or f"20261126T21000{nodes}Z-{name}",
        "name": name,
        "kind": "workload",
        "params": params if params is not None else {"preset": "large", "task_num": 100000},
        "status": "failed" if failed_runs else "succeeded",
        "manifest": {"hosts": [{"name": f"h{i}", "node_ip": ip} for i, ip in enumerate(ips)]},
        "runs": runs,
        "summary": report.summarize_runs(runs),
    }


def row(comparison: compare.Comparison, label: str) -> compare.Row:
    return next(r for r in comparison.rows if r.label == label)


def test_labels_and_rows() -> None:
    one = make(nodes=1, walls=(59.3,))
    two = make(nodes=2, walls=(224.0,))
    c = compare.rows([one, two])
    assert c.labels == ["fake_nn · 1 node", "fake_nn · 2 nodes"]
    assert c.ids == [one["id"], two["id"]]
    assert [r.label for r in c.rows] == [
        "wall time (median)",
        "workload wall time (median)",
        "cluster CPU % mean",
        "cluster CPU % p95",
        "memory used (max)",
        "disk used % (max)",
        "object store used (max)",
        "network sent",
        "network received",
        "nodes",
        "checksum",
    ]
    wall = row(c, "wall time (median)")
    assert wall.values == ["59.30 s", "3 min 44.0 s"]
    assert wall.ratios == [f"{224.0 / 59.3:.2f}{X}"] == [f"3.78{X}"]
    assert row(c, "nodes").values == ["1", "2"]
    assert row(c, "memory used (max)").values == ["2.0 GiB", "2.0 GiB"]
    assert row(c, "memory used (max)").ratios == [f"1.00{X}"]


def test_medians_over_successful_runs_and_ratios_to_the_first() -> None:
    a = make(walls=(9.0, 10.0, 30.0), cluster={"cpu_pct_mean": 10.0})
    b = make(nodes=2, walls=(5.0, 5.4), cluster={"cpu_pct_mean": 95.0}, failed_runs=1)
    c3 = make(nodes=3, walls=(20.0,), cluster={"cpu_pct_mean": 5.0})
    c = compare.rows([a, b, c3])
    wall = row(c, "wall time (median)")
    assert wall.values == ["10.00 s", "5.200 s", "20.00 s"]
    assert wall.ratios == [f"0.52{X}", f"2.00{X}"]
    work = row(c, "workload wall time (median)")
    assert work.values[1] == report.fmt_seconds(statistics.median([4.0, 4.4]))
    cpu = row(c, "cluster CPU % mean")
    assert cpu.values == ["10.0 %", "95.0 %", "5.0 %"]
    assert cpu.ratios == [f"9.50{X}", f"0.50{X}"]
    assert any(
        n.startswith("fake_nn · 2 nodes") and "failed" in n and "2 successful run(s) of 3" in n
        for n in c.notes
    )


def test_a_failed_reports_note_names_its_error() -> None:
    a = make()
    b = make(nodes=2, failed_runs=1)
    b["error"] = "run 2: job raysubmit_2 FAILED: \x1b[31mray.exceptions.ActorDiedError: gone\x1b[0m"
    (note,) = [n for n in compare.rows([a, b]).notes if "failed" in n]
    assert note.endswith(
        "1 successful run(s) of 2 (run 2: job raysubmit_2 FAILED: "
        "ray.exceptions.ActorDiedError: gone)"
    )


def test_missing_values_show_a_dash() -> None:
    a = make(cluster={"net_sent_bytes": None, "cpu_pct_p95": 0.0}, disk=(None,))
    b = make(nodes=2, cluster={"cpu_pct_mean": None}, work=(None,), checksum=None)
    c = compare.rows([a, b])
    assert row(c, "network sent").values == [DASH, "10.0 MiB"]
    assert row(c, "network sent").ratios == [DASH]  # nothing to divide by
    assert row(c, "cluster CPU % mean").values == ["50.0 %", DASH]
    assert row(c, "cluster CPU % mean").ratios == [DASH]
    assert row(c, "cluster CPU % p95").ratios == [DASH]  # the first is 0
    assert row(c, "workload wall time (median)").values == ["9.000 s", DASH]
    assert row(c, "disk used % (max)").values == [DASH, "40.0 %"]
    assert row(c, "checksum").values == ["c0ffeec0ffeec0ff", DASH]
    assert row(c, "checksum").ratios == [DASH]


def test_a_report_without_metrics_or_runs() -> None:
    empty = {"schema": 1, "id": "x", "name": "fake_nn", "status": "failed", "runs": []}
    c = compare.rows([make(), empty])
    assert c.labels[1] == f"fake_nn · {DASH}"
    for r in c.rows:
        assert r.values[1] == DASH and r.ratios == [DASH]


def test_disk_is_the_fullest_node() -> None:
    c = compare.rows([make(nodes=3, disk=(20.0, 71.5, 30.0))])
    assert row(c, "disk used % (max)").values == ["71.5 %"]


def test_checksums_agree_or_differ() -> None:
    same = compare.rows([make(), make(nodes=2)])
    assert row(same, "checksum").ratios == ["same"]
    assert "checksums agree: every report computed the same answer" in same.notes
    differ = compare.rows([make(), make(nodes=2, checksum="beef" * 16)])
    assert row(differ, "checksum").ratios == ["differs"]
    assert any(n.startswith("checksums differ") for n in differ.notes)
    assert not any("different workloads" in n for n in same.notes + differ.notes)


def test_different_workloads_are_noted() -> None:
    a = make("fake_nn")
    b = make("fake_nn_balanced", nodes=2)
    c = make("fake_nn", nodes=2, params={"preset": "small", "task_num": 100000})
    notes = compare.rows([a, b, c]).notes
    note = next(n for n in notes if n.startswith("different workloads or parameters"))
    assert "fake_nn_balanced" in note and '"preset": "small"' in note


def test_render_markdown() -> None:
    a = make(walls=(10.0,))
    b = make("x|<b>[y](z)", nodes=2, walls=(5.2,))
    md = compare.render_markdown([a, b])
    lines = md.splitlines()
    table = [line for line in lines if line.startswith("|")]
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in table]
    assert cells[0] == ["metric", "fake_nn · 1 node", r"x\|&lt;b&gt;\[y\](z) · 2 nodes", "#2 ÷ #1"]
    assert len({len(r) for r in cells}) == 1
    assert cells[2] == ["report", a["id"], report.md_escape(b["id"]), ""]
    assert ["wall time (median)", "10.00 s", "5.200 s", f"0.52{X}"] in cells
    assert "<b>" not in md
    assert "- different workloads or parameters:" in md
    assert "- ratios: each report's value divided by the first report's" in md


def test_render_terminal() -> None:
    console = Console(record=True, width=140, color_system=None)
    a = make(walls=(10.0,), cluster={"net_recv_bytes": None})
    b = make("[bold]fake_nn[/bold]", nodes=2, walls=(5.2,))
    compare.render_terminal(console, [a, b])
    out = console.export_text()
    assert "[bold]fake_nn[/bold]" in out  # shown as is, not read as markup
    assert f"0.52{X}" in out and "10.00 s" in out and DASH in out
    assert "2 nodes" in out and a["id"] in out
    assert "note: different workloads or parameters" in out


def test_render_terminal_single_report_has_no_ratio_column() -> None:
    console = Console(record=True, width=100, color_system=None)
    compare.render_terminal(console, [make()])
    out = console.export_text()
    assert "÷ #1" not in out and f"{X}" not in out and "note:" not in out
    assert "10.00 s" in out


def test_nodes_are_those_ray_reported_alive() -> None:
    """A 3-host inventory whose third host never joined is a 2-node run, and says so."""
    doc = make(nodes=3)
    for host, alive in zip(doc["manifest"]["hosts"], (True, True, False), strict=True):
        host["alive"] = alive
    assert compare.label(doc) == "fake_nn · 2 nodes"
    # A report that could not ask Ray (alive unknown) falls back to the inventory's count.
    assert compare.label(make(nodes=3)) == "fake_nn · 3 nodes"
