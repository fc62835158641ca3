"""Benchmark reports (docs/reports.md): an id, report.json, report.md and a self-contained
report.html with a plot per metric; loading a saved one back; run summaries. The report
itself is raykit.model's Report; its tables and plots follow model.METRICS.

The HTML page needs no network: plain CSS inline, plots as PNGs in `data:` URIs, no
scripts, no links to anything outside. Every string from a report goes through jinja2's
autoescape (HTML) or `md_escape` (Markdown), so a host called `<script>` stays text.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from raykit import balance
from raykit.jobs import plain_text
from raykit.model import (
    CLUSTER_METRICS,
    NODE_METRICS,
    REPORT_JSON,
    SCHEMA,
    SERIES_METRICS,
    SUMMARY_METRICS,
    Metric,
    Report,
    ReportError,
    Run,
    RunMetrics,
    Stats,
    finite,
    summarize,
)

FILES = {"json": REPORT_JSON, "md": "report.md", "html": "report.html"}
DASH = "—"
# A plot's y axis per unit: (label, scale of the values).
PLOT_UNITS = {
    "pct": ("%", 1.0),
    "count": ("", 1.0),
    "seconds": ("s", 1.0),
    "bytes": ("MiB", 1 / 2**20),
    "bytes_per_s": ("MiB/s", 1 / 2**20),
}


# --- ids, summaries ------------------------------------------------------------------------


def new_id(name: str, now: float | datetime | None = None) -> str:
    """`<UTC timestamp>-<name>`, e.g. `20261126T210455Z-fake_nn`; the name is reduced to
    characters that are safe in a directory name."""
    if now is None:
        now = time.time()
    moment = now if isinstance(now, datetime) else datetime.fromtimestamp(now, UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:80] or "report"
    return f"{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}-{safe}"


def summarize_runs(runs: Iterable[Run]) -> dict[str, Stats]:
    """{min, median, mean, max, n} of wall_s and of workload_wall_s over the successful runs
    (a run without a workload wall time counts for wall_s only)."""
    return summarize(runs)


# --- write / load --------------------------------------------------------------------------


def write(report: Report, out_dir: Path) -> dict[str, Path]:
    """Write report.json, report.md and report.html into `out_dir` (made if needed);
    return their paths under the keys json, md, html."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {key: out_dir / name for key, name in FILES.items()}
    _write_text(paths["json"], report.dump())
    _write_text(paths["md"], render_markdown(report))
    _write_text(paths["html"], render_html(report))
    return paths


def _write_text(path: Path, text: str) -> None:
    # Whole files or none: a reader never sees half a report.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def load(path: Path | str) -> Report:
    """A saved report, from its directory or its report.json. Raises ReportError (a
    ValueError) saying what is wrong, or FileNotFoundError for a path that is not there."""
    return Report.load(path)


# --- formatting (shared with compare) ------------------------------------------------------


def fmt_seconds(value: Any) -> str:
    if not finite(value):
        return DASH
    s = float(value)
    if abs(s) < 10:
        return f"{s:.3f} s"
    if abs(s) < 60:
        return f"{s:.2f} s"
    minutes, rest = divmod(s, 60)
    return f"{int(minutes)} min {rest:04.1f} s"


def fmt_pct(value: Any) -> str:
    return f"{float(value):.1f} %" if finite(value) else DASH


def fmt_bytes(value: Any) -> str:
    if not finite(value):
        return DASH
    n = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def fmt_count(value: Any) -> str:
    if not finite(value):
        return DASH
    return f"{value:g}" if isinstance(value, float) and not value.is_integer() else f"{int(value)}"


def fmt_rate(value: Any) -> str:
    return f"{fmt_bytes(value)}/s" if finite(value) else DASH


# A formatter per unit of model.METRICS.
FORMATS: dict[str, Callable[[Any], str]] = {
    "pct": fmt_pct,
    "bytes": fmt_bytes,
    "bytes_per_s": fmt_rate,
    "count": fmt_count,
    "seconds": fmt_seconds,
}


