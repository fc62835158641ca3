"""Reports side by side, as the seed's single- vs two-machine table: a column per report,
each after the first with its ratio to the first (0.52 times: about half the first's).

A report's figure for a metric is the median over its successful runs (as its wall time
is), so a report of five repeats and one of a single run compare on the same footing.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from raykit.jobs import plain_text
from raykit.report import DASH, fmt_bytes, fmt_count, fmt_pct, fmt_seconds, md_escape

Report = Mapping[str, Any]
TIMES = "\N{MULTIPLICATION SIGN}"


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


def _ok_runs(report: Report) -> list[Mapping[str, Any]]:
    return [
        r
        for r in report.get("runs") or []
        if isinstance(r, Mapping) and str(r.get("status", "")).upper() == "SUCCEEDED"
    ]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value and abs(value) != float("inf") else None


def _median(values: Sequence[Any]) -> float | None:
    numbers = [n for v in values if (n := _number(v)) is not None]
    return statistics.median(numbers) if numbers else None


def _summary(key: str) -> Callable[[Report], float | None]:
    def get(report: Report) -> float | None:
        stats = (report.get("summary") or {}).get(key) or {}
        value = _number(stats.get("median"))
        if value is None:  # an older or hand-made report without a summary
            value = _median([r.get(key) for r in _ok_runs(report)])
        return value

    return get


def _cluster(key: str) -> Callable[[Report], float | None]:
    def get(report: Report) -> float | None:
        return _median(
            [((r.get("metrics") or {}).get("cluster") or {}).get(key) for r in _ok_runs(report)]
        )

    return get


def _disk_max(report: Report) -> float | None:
    # The fullest node's disk, per run.
    per_run = []
    for r in _ok_runs(report):
        nodes = (r.get("metrics") or {}).get("nodes") or {}
        values = [
            n for node in nodes.values() if (n := _number((node or {}).get("disk_used_pct_max")))
        ]
        per_run.append(max(values) if values else None)
    return _median(per_run)


def _nodes(report: Report) -> float | None:
    """The nodes the run measured: the manifest's hosts that Ray reported alive when the run
    started; the inventory's count only for a report that could not ask Ray."""
    hosts = (report.get("manifest") or {}).get("hosts")
    if not isinstance(hosts, list) or not hosts:
        return None
    alive = [h.get("alive") for h in hosts if isinstance(h, dict)]
    if any(a is not None for a in alive):
        return float(sum(1 for a in alive if a))
    return float(len(hosts))


# (label, how to get the number, how to show it)
METRICS: tuple[tuple[str, Callable[[Report], float | None], Callable[[Any], str]], ...] = (
    ("wall time (median)", _summary("wall_s"), fmt_seconds),
    ("workload wall time (median)", _summary("workload_wall_s"), fmt_seconds),
    ("cluster CPU % mean", _cluster("cpu_pct_mean"), fmt_pct),
    ("cluster CPU % p95", _cluster("cpu_pct_p95"), fmt_pct),
    ("memory used (max)", _cluster("mem_used_bytes_max"), fmt_bytes),
    ("disk used % (max)", _disk_max, fmt_pct),
    ("object store used (max)", _cluster("object_store_used_max_bytes"), fmt_bytes),
    ("network sent", _cluster("net_sent_bytes"), fmt_bytes),
    ("network received", _cluster("net_recv_bytes"), fmt_bytes),
    ("nodes", _nodes, fmt_count),
)


def label(report: Report) -> str:
    """`fake_nn · 3 nodes`."""
    n = _nodes(report)
    hosts = DASH if n is None else f"{int(n)} node{'s' if n != 1 else ''}"
    return f"{report.get('name') or DASH} · {hosts}"


def ratio(value: float | None, first: float | None) -> str:
    if value is None or first is None or first == 0:
        return DASH
    return f"{value / first:.2f}{TIMES}"


def _checksums(report: Report) -> set[str]:
    return {
        str(c)
        for r in _ok_runs(report)
        if (c := (r.get("result") or {}).get("checksum")) not in (None, "")
    }


def _checksum_cell(sums: set[str]) -> str:
    if not sums:
        return DASH
    if len(sums) > 1:
        return "differs between runs"
    return next(iter(sums))[:16]


def _workload(report: Report) -> str:
    params = report.get("params")
    text = json.dumps(params, sort_keys=True, ensure_ascii=False) if params else ""
    return f"{report.get('name') or DASH}{' ' + text if text else ''}"


def rows(reports: Sequence[Report]) -> Comparison:
    """The comparison table: a row per metric, a column per report; values as text,
    missing ones as "—"."""
    labels = [label(r) for r in reports]
    ids = [str(r.get("id") or DASH) for r in reports]
    out: list[Row] = []
    for name, get, fmt in METRICS:
        values = [get(r) for r in reports]
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
    for lab, rid, r in zip(labels, ids, reports, strict=True):
        if r.get("status") != "succeeded":
            runs = r.get("runs") or []
            notes.append(
                f"{lab} ({rid}) {r.get('status') or 'has no status'}: its figures come from "
                f"{len(_ok_runs(r))} successful run(s) of {len(runs)}"
                + (f" ({plain_text(r['error'])})" if r.get("error") else "")
            )
    if any(len(s) > 1 for s in sums):
        notes.append("a report whose runs disagree on the checksum: see its runs table")
    if len(reports) > 1:
        notes.append("ratios: each report's value divided by the first report's")
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
