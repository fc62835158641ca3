"""Reports side by side, as the seed's single- vs two-machine table: a column per report,
each after the first with its ratio to the first (0.52 times: about half the first's).

A report's figure for a metric is the median over its successful runs (as its wall time
is), so a report of five repeats and one of a single run compare on the same footing. The
rows are model.METRICS' `compare` entries, then the node count and the checksum.

`render_html` adds each metric's time series, every report's runs overlaid from their own
start: what one used to read off Grafana screenshots side by side.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from raykit import balance
from raykit.jobs import plain_text
from raykit.model import METRICS, SERIES_METRICS, Metric, Report, Run, finite
from raykit.report import (
    DASH,
    FORMATS,
    PLOT_UNITS,
    environment,
    fmt_count,
    fmt_text,
    md_escape,
    plot_uri,
    segment,
    step_line,
)

TIMES = "\N{MULTIPLICATION SIGN}"
# The metrics compared, in the table's order.
COMPARED = tuple(m for m in METRICS if m.compare)


@dataclass(frozen=True)
class Row:
    """One metric: its value in each report, and each later report's ratio to the first."""

    label: str
    values: list[str]
    ratios: list[str]


@dataclass(frozen=True)
class Comparison:
    labels: list[str]
    ids: list[str]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)


def _median(values: Sequence[float | None]) -> float | None:
    numbers = [float(v) for v in values if finite(v)]
    return statistics.median(numbers) if numbers else None


def figure(report: Report, metric: Metric) -> float | None:
    """A report's figure for a metric: the median over its successful runs (a summary
    metric: the saved summary's median, or the runs' for a report without one; a node
    figure: the fullest node's, per run)."""
    if metric.scope == "summary":
        median = report.stats(metric.key).median
        return float(median) if finite(median) else None
    per_run: list[float | None] = []
    for r in report.ok_runs:
        m = r.metrics
        if m is None:
            per_run.append(None)
        elif metric.scope == "cluster":
            per_run.append(m.cluster.get(metric.key))
        elif metric.scope == "nodes":
            values = [v for v in m.node_values(metric.key) if finite(v)]
            per_run.append(max(values) if values else None)
        else:
            raise ValueError(f"{metric.path}: a series has no single figure to compare")
    return _median(per_run)


def _nodes(report: Report) -> float | None:
    """The nodes the run measured: the manifest's hosts that Ray reported alive when the run
    started; the inventory's count only for a report that could not ask Ray."""
    hosts = report.manifest.hosts
    if not hosts:
        return None
    alive = [h.alive for h in hosts]
    if any(a is not None for a in alive):
        return float(sum(1 for a in alive if a))
    return float(len(hosts))


def announced_cpus(report: Report) -> float | None:
    """The CPUs the run's nodes announced to Ray (the workload's node_cpus, summed), median
    over the successful runs; None for a workload that does not say."""
    per_run = []
    for r in report.ok_runs:
        cpus = (r.result or {}).get("node_cpus")
        if isinstance(cpus, dict) and cpus:
            per_run.append(sum(float(c) for c in cpus.values() if finite(c)))
    return _median(per_run)


def last_node_lag(report: Report) -> float | None:
    """How long the last node worked after the others had finished, median over the runs."""
    return _median([balance.late_s(r.result) for r in report.ok_runs])