def fmt_text(value: Any) -> str:
    if value is None or value == "":
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def fmt_time(epoch: Any) -> str:
    if not finite(epoch):
        return DASH
    return datetime.fromtimestamp(float(epoch), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _first_line(message: Any, limit: int = 300) -> str:
    """Ray's job message starts with what happened, then repeats the log: keep the first."""
    lines = [line.strip() for line in plain_text(fmt_text(message)).splitlines() if line.strip()]
    first = lines[0] if lines else DASH
    return first if len(first) <= limit else first[: limit - 1] + "…"


def md_escape(value: Any) -> str:
    """Text for a Markdown table cell or line: no raw HTML, no table breaks, no links."""
    text = " ".join(plain_text(fmt_text(value)).split())
    text = text.replace("\\", "\\\\").replace("&", "&amp;")
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    for ch in "|[]`*":
        text = text.replace(ch, "\\" + ch)
    return text


def md_fence(text: str) -> str:
    """A fenced code block around `text`, longer than any backtick run inside it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"


# --- the view both templates render --------------------------------------------------------


def _per_node(result: Mapping[str, Any] | None) -> str:
    per_node = result.get("per_node") if result else None
    if not isinstance(per_node, Mapping) or not per_node:
        return DASH
    return ", ".join(f"{ip}: {fmt_count(n)}" for ip, n in sorted(per_node.items()))


def _share(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:.0f} %"


def _work(number: int, r: Run) -> dict[str, Any] | None:
    """A run's work per node (balance.nodes) as display strings, and its verdict; None for a
    run whose result does not say what each node did."""
    rows = balance.nodes(r.result)
    if not rows:
        return None
    return {
        "n": number,
        "rows": [
            {
                "ip": w.ip,
                "cpus": fmt_count(w.cpus),
                "workers": fmt_count(w.workers),
                "calls": fmt_count(w.calls),
                "work_share": _share(w.work_share),
                "cpu_share": _share(w.cpu_share),
                "busy": fmt_seconds(w.busy_s),
                "active": fmt_seconds(w.active_s),
                "finished": fmt_seconds(w.last_end_s),
                "rate": f"{w.calls_per_s_per_cpu:.1f}" if w.calls_per_s_per_cpu else DASH,
            }
            for w in rows
        ],
        "verdict": balance.verdict(r.result),
    }


def _params(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    return [] if params is None else [(str(k), fmt_text(v)) for k, v in params.items()]


def _figure(metric: Metric, value: Any) -> str:
    return FORMATS[metric.unit](value)


def view(report: Report) -> dict[str, Any]:
    """Every figure of a report as display strings, for the templates."""
    manifest = report.manifest
    hosts = [
        {
            "name": fmt_text(h.name),
            "node_ip": fmt_text(h.node_ip),
            "role": fmt_text(h.role),
            "cpus": fmt_count(h.cpus),
            "memory": fmt_bytes(h.memory_bytes),
            "object_store": fmt_bytes(h.object_store_bytes),
            "alive": fmt_text(h.alive),
        }
        for h in manifest.hosts
    ]
    run_rows: list[dict[str, Any]] = []
    run_metrics: list[dict[str, Any]] = []
    work: list[dict[str, Any]] = []
    tails: list[dict[str, Any]] = []
    for r in report.runs:
        number = r.index + 1 if r.index is not None else len(run_rows) + 1
        run_rows.append(
            {
                "n": number,
                "job_id": fmt_text(r.job_id),
                "status": fmt_text(r.status),
                "wall": fmt_seconds(r.wall_s),
                "workload_wall": fmt_seconds(r.workload_wall_s),
                "overhead": fmt_seconds(r.overhead_s),
                "checksum": fmt_text(r.checksum),
                "per_node": _per_node(r.result),
                "message": _first_line(r.message) if not r.succeeded else "",
            }
        )
        if r.succeeded and (done := _work(number, r)) is not None:
            work.append(done)
        m = r.metrics or RunMetrics()  # a run without a metrics block: every figure "—"
        window = m.window
        run_metrics.append(
            {
                "n": number,
                "window": (
                    f"{fmt_time(window.start)} + {fmt_seconds(_span(window.start, window.end))}"
                    if window is not None
                    else DASH
                ),
                "nodes": [
                    {"ip": ip, "cells": [_figure(c, figures.get(c.key)) for c in NODE_METRICS]}
                    for ip, figures in m.nodes.items()
                ],
                "cluster": [(c.title, _figure(c, m.cluster.get(c.key))) for c in CLUSTER_METRICS],
                "missing": sorted((k, fmt_text(v)) for k, v in m.missing.items()),
            }
        )
        if not r.succeeded and r.log_tail:
            tails.append(
                {"n": number, "job_id": fmt_text(r.job_id), "text": plain_text(r.log_tail)}
            )
    return {
        "id": fmt_text(report.id),
        "name": fmt_text(report.name),
        "kind": fmt_text(report.kind),
        "status": fmt_text(report.status),
        "failed": not report.succeeded,
        "error": plain_text(report.error) if report.error else None,
        "error_detail": plain_text(report.error_detail or "").rstrip(),
        "created": fmt_text(report.created),
        "params": _params(report.params),
        "notes": [fmt_text(n) for n in report.notes],
        "manifest": [
            (label, fmt_text(value))
            for label, value in (
                ("cluster", manifest.cluster_name),
                ("inventory", manifest.inventory),
                ("Python", manifest.python),
                ("Ray", manifest.ray),
                ("lock", manifest.lock_sha12),
                ("venv", manifest.venv),
                ("raykit", manifest.raykit_version),
                ("dashboard", manifest.dashboard_url),
                ("Prometheus", manifest.prometheus_url),
            )
        ],
        "hosts": hosts,
        "summary": [
            (
                m.title,
                *(fmt_seconds(v) for v in (s.min, s.median, s.mean, s.max)),
                fmt_count(s.n),
            )
            for m in SUMMARY_METRICS
            for s in (report.stats(m.key),)
        ],
        "runs": run_rows,
        "node_headers": [c.title for c in NODE_METRICS],
        "run_metrics": run_metrics,
        "work": work,
        "tails": tails,
    }


def _span(start: Any, end: Any) -> float | None:
    return float(end) - float(start) if finite(start) and finite(end) else None


# --- rendering -----------------------------------------------------------------------------


def environment() -> jinja2.Environment:
    """The templates of data/templates: HTML ones autoescape, Markdown ones escape through
    the `md` filter instead."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("raykit", "data/templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_escape
    env.filters["fence"] = md_fence
    return env


def render_markdown(report: Report) -> str:
    return environment().get_template("report.md.j2").render(v=view(report))


def render_html(report: Report) -> str:
    return environment().get_template("report.html.j2").render(v=view(report), plots=plots(report))


# --- plots ---------------------------------------------------------------------------------


def _matplotlib_config() -> None:
    """Keep matplotlib's config and font cache out of $HOME: a private directory under the
    temp dir, reused between runs (the font cache takes a second to build)."""
    if os.environ.get("MPLCONFIGDIR"):
        return
    path = Path(tempfile.gettempdir()) / f"raykit-matplotlib-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = path.lstat()
        if path.is_symlink() or st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise PermissionError(path)
    except OSError:
        path = Path(tempfile.mkdtemp(prefix="raykit-matplotlib-"))
    os.environ["MPLCONFIGDIR"] = str(path)


def plot_uri(
    metric: Metric,
    xlabel: str,
    draw: Callable[[Any], None],
    *,
    size: tuple[float, float] = (7.5, 2.8),
    legend_below: bool = False,
) -> str:
    """One plot of a series metric as a PNG in a `data:` URI: `draw(ax)` draws its lines
    (labelled for the legend) on matplotlib axes; titles, axes and legend are the same for
    every raykit plot (the legend beside the axes, or below them for long labels)."""
    _matplotlib_config()
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    unit, _ = PLOT_UNITS[metric.unit]
    with rc_context({"text.parse_math": False, "font.size": 9}):
        fig = Figure(figsize=size, dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        draw(ax)
        ax.set_title(metric.title, loc="left")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(unit)
        if unit == "%":
            ax.set_ylim(0, max(100.0, ax.get_ylim()[1]))
        else:
            ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        if legend_below:
            fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
        else:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"data:image/png;base64,{encoded}"


def segment(
    points: Iterable[tuple[float, float | None]], origin: float, scale: float
) -> list[tuple[float, float]]:
    """A series' finite points as (seconds since `origin`, value times `scale`)."""
    return [(float(t) - origin, float(v) * scale) for t, v in points if finite(t) and finite(v)]


def step_line(ax: Any, points: Sequence[tuple[float, float]], **style: Any) -> None:
    """Each point holds the latest sample: a step, not a slope."""
    xs, ys = zip(*points, strict=True)
    ax.plot(xs, ys, drawstyle="steps-post", **style)


def plots(report: Report) -> list[dict[str, str]]:
    """One PNG per metric over time, a line per node, x in seconds since the first run's
    start; run boundaries marked when there are several runs. [{name, title, data_uri}]"""
    measured = [(r, r.metrics) for r in report.runs if r.metrics is not None]
    runs = [r for r, _ in measured]
    starts = [float(r.start) for r in runs if finite(r.start)]
    if not runs or not starts:
        return []
    origin = min(starts)
    out = []
    for metric in SERIES_METRICS:
        _, scale = PLOT_UNITS[metric.unit]
        lines: dict[str, list[list[tuple[float, float]]]] = {}
        for _, m in measured:
            for ip, points in m.series.get(metric.key, {}).items():
                if part := segment(points, origin, scale):
                    lines.setdefault(str(ip), []).append(part)
        if not lines:
            continue

        def draw(ax: Any, lines: dict[str, list[list[tuple[float, float]]]] = lines) -> None:
            colors = [f"C{i % 10}" for i in range(len(lines))]
            for color, (ip, segments) in zip(colors, sorted(lines.items()), strict=True):
                for i, part in enumerate(segments):
                    step_line(ax, part, color=color, label=ip if i == 0 else None, linewidth=1.4)
            _mark_runs(ax, runs, origin)

        xlabel = f"seconds since the {'' if len(runs) == 1 else 'first '}run's start"
        out.append(
            {"name": metric.key, "title": metric.title, "data_uri": plot_uri(metric, xlabel, draw)}
        )
    return out


def _mark_runs(ax: Any, runs: Sequence[Run], origin: float) -> None:
    """The job's end as a dotted line; with several runs, each run's start dashed and named."""
    for i, r in enumerate(runs):
        if len(runs) > 1 and finite(r.start):
            x = float(r.start) - origin
            ax.axvline(x, color="0.35", linestyle="--", linewidth=0.8)
            ax.annotate(
                f"run {i + 1}",
                (x, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -10),
                textcoords="offset points",
                fontsize=7,
                color="0.35",
            )
        if finite(r.end):
            ax.axvline(float(r.end) - origin, color="0.55", linestyle=":", linewidth=0.8)


__all__ = [
    "SCHEMA",
    "ReportError",
    "environment",
    "fmt_bytes",
    "fmt_count",
    "fmt_pct",
    "fmt_seconds",
    "load",
    "md_escape",
    "new_id",
    "plot_uri",
    "render_html",
    "render_markdown",
    "summarize_runs",
    "write",
]
