"""raykit.report: ids, summaries, report.json/md/html written and read back, escaping,
self-contained HTML with embedded plots, failed runs with their log tail.

The metrics blocks come from collect() over Prometheus answers recorded on the sandbox
cluster (tests/fixtures/prometheus), so the pages render real figures."""

from __future__ import annotations

import base64
import copy
import json
import math
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from raykit import metrics, model, report
from raykit.model import Report, Run
from support import collect_recorded

HOSTILE = '<script>alert("x")</script>'
IPS = ["10.89.154.11", "10.89.154.12", "10.89.154.13"]


def collected(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(meta, metrics block) of a recorded fixture."""
    meta, block, _ = collect_recorded(name)
    return meta, block


def hosts() -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "node_ip": ip,
            "role": role,
            "cpus": 2.0,
            "memory_bytes": 25276510208.0,
            "object_store_bytes": 536870912.0,
            "alive": True,
        }
        for name, ip, role in (
            ("raykit-dev-node1", IPS[0], "head"),
            (HOSTILE, IPS[1], "worker"),
            ("node|3 [x](http://evil.example)", IPS[2], "worker"),
        )
    ]


def a_run(index: int, fixture: str, *, ok: bool = True) -> dict[str, Any]:
    meta, block = collected(fixture)
    start, end = meta["start"], meta["end"]
    return {
        "index": index,
        "job_id": f"raysubmit_{index}abc",
        "status": "SUCCEEDED" if ok else "FAILED",
        "message": ""
        if ok
        else "Job entrypoint command failed with exit code 1, last available logs:\n"
        "Traceback (most recent call last):\nRuntimeError: the workload broke on purpose",
        "start": start,
        "end": end,
        "wall_s": end - start,
        "workload_wall_s": end - start - 4.5 if ok else None,
        "driver_s": end - start - 1.0,
        "overhead_s": 1.0,
        "result": {
            "workload": "fake_nn",
            "checksum": "9f2c4e" + "0" * 58,
            "per_node": {IPS[0]: 40, IPS[1]: 30, IPS[2]: 30},
            "tasks": 100,
            "wall_s": end - start - 4.5,
        }
        if ok
        else None,
        "log": f"job-{index + 1}.log",
        "log_tail": ""
        if ok
        else "Connected. View the dashboard at \x1b[1m\x1b[32mhttp://10.89.154.11:8265 \x1b[39m\n"
        "about to fail\nTraceback (most recent call last):\n"
        "RuntimeError: the workload broke on purpose <b>bold</b> ``` fence",
        "metrics": block,
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """report.summarize_runs over runs given as JSON data, as JSON data."""
    stats = report.summarize_runs([Run.from_dict(r) for r in runs])
    return {key: s.to_dict() for key, s in stats.items()}


def sample(runs: list[dict[str, Any]], *, status: str = "succeeded") -> dict[str, Any]:
    return {
        "schema": 1,
        "id": "20261126T210455Z-fake_nn",
        "name": "fake_nn",
        "kind": "workload",
        "params": {"preset": "small", "task_num": 3000, "note": "a|b <i>"},
        "status": status,
        "error": None if status == "succeeded" else "run 2 FAILED: exit code 1",
        "created": "2026-11-26T21:04:55Z",
        "notes": ["Prometheus through an SSH tunnel to 10.89.154.11:9090"],
        "manifest": {
            "raykit_version": "0.1.0",
            "inventory": "/work/inv.yml",
            "cluster_name": "raykit-dev",
            "dashboard_url": "http://10.89.154.11:8265",
            "prometheus_url": "http://10.89.154.11:9090",
            "python": "3.13.5",
            "ray": "2.60.0",
            "venv": "/opt/raykit/venv-3.13.5-0123456789ab",
            "lock_sha12": "0123456789ab",
            "hosts": hosts(),
        },
        "runs": runs,
        "summary": summary(runs),
    }


@pytest.fixture(scope="module")
def good() -> dict[str, Any]:
    return sample([a_run(0, "load-3nodes"), a_run(1, "short-run")])


@pytest.fixture(scope="module")
def failed() -> dict[str, Any]:
    return sample([a_run(0, "load-3nodes"), a_run(1, "node-absent", ok=False)], status="failed")


@pytest.fixture(scope="module")
def written(good: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return report.write(Report.from_dict(good), tmp_path_factory.mktemp("reports") / good["id"])


# --- ids and summaries ---------------------------------------------------------------------


def test_new_id() -> None:
    t = datetime(2026, 11, 26, 21, 4, 55, tzinfo=UTC)
    assert report.new_id("fake_nn", t.timestamp()) == "20261126T210455Z-fake_nn"
    assert report.new_id("fake_nn", t) == "20261126T210455Z-fake_nn"
    assert report.new_id("my script.py", t) == "20261126T210455Z-my_script.py"
    hostile = report.new_id("../../etc/passwd", t)
    assert "/" not in hostile and ".." not in hostile
    assert report.new_id("", t) == "20261126T210455Z-report"


def test_summarize_runs_counts_successful_runs_only() -> None:
    runs = [
        {"status": "SUCCEEDED", "wall_s": 10.0, "workload_wall_s": 8.0},
        {"status": "SUCCEEDED", "wall_s": 14.0, "workload_wall_s": 9.0},
        {"status": "FAILED", "wall_s": 1.0, "workload_wall_s": None},
        {"status": "SUCCEEDED", "wall_s": 12.5, "workload_wall_s": None},
    ]
    s = summary(runs)
    assert s["wall_s"] == {"min": 10.0, "median": 12.5, "mean": 36.5 / 3, "max": 14.0, "n": 3}
    assert s["workload_wall_s"] == {"min": 8.0, "median": 8.5, "mean": 8.5, "max": 9.0, "n": 2}
    empty = summary([{"status": "FAILED", "wall_s": 3.0}])
    assert empty["wall_s"] == {"min": None, "median": None, "mean": None, "max": None, "n": 0}


def test_columns_follow_the_metrics_block(good: dict[str, Any]) -> None:
    """The tables' columns and rows and the plots are the metric table's, which is what the
    metrics block holds."""
    v = report.view(Report.from_dict(good))
    assert v["node_headers"] == [m.title for m in model.NODE_METRICS]
    assert [m.key for m in model.NODE_METRICS] == list(metrics.NODE_FIELDS)
    for run in v["run_metrics"]:
        assert [label for label, _ in run["cluster"]] == [m.title for m in model.CLUSTER_METRICS]
        assert all(len(node["cells"]) == len(metrics.NODE_FIELDS) for node in run["nodes"])
    assert [m.key for m in model.CLUSTER_METRICS] == list(metrics.CLUSTER_FIELDS)
    assert [row[0] for row in v["summary"]] == [m.title for m in model.SUMMARY_METRICS]
    names = [p["name"] for p in report.plots(Report.from_dict(good))]
    assert names == [m.key for m in model.SERIES_METRICS] == list(metrics.SERIES)


# --- write / load --------------------------------------------------------------------------


def test_write_then_load_round_trip(good: dict[str, Any], written: dict[str, Path]) -> None:
    assert set(written) == {"json", "md", "html"}
    assert [p.name for p in written.values()] == ["report.json", "report.md", "report.html"]
    assert all(p.is_file() for p in written.values())
    assert not list(written["json"].parent.glob(".*tmp"))
    text = written["json"].read_text()
    assert text.startswith('{\n  "schema": 1,')  # indent 2
    loaded = report.load(written["json"].parent)
    assert isinstance(loaded, Report)
    assert loaded.to_dict() == json.loads(json.dumps(good))
    assert report.load(written["json"]) == loaded


def test_json_has_no_nan(tmp_path: Path) -> None:
    doc = sample([])
    doc["runs"] = [{"status": "SUCCEEDED", "wall_s": math.nan, "metrics": {"x": math.inf}}]
    paths = report.write(Report.from_dict(doc), tmp_path / "r")
    loaded = json.loads(paths["json"].read_text())  # strict JSON: no NaN
    assert loaded["runs"][0]["wall_s"] is None and loaded["runs"][0]["metrics"] == {"x": None}


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such report"):
        report.load(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=r"no report\.json here"):
        report.load(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(report.ReportError, match="not JSON"):
        report.load(bad)
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="not a raykit report"):
        report.load(bad)
    for doc in ([1, 2], {"hello": "world"}, {"schema": 1, "runs": "x"}):
        bad.write_text(json.dumps(doc))
        with pytest.raises(report.ReportError, match="not a raykit report"):
            report.load(bad)
    bad.write_text(json.dumps({"schema": 2, "runs": []}))
    with pytest.raises(report.ReportError, match="schema 2; this raykit reads schema 1"):
        report.load(bad)


# --- report.md -----------------------------------------------------------------------------


def table_rows(md: str, first_cell: str) -> list[list[str]]:
    """Rows of the Markdown table whose header starts with `first_cell`, split on the
    unescaped pipes."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_cell} |"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_markdown_has_the_figures(good: dict[str, Any], written: dict[str, Path]) -> None:
    md = written["md"].read_text()
    assert md.startswith("# fake_nn: succeeded\n")
    assert "2026-11-26T21:04:55Z" in md
    assert "preset=small" in md and "task_num=3000" in md
    # Manifest and hosts.
    for text in ("3.13.5", "2.60.0", "0123456789ab", "0.1.0", "raykit-dev-node1"):
        assert text in md
    hosts_table = table_rows(md, "host")
    assert len({len(r) for r in hosts_table}) == 1  # hostile pipes did not add cells
    assert [r[1] for r in hosts_table[2:]] == IPS
    assert hosts_table[2][2:5] == ["head", "2", "23.5 GiB"]
    # Runs.
    runs = table_rows(md, "run")
    assert len(runs) == 4
    for row, run in zip(runs[2:], good["runs"], strict=True):
        assert row[1] == run["job_id"] and row[2] == "SUCCEEDED"
        assert row[3] == report.fmt_seconds(run["wall_s"])
        assert row[4] == report.fmt_seconds(run["workload_wall_s"])
        assert row[6] == run["result"]["checksum"]
        assert row[7] == f"{IPS[0]}: 40, {IPS[1]}: 30, {IPS[2]}: 30"
    summary = table_rows(md, "over successful runs")
    walls = sorted(r["wall_s"] for r in good["runs"])
    assert summary[2][1:] == [
        report.fmt_seconds(walls[0]),
        report.fmt_seconds((walls[0] + walls[1]) / 2),
        report.fmt_seconds((walls[0] + walls[1]) / 2),
        report.fmt_seconds(walls[1]),
        "2",
    ]
    # Metrics per node and cluster totals, for each run.
    assert md.count("| node | CPU % mean |") == 2
    for run in good["runs"]:
        m = run["metrics"]
        for ip in IPS:
            node = m["nodes"][ip]
            line = (
                f"| {ip} | {report.fmt_pct(node['cpu_pct_mean'])} | "
                f"{report.fmt_pct(node['cpu_pct_p95'])} | "
            )
            assert line in md
            assert report.fmt_bytes(node["net_sent_bytes"]) in md
        c = m["cluster"]
        assert f"| CPU % mean (weighted by CPUs) | {report.fmt_pct(c['cpu_pct_mean'])} |" in md
        assert f"| memory used, max | {report.fmt_bytes(c['mem_used_bytes_max'])} |" in md
        assert f"| network sent | {report.fmt_bytes(c['net_sent_bytes'])} |" in md
    assert "Missing metrics" not in md
    assert "## Failure" not in md


def test_markdown_escapes_hostile_text(written: dict[str, Path]) -> None:
    md = written["md"].read_text()
    assert "<script" not in md and "<i>" not in md
    assert '&lt;script&gt;alert("x")&lt;/script&gt;' in md
    assert "[x](http" not in md  # no disguised link
    assert r"\[x\](http://evil.example)" in md
    assert r"node\|3" in md


def test_markdown_lists_missing_metrics_with_reasons(failed: dict[str, Any]) -> None:
    md = report.render_markdown(Report.from_dict(failed))
    assert "### Missing metrics, run 2" in md
    missing = failed["runs"][1]["metrics"]["missing"]
    assert missing
    for metric, reason in missing.items():
        assert f"- `{metric}`: {report.md_escape(reason)}" in md
    assert "10.89.154.14" in md


def test_failed_report_shows_the_failure_and_the_log_tail(failed: dict[str, Any]) -> None:
    md = report.render_markdown(Report.from_dict(failed))
    assert md.startswith("# fake_nn: failed\n")
    assert "**Failed:** run 2 FAILED: exit code 1" in md
    assert "## Failure" in md
    # Ray's message: its first line (the rest repeats the log).
    assert "FAILED): Job entrypoint command failed with exit code 1, last available logs:\n" in md
    # The tail in a fence longer than the backticks inside it, verbatim but for the
    # terminal's colour codes.
    assert "\x1b" not in md
    assert (
        "````text\nConnected. View the dashboard at http://10.89.154.11:8265 \n"
        "about to fail\nTraceback (most recent call last):\n"
    ) in md
    assert "RuntimeError: the workload broke on purpose <b>bold</b> ``` fence\n````" in md
    runs = table_rows(md, "run")
    assert runs[3][2] == "FAILED" and runs[3][4] == "—" and runs[3][6] == "—"

    html = report.render_html(Report.from_dict(failed))
    assert "Failed: run 2 FAILED: exit code 1" in html
    assert "the workload broke on purpose &lt;b&gt;bold&lt;/b&gt; ``` fence" in html
    assert "<b>bold" not in html
    assert "\x1b" not in html


def test_failed_report_shows_the_cause_and_its_traceback(failed: dict[str, Any]) -> None:
    """The report's error (colour codes removed, also from a report saved before they were)
    and its error_detail, in a fence of its own."""
    doc = copy.deepcopy(failed)
    doc["error"] = "run 2: job raysubmit_1abc FAILED: \x1b[31mValueError: bad | input\x1b[0m"
    doc["error_detail"] = (
        "Traceback (most recent call last):\n"
        '  File "<frozen runpy>", line 88, in _run_code\n'
        "ValueError: bad | input <i>"
    )
    md = report.render_markdown(Report.from_dict(doc))
    assert "**Failed:** run 2: job raysubmit_1abc FAILED: ValueError: bad \\| input" in md
    assert (
        "Details:\n\n```text\nTraceback (most recent call last):\n"
        '  File "<frozen runpy>", line 88, in _run_code\nValueError: bad | input <i>\n```'
    ) in md
    html = report.render_html(Report.from_dict(doc))
    assert "Failed: run 2: job raysubmit_1abc FAILED: ValueError: bad | input" in html
    assert "<pre>Traceback (most recent call last):" in html
    assert "ValueError: bad | input &lt;i&gt;</pre>" in html
    assert "\x1b" not in md + html
    # Without error_detail (a report of an earlier raykit), no empty block.
    del doc["error_detail"]
    assert "Details:" not in report.render_markdown(Report.from_dict(doc))
    assert "Details:" not in report.render_html(Report.from_dict(doc))


def test_report_without_runs_or_hosts_renders(tmp_path: Path) -> None:
    doc = {
        "schema": 1,
        "id": "x",
        "name": "fake_nn",
        "status": "failed",
        "error": "the job was never submitted: dashboard unreachable",
        "runs": [],
    }
    paths = report.write(Report.from_dict(doc), tmp_path / "x")
    md = paths["md"].read_text()
    assert "No run finished." in md and "dashboard unreachable" in md
    html = paths["html"].read_text()
    assert "<img" not in html and "dashboard unreachable" in html


# --- report.html ---------------------------------------------------------------------------

EXTERNAL = re.compile(
    r"""(?:\b(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//)"""
    r"""|(?:url\(\s*["']?\s*(?:https?:)?//)|@import""",
    re.IGNORECASE,
)


def test_html_is_self_contained_and_escaped(good: dict[str, Any], written: dict[str, Path]) -> None:
    html = written["html"].read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert not EXTERNAL.search(html)
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "a|b &lt;i&gt;" in html
    # The figures.
    for run in good["runs"]:
        for ip in IPS:
            assert report.fmt_pct(run["metrics"]["nodes"][ip]["cpu_pct_mean"]) in html
        assert report.fmt_bytes(run["metrics"]["cluster"]["net_recv_bytes"]) in html
        assert run["job_id"] in html


def test_html_embeds_a_png_per_metric(written: dict[str, Path]) -> None:
    html = written["html"].read_text()
    sources = re.findall(r'<img [^>]*src="([^"]*)"', html)
    assert len(sources) == len(metrics.SERIES)
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


def test_plots_skip_metrics_without_series(good: dict[str, Any]) -> None:
    doc = copy.deepcopy(good)
    for run in doc["runs"]:
        run["metrics"]["series"]["disk_used_pct"] = {}
    names = [p["name"] for p in report.plots(Report.from_dict(doc))]
    assert names == [n for n in metrics.SERIES if n != "disk_used_pct"]
    doc["runs"] = []
    assert report.plots(Report.from_dict(doc)) == []


def test_matplotlib_writes_nothing_under_home(good: dict[str, Any], tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "doc.json").write_text(json.dumps(good))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MPL", "XDG_"))}
    env["HOME"] = str(home)
    code = (
        "import sys; from pathlib import Path; from raykit import report; "
        "report.write(report.load(sys.argv[1]), Path(sys.argv[2]))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "doc.json"), str(tmp_path / "out")],
        check=True,
        env=env,
        timeout=120,
    )
    assert list(home.iterdir()) == []
    assert "data:image/png;base64," in (tmp_path / "out" / "report.html").read_text()


# --- formatting ----------------------------------------------------------------------------


def test_formatting() -> None:
    assert report.fmt_seconds(3.25) == "3.250 s"
    assert report.fmt_seconds(59.3) == "59.30 s"
    assert report.fmt_seconds(224.0) == "3 min 44.0 s"
    assert report.fmt_seconds(None) == "—"
    assert report.fmt_pct(42.123) == "42.1 %"
    assert report.fmt_pct(math.nan) == "—"
    assert report.fmt_bytes(512) == "512 B"
    assert report.fmt_bytes(1536) == "1.5 KiB"
    assert report.fmt_bytes(320002540) == "305.2 MiB"
    assert report.fmt_bytes(None) == "—"
    assert report.fmt_count(7) == "7" and report.fmt_count(2.0) == "2"
    assert report.md_escape("a|b\n<c> [d](e) `f` *g*") == r"a\|b &lt;c&gt; \[d\](e) \`f\` \*g\*"
    assert report.md_fence("x ```` y").startswith("`````text\n")