def _median_run(report: Report) -> Run | None:
    """The successful run with the median workload wall time (the lower middle one of an
    even count), None when no run has one."""
    timed = sorted(
        (r for r in report.ok_runs if finite(r.workload_wall_s)),
        key=lambda r: float(r.workload_wall_s or 0.0),
    )
    return timed[(len(timed) - 1) // 2] if timed else None


def balance_note(report: Report) -> str | None:
    """The balance verdict (raykit.balance) of the report's median run, naming the run."""
    run = _median_run(report)
    if run is None or (text := balance.verdict(run.result)) is None:
        return None
    number = run.index + 1 if run.index is not None else 1
    return f"run {number} (median): {text}"


def label(report: Report) -> str:
    """`fake_nn · 3 nodes`."""
    n = _nodes(report)
    hosts = DASH if n is None else f"{int(n)} node{'s' if n != 1 else ''}"
    return f"{report.name or DASH} · {hosts}"


def ratio(value: float | None, first: float | None) -> str:
    if value is None or first is None or first == 0:
        return DASH
    return f"{value / first:.2f}{TIMES}"


def _checksums(report: Report) -> set[str]:
    return {c for r in report.ok_runs if (c := r.checksum) is not None}


def _checksum_cell(sums: set[str]) -> str:
    if not sums:
        return DASH
    if len(sums) > 1:
        return "differs between runs"
    return next(iter(sums))[:16]


def _workload(report: Report) -> str:
    params = report.params
    text = json.dumps(params, sort_keys=True, ensure_ascii=False) if params else ""
    return f"{report.name or DASH}{' ' + text if text else ''}"


def rows(reports: Sequence[Report]) -> Comparison:
    """The comparison table: a row per metric, a column per report; values as text,
    missing ones as "—"."""
    labels = [label(r) for r in reports]
    ids = [r.id or DASH for r in reports]
    out: list[Row] = []
    table: list[tuple[str, list[float | None], Callable[[Any], str]]] = [
        (m.compare or m.title, [figure(r, m) for r in reports], FORMATS[m.unit]) for m in COMPARED
    ]
    table.append(("nodes", [_nodes(r) for r in reports], fmt_count))
    if any(announced_cpus(r) is not None for r in reports):
        # Its ratio is the ideal speedup of a workload that uses every CPU.
        table.append(("CPUs announced", [announced_cpus(r) for r in reports], fmt_count))
    if any(last_node_lag(r) is not None for r in reports):
        lags = [last_node_lag(r) for r in reports]
        table.append(("last node's lag (median)", lags, FORMATS["seconds"]))
    for name, values, fmt in table:
        out.append(
            Row(
                name,
                [fmt(v) for v in values],
                [ratio(v, values[0]) for v in values[1:]] if values else [],
            )
        )
    sums = [_checksums(r) for r in reports]
    first = sums[0] if sums else set()
    out.append(
        Row(
            "checksum",
            [_checksum_cell(s) for s in sums],
            [
                DASH if len(s) != 1 or len(first) != 1 else ("same" if s == first else "differs")
                for s in sums[1:]
            ],
        )
    )

    notes = []
    if len(reports) > 1:
        single = [s for s in sums if len(s) == 1]
        if len(single) == len(sums):
            if len({next(iter(s)) for s in single}) == 1:
                notes.append("checksums agree: every report computed the same answer")
            else:
                notes.append("checksums differ: the reports did not compute the same answer")
        workloads = [_workload(r) for r in reports]
        if len(set(workloads)) > 1:
            notes.append(
                "different workloads or parameters: "
                + "; ".join(dict.fromkeys(workloads))
                + " (the ratios compare different work)"
            )
    for i, (lab, r) in enumerate(zip(labels, reports, strict=True)):
        if (text := balance_note(r)) is not None:
            notes.append(f"#{i + 1} {lab}: {text}")
    for lab, rid, r in zip(labels, ids, reports, strict=True):
        if not r.succeeded:
            notes.append(
                f"{lab} ({rid}) {r.status or 'has no status'}: its figures come from "
                f"{len(r.ok_runs)} successful run(s) of {len(r.runs)}"
                + (f" ({plain_text(r.error)})" if r.error else "")
            )
    if any(len(s) > 1 for s in sums):
        notes.append("a report whose runs disagree on the checksum: see its runs table")
    if len(reports) > 1:
        notes.append("ratios: each report's value divided by the first report's")
        if any(row.label == "CPUs announced" for row in out):
            notes.append(
                "the CPUs' ratio is the ideal speedup (every CPU busy to the end); the workload"
                " wall time's inverse ratio is the measured one"
            )
    return Comparison(labels, ids, out, notes)


def _columns(comparison: Comparison) -> list[tuple[str, int, bool]]:
    """Headers in order: (header, report index, is-ratio)."""
    cols: list[tuple[str, int, bool]] = []
    for i, lab in enumerate(comparison.labels):
        cols.append((lab, i, False))
        if i > 0:
            cols.append((f"#{i + 1} ÷ #1", i, True))
    return cols


def _cell(row: Row, index: int, is_ratio: bool) -> str:
    return row.ratios[index - 1] if is_ratio else row.values[index]


def render_terminal(console: Console, reports: Sequence[Report]) -> None:
    """The comparison as a rich table, then its notes. Report text is shown as is, never
    read as rich markup."""
    comparison = rows(reports)
    table = Table(title="raykit reports" if len(reports) > 1 else None, title_justify="left")
    table.add_column("metric", style="bold", min_width=10)
    cols = _columns(comparison)
    for header, _, is_ratio in cols:
        if is_ratio:
            table.add_column(Text(header), justify="right", style="cyan", no_wrap=True)
        else:
            # The name on a line of its own: it stays whole in a narrow terminal.
            table.add_column(Text(header.replace(" · ", "\n")), justify="right", overflow="fold")
    # The ids are long: a row of their own, where they may fold, not in the headers.
    table.add_row(
        Text("report", style="dim"),
        *(Text("" if r else comparison.ids[i], style="dim") for _, i, r in cols),
        end_section=True,
    )
    for row in comparison.rows:
        table.add_row(Text(row.label), *(Text(_cell(row, i, r)) for _, i, r in cols))
    console.print(table)
    for note in comparison.notes:
        console.print(Text(f"note: {note}"))


def render_markdown(reports: Sequence[Report]) -> str:
    """The comparison as a Markdown table (report ids in the first row), then its notes."""
    comparison = rows(reports)
    cols = _columns(comparison)
    header = ["metric", *(h for h, _, _ in cols)]
    align = ["---", *("--:" for _ in cols)]
    ids = ["report", *("" if r else comparison.ids[i] for _, i, r in cols)]
    lines = [
        "| " + " | ".join(md_escape(h) for h in header) + " |",
        "|" + "|".join(align) + "|",
        "| " + " | ".join(md_escape(x) if x else "" for x in ids) + " |",
    ]
    for row in comparison.rows:
        cells = [row.label, *(_cell(row, i, r) for _, i, r in cols)]
        lines.append("| " + " | ".join(md_escape(c) for c in cells) + " |")
    text = "\n".join(lines) + "\n"
    if comparison.notes:
        text += "\n" + "\n".join(f"- {md_escape(n)}" for n in comparison.notes) + "\n"
    return text


# --- the HTML page -------------------------------------------------------------------------


def _colour(index: int) -> tuple[str, str]:
    """A report's colour in the plots (matplotlib's cycle, as hex for the page) and its line
    style: solid for the first ten reports, then dashed, dotted, dash-dotted."""
    from matplotlib.colors import to_hex

    return to_hex(f"C{index % 10}"), ("-", "--", ":", "-.")[index // 10 % 4]


def _short_time(created: str | None) -> str:
    """`2026-11-26 21:04` from report.json's `created`."""
    return created.replace("T", " ")[:16] if created else DASH


def _why_no_series(report: Report, metric: Metric) -> str:
    """Why a report has no line in a metric's plot, in its own words where it has them."""
    if not report.runs:
        return "no run finished"
    blocks = [m for r in report.runs if (m := r.metrics) is not None]
    if not blocks:
        return "no metrics in its runs"
    reasons = [why for m in blocks if (why := m.missing.get(metric.path))]
    if reasons:
        return "; ".join(dict.fromkeys(reasons))
    if any(m.series.get(metric.key) for m in blocks):
        return "its runs have no start time"
    return "no samples in its runs' windows"


def overlay_plots(
    reports: Sequence[Report],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A plot per series metric that some report has, every report's runs overlaid, each
    from its own start: ([{name, title, data_uri, without}], [{title, without}] for the
    metrics no report has). `without` names the reports missing from a plot, and why."""
    plotted: list[dict[str, Any]] = []
    unplotted: list[dict[str, Any]] = []
    labels = [label(r) for r in reports]
    for metric in SERIES_METRICS:
        _, scale = PLOT_UNITS[metric.unit]
        lines: list[list[list[tuple[float, float]]]] = []
        for r in reports:
            parts = []
            for run in r.runs:
                if run.metrics is None or not finite(run.start):
                    continue
                for _, points in sorted(run.metrics.series.get(metric.key, {}).items()):
                    if part := segment(points, float(run.start), scale):
                        parts.append(part)
            lines.append(parts)
        without = [
            f"#{i + 1} {labels[i]}: {_why_no_series(r, metric)}"
            for i, r in enumerate(reports)
            if not lines[i]
        ]
        if not any(lines):
            unplotted.append({"title": metric.title, "without": without})
            continue

        def draw(ax: Any, lines: list[list[list[tuple[float, float]]]] = lines) -> None:
            for i, (r, parts) in enumerate(zip(reports, lines, strict=True)):
                colour, style = _colour(i)
                name = f"#{i + 1} {labels[i]} · {_short_time(r.created)}"
                for j, part in enumerate(parts):
                    step_line(
                        ax,
                        part,
                        color=colour,
                        linestyle=style,
                        linewidth=1.2,
                        alpha=0.85,
                        label=name if j == 0 else None,
                    )

        uri = plot_uri(
            metric, "seconds since each run's start", draw, size=(10.0, 3.6), legend_below=True
        )
        plotted.append(
            {"name": metric.key, "title": metric.title, "data_uri": uri, "without": without}
        )
    return plotted, unplotted


def render_html(reports: Sequence[Report], sources: Sequence[str] | None = None) -> str:
    """The comparison as one self-contained page: the reports (each with its file, from
    `sources`), the table and its notes, then each metric over time with every report's
    runs overlaid. Inline CSS, plots as PNGs in `data:` URIs, no scripts, no links."""
    comparison = rows(reports)
    cols = _columns(comparison)
    plotted, unplotted = overlay_plots(reports)
    page = {
        "title": f"raykit compare: {len(reports)} report{'s' if len(reports) != 1 else ''}",
        "reports": [
            {
                "n": i + 1,
                "colour": _colour(i)[0],
                "label": comparison.labels[i],
                "workload": _workload(r),
                "created": fmt_text(r.created),
                "status": fmt_text(r.status),
                "failed": not r.succeeded,
                "id": comparison.ids[i],
                "file": sources[i] if sources is not None else DASH,
            }
            for i, r in enumerate(reports)
        ],
        "headers": [h for h, _, _ in cols],
        "ratio_columns": [is_ratio for _, _, is_ratio in cols],
        "ids": ["" if is_ratio else comparison.ids[i] for _, i, is_ratio in cols],
        "rows": [(row.label, [_cell(row, i, r) for _, i, r in cols]) for row in comparison.rows],
        "notes": comparison.notes,
        "plots": plotted,
        "unplotted": unplotted,
    }
    return environment().get_template("compare.html.j2").render(v=page)
