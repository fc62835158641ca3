"""raykit.compare: reports side by side with ratios to the first, as the seed's single- vs
two-machine table; missing figures as "—"; notes on checksums and different workloads; the
HTML page with every report's series overlaid."""

from __future__ import annotations

import base64
import dataclasses
import re
import statistics
from html.parser import HTMLParser
from typing import Any

import pytest
from rich.console import Console

from raykit import compare, model, report
from raykit.model import Report, RunMetrics
from support import REPO, collect_recorded

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
) -> Report:
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
    doc = Report.from_dict(
        {
            "schema": 1,
            "id": rid or f"20261126T21000{nodes}Z-{name}",
            "name": name,
            "kind": "workload",
            "params": params if params is not None else {"preset": "large", "task_num": 100000},
            "status": "failed" if failed_runs else "succeeded",
            "manifest": {"hosts": [{"name": f"h{i}", "node_ip": ip} for i, ip in enumerate(ips)]},
            "runs": runs,
        }
    )
    return dataclasses.replace(doc, summary=report.summarize_runs(doc.runs))


def row(comparison: compare.Comparison, label: str) -> compare.Row:
    return next(r for r in comparison.rows if r.label == label)


def test_labels_and_rows() -> None:
    one = make(nodes=1, walls=(59.3,))
    two = make(nodes=2, walls=(224.0,))
    c = compare.rows([one, two])
    assert c.labels == ["fake_nn · 1 node", "fake_nn · 2 nodes"]
    assert c.ids == [one.id, two.id]
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
    b = dataclasses.replace(
        b, error="run 2: job raysubmit_2 FAILED: \x1b[31mray.exceptions.ActorDiedError: gone\x1b[0m"
    )
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
    empty = Report.from_dict(
        {"schema": 1, "id": "x", "name": "fake_nn", "status": "failed", "runs": []}
    )
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
    assert cells[2] == ["report", a.id, report.md_escape(b.id), ""]
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
    assert "2 nodes" in out and a.id is not None and a.id in out
    assert "note: different workloads or parameters" in out


def test_render_terminal_single_report_has_no_ratio_column() -> None:
    console = Console(record=True, width=100, color_system=None)
    compare.render_terminal(console, [make()])
    out = console.export_text()
    assert "÷ #1" not in out and f"{X}" not in out and "note:" not in out
    assert "10.00 s" in out


def test_nodes_are_those_ray_reported_alive() -> None:
    """A 3-host inventory whose third host never joined is a 2-node run, and says so."""
    doc = make(nodes=3).to_dict()
    for host, alive in zip(doc["manifest"]["hosts"], (True, True, False), strict=True):
        host["alive"] = alive
    assert compare.label(Report.from_dict(doc)) == "fake_nn · 2 nodes"
    # A report that could not ask Ray (alive unknown) falls back to the inventory's count.
    assert compare.label(make(nodes=3)) == "fake_nn · 3 nodes"


# --- the HTML page -------------------------------------------------------------------------

SAVED = REPO / "tests" / "fixtures" / "saved-reports"
FAKE_NN = SAVED / "20261126T205300Z-fake_nn"  # 2 runs (one failed), Prometheus series
TRAIN = SAVED / "20261126T220000Z-train"  # a script, no monitoring host: no series
# Attributes through which a page could load something from elsewhere.
RESOURCE_ATTRS = {"src", "href", "action", "poster", "data", "srcset", "formaction", "background"}


class Page(HTMLParser):
    """What a test needs of an HTML page: images, tables (rows of cell texts) and where each
    table sits, every tag and attribute."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.images: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.table_parents: list[str] = []
        self.captions: list[str] = []
        self._open: list[tuple[str, dict[str, str]]] = []
        self._cell: list[str] | None = None
        self._caption: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in values.items()]
        if tag == "img":
            self.images.append(values.get("src", ""))
        elif tag == "table":
            parent = self._open[-1] if self._open else ("", {})
            self.table_parents.append(f"{parent[0]}.{parent[1].get('class', '')}")
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "figcaption":
            self._caption = []
        if tag not in ("img", "meta", "br"):
            self._open.append((tag, values))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "figcaption" and self._caption is not None:
            self.captions.append(" ".join("".join(self._caption).split()))
            self._caption = None
        if self._open and self._open[-1][0] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._caption is not None:
            self._caption.append(data)


def png(src: str) -> bytes:
    assert src.startswith("data:image/png;base64,")
    data = base64.b64decode(src.split(",", 1)[1], validate=True)
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
    return data


def assert_self_contained(html: str, page: Page) -> None:
    assert html.startswith("<!DOCTYPE html>")
    assert not {"script", "link", "iframe", "object", "embed", "base"} & set(page.tags)
    for tag, attr, value in page.attrs:
        if attr in RESOURCE_ATTRS:
            assert value.startswith("data:image/png;base64,"), (tag, attr, value[:80])
        else:
            assert not re.search(r"https?:|//", value), (tag, attr, value)
    assert "url(" not in html and "@import" not in html


def with_series(fixture: str, rid: str, name: str, created: str) -> Report:
    """A succeeded report of one run over a recorded Prometheus fixture."""
    meta, block, _ = collect_recorded(fixture)
    base = make(name, nodes=3, rid=rid)
    run = dataclasses.replace(
        base.runs[0],
        start=meta["start"],
        end=meta["end"],
        wall_s=meta["end"] - meta["start"],
        metrics=RunMetrics.from_dict(block),
    )
    return dataclasses.replace(base, runs=(run,), created=created)


def test_html_overlays_every_reports_series_beside_the_table() -> None:
    reports = [
        Report.load(FAKE_NN),
        with_series(
            "load-3nodes",
            "20261203T101500Z-fake_nn_balanced",
            "fake_nn_balanced",
            "2026-12-03T10:15:00Z",
        ),
        Report.load(TRAIN),
    ]
    sources = [
        str(FAKE_NN),
        "reports/20261203T101500Z-fake_nn_balanced",
        str(TRAIN / "report.json"),
    ]
    html = compare.render_html(reports, sources)
    page = Page(html)
    assert_self_contained(html, page)
    # A plot per metric with series (here all), each a real PNG, all different.
    assert len(page.images) == len(model.SERIES_METRICS)
    assert len({png(src) for src in page.images}) == len(page.images)
    # The reports: a row each, naming its file; then today's table, row for row.
    legend, table = page.tables
    assert legend[0] == ["#", "report", "workload", "created", "status", "id", "file"]
    assert [row[0] for row in legend[1:]] == ["1", "2", "3"]
    for row, r, source in zip(legend[1:], reports, sources, strict=True):
        assert row[1] == compare.label(r) and row[5] == r.id and row[6] == source
    assert legend[2][2].startswith("fake_nn_balanced {") and legend[3][2].startswith("train {")
    comparison = compare.rows(reports)
    assert table[0] == ["metric", *(h for h, _, _ in compare._columns(comparison))]
    assert table[1] == ["report", reports[0].id, reports[1].id, "", reports[2].id, ""]
    for row, expected in zip(table[2:], comparison.rows, strict=True):
        assert row[0] == expected.label
        assert row[1:] == [expected.values[0], expected.values[1], expected.ratios[0],
                           expected.values[2], expected.ratios[1]]  # fmt: skip
    assert any("different workloads" in n for n in comparison.notes)
    assert "Note: different workloads or parameters" in html
    # The report without series is named under every plot, with its reason.
    assert page.captions == [
        "Not in this plot: #3 train · 2 nodes: no monitoring host in the inventory"
    ] * len(model.SERIES_METRICS)
    # Every table in a scrolling wrapper: the page itself never gets wider than 1280 px.
    assert page.table_parents == ["div.wide", "div.wide"]
    assert "td.id { max-width: 18ch; overflow-wrap: anywhere; word-break: break-all; }" in html


def test_html_runs_overlay_from_their_own_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each run's lines start at its own start, whatever the date; one colour and one legend
    entry per report."""
    drawn: list[tuple[list[tuple[float, float]], dict[str, Any]]] = []
    real = compare.step_line

    def step_line(ax: Any, points: list[tuple[float, float]], **style: Any) -> None:
        drawn.append((points, style))
        real(ax, points, **style)

    monkeypatch.setattr(compare, "step_line", step_line)
    a = with_series("short-run", "20261126T205300Z-a", "fake_nn", "2026-11-26T20:53:00Z")
    b = with_series("load-3nodes", "20261203T101500Z-b", "fake_nn", "2026-12-03T10:15:00Z")
    plotted, unplotted = compare.overlay_plots([a, b])
    assert [p["name"] for p in plotted] == [m.key for m in model.SERIES_METRICS] and not unplotted
    cpu = drawn[:6]  # the first plot: the 3 nodes of each report
    for report_, lines in ((a, cpu[:3]), (b, cpu[3:])):
        run = report_.runs[0]
        assert run.metrics is not None and run.start is not None
        recorded = [points for _, points in sorted(run.metrics.series["cpu_pct"].items())]
        for (points, _), first in zip(lines, recorded, strict=True):
            # Seconds since that run's own start (the two runs are a week apart).
            assert points[0] == pytest.approx((first[0][0] - run.start, first[0][1]))
            assert -1 < points[0][0] < 10 and points[-1][0] < 60
    colours = [style["color"] for _, style in cpu]
    assert len(set(colours[:3])) == len(set(colours[3:])) == 1 and colours[0] != colours[3]
    labels = [style["label"] for _, style in cpu if style["label"]]
    assert labels == [
        "#1 fake_nn · 3 nodes · 2026-11-26 20:53",
        "#2 fake_nn · 3 nodes · 2026-12-03 10:15",
    ]


def test_html_without_any_series_says_so() -> None:
    figures_only = make(nodes=2)  # cluster and node figures, no series
    plain = dataclasses.replace(
        figures_only, runs=tuple(dataclasses.replace(r, metrics=None) for r in figures_only.runs)
    )
    html = compare.render_html(
        [Report.load(TRAIN), plain, figures_only], [str(TRAIN), "plain", "figures"]
    )
    page = Page(html)
    assert_self_contained(html, page)
    assert page.images == []
    assert "No report has a time series to plot." in html
    for m in model.SERIES_METRICS:
        assert f"{m.title}: no time series in any report." in html
    assert "#1 train · 2 nodes: no monitoring host in the inventory" in html
    assert "#2 fake_nn · 2 nodes: no metrics in its runs" in html
    assert "#3 fake_nn · 2 nodes: no samples in its runs&#39; windows" in html
    assert [row[6] for row in page.tables[0][1:]] == [str(TRAIN), "plain", "figures"]


def test_html_escapes_what_reports_say() -> None:
    hostile = make('<img src="http://evil.example/x.png">', nodes=1)
    html = compare.render_html([hostile, make(nodes=2)], ['"><script>x</script>', "b"])
    page = Page(html)
    assert_self_contained(html, page)
    assert "&lt;img src=&#34;http://evil.example/x.png&#34;&gt;" in html
    assert "&#34;&gt;&lt;script&gt;x&lt;/script&gt;" in html
