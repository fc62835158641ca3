"""Benchmark reports (docs/reports.md): an id, report.json, report.md and a self-contained
report.html with a plot per metric; loading a saved one back; run summaries.

The HTML page needs no network: plain CSS inline, plots as PNGs in `data:` URIs, no
scripts, no links to anything outside. Every string from a report goes through jinja2's
autoescape (HTML) or `md_escape` (Markdown), so a host called `<script>` stays text.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import statistics
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from raykit.jobs import plain_text

SCHEMA = 1
FILES = {"json": "report.json", "md": "report.md", "html": "report.html"}
DASH = "—"

# Node columns of the metrics tables: (field, header, formatter name).
NODE_COLUMNS = (
    ("cpu_pct_mean", "CPU % mean", "pct"),
    ("cpu_pct_p95", "CPU % p95", "pct"),
    ("mem_used_pct_mean", "mem % mean", "pct"),
    ("mem_used_pct_max", "mem % max", "pct"),
    ("disk_used_pct_max", "disk % max", "pct"),
    ("object_store_used_max_bytes", "object store max", "bytes"),
    ("net_sent_bytes", "net sent", "bytes"),
    ("net_recv_bytes", "net received", "bytes"),
    ("samples", "samples", "count"),
)
CLUSTER_ROWS = (
    ("cpu_pct_mean", "CPU % mean (weighted by CPUs)", "pct"),
    ("cpu_pct_p95", "CPU % p95", "pct"),
    ("mem_used_bytes_max", "memory used, max", "bytes"),
    ("object_store_used_max_bytes", "object store used, max", "bytes"),
    ("net_sent_bytes", "network sent", "bytes"),
    ("net_recv_bytes", "network received", "bytes"),
)
# One plot per series: title, y label, scale of the values.
PLOTS = {
    "cpu_pct": ("CPU utilisation", "%", 1.0),
    "mem_used_pct": ("Memory used", "%", 1.0),
    "disk_used_pct": ("Disk used", "%", 1.0),
    "object_store_used_bytes": ("Object store used", "MiB", 1 / 2**20),
    "net_sent_bytes_per_s": ("Network sent", "MiB/s", 1 / 2**20),
    "net_recv_bytes_per_s": ("Network received", "MiB/s", 1 / 2**20),
}


class ReportError(ValueError):
    """A file that cannot be read as a raykit report."""


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


def _stats(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"min": None, "median": None, "mean": None, "max": None, "n": 0}
    return {
        "min": min(values),
        "median": statistics.median(values),
        "mean": statistics.fmean(values),
        "max": max(values),
        "n": len(values),
    }


def _succeeded(run: Mapping[str, Any]) -> bool:
    return str(run.get("status", "")).upper() == "SUCCEEDED"


def summarize_runs(runs: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """{min, median, mean, max, n} of wall_s and of workload_wall_s over the successful runs
    (a run without a workload wall time counts for wall_s only)."""
    ok = [r for r in runs if _succeeded(r)]
    walls = [float(r["wall_s"]) for r in ok if _finite(r.get("wall_s"))]
    work = [float(r["workload_wall_s"]) for r in ok if _finite(r.get("workload_wall_s"))]
    return {"wall_s": _stats(walls), "workload_wall_s": _stats(work)}


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- write / load --------------------------------------------------------------------------


def _jsonable(obj: Any) -> Any:
    """JSON without NaN or Infinity (not JSON), paths as strings."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write(report: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write report.json, report.md and report.html into `out_dir` (made if needed);
    return their paths under the keys json, md, html."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = _jsonable(report)
    paths = {key: out_dir / name for key, name in FILES.items()}
    _write_text(paths["json"], json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    _write_text(paths["md"], render_markdown(doc))
    _write_text(paths["html"], render_html(doc))
    return paths


def _write_text(path: Path, text: str) -> None:
    # Whole files or none: a reader never sees half a report.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def load(path: Path | str) -> dict[str, Any]:
    """A saved report, from its directory or its report.json. Raises ReportError (a
    ValueError) saying what is wrong, or FileNotFoundError for a path that is not there."""
    path = Path(path)
    if path.is_dir():
        file = path / FILES["json"]
        if not file.is_file():
            raise FileNotFoundError(f"{path}: no {FILES['json']} here (not a report directory?)")
    elif path.exists():
        file = path
    else:
        raise FileNotFoundError(f"{path}: no such report directory or file")
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ReportError(f"{file}: not a raykit report (not text: {exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise ReportError(f"{file}: not a raykit report (not JSON: {exc.msg})") from exc
    if not isinstance(doc, dict) or "schema" not in doc or "runs" not in doc:
        raise ReportError(f"{file}: not a raykit report (no schema and runs)")
    if doc["schema"] != SCHEMA:
        raise ReportError(
            f"{file}: report schema {doc['schema']!r}; this raykit reads schema {SCHEMA}"
        )
    if not isinstance(doc["runs"], list):
        raise ReportError(f"{file}: not a raykit report (runs is not a list)")
    return doc


# --- formatting (shared with compare) ------------------------------------------------------


def fmt_seconds(value: Any) -> str:
    if not _finite(value):
        return DASH
    s = float(value)
    if abs(s) < 10:
        return f"{s:.3f} s"
    if abs(s) < 60:
        return f"{s:.2f} s"
    minutes, rest = divmod(s, 60)
    return f"{int(minutes)} min {rest:04.1f} s"


def fmt_pct(value: Any) -> str:
    return f"{float(value):.1f} %" if _finite(value) else DASH


def fmt_bytes(value: Any) -> str:
    if not _finite(value):
        return DASH
    n = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def fmt_count(value: Any) -> str:
    if not _finite(value):
        return DASH
    return f"{value:g}" if isinstance(value, float) and not value.is_integer() else f"{int(value)}"


FORMATS = {"pct": fmt_pct, "bytes": fmt_bytes, "count": fmt_count, "seconds": fmt_seconds}


def fmt_text(value: Any) -> str:
    if value is None or value == "":
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def fmt_time(epoch: Any) -> str:
    if not _finite(epoch):
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


def _per_node(result: Any) -> str:
    per_node = (result or {}).get("per_node") if isinstance(result, Mapping) else None
    if not isinstance(per_node, Mapping) or not per_node:
        return DASH
    return ", ".join(f"{ip}: {fmt_count(n)}" for ip, n in sorted(per_node.items()))


def _params(params: Any) -> list[tuple[str, str]]:
    if isinstance(params, Mapping):
        return [(str(k), fmt_text(v)) for k, v in params.items()]
    return [] if params is None else [("", fmt_text(params))]


def view(report: Mapping[str, Any]) -> dict[str, Any]:
    """Every figure of a report as display strings, for the templates."""
    manifest = report.get("manifest") or {}
    runs = [r for r in report.get("runs") or [] if isinstance(r, Mapping)]
    summary = report.get("summary") or summarize_runs(runs)
    hosts = [
        {
            "name": fmt_text(h.get("name")),
            "node_ip": fmt_text(h.get("node_ip")),
            "role": fmt_text(h.get("role")),
            "cpus": fmt_count(h.get("cpus")),
            "memory": fmt_bytes(h.get("memory_bytes")),
            "object_store": fmt_bytes(h.get("object_store_bytes")),
            "alive": fmt_text(h.get("alive")),
        }
        for h in manifest.get("hosts") or []
    ]
    run_rows: list[dict[str, Any]] = []
    run_metrics: list[dict[str, Any]] = []
    tails: list[dict[str, Any]] = []
    for r in runs:
        result = r.get("result") if isinstance(r.get("result"), Mapping) else {}
        number = (r.get("index") or 0) + 1 if isinstance(r.get("index"), int) else len(run_rows) + 1
        run_rows.append(
            {
                "n": number,
                "job_id": fmt_text(r.get("job_id")),
                "status": fmt_text(r.get("status")),
                "wall": fmt_seconds(r.get("wall_s")),
                "workload_wall": fmt_seconds(r.get("workload_wall_s")),
                "overhead": fmt_seconds(r.get("overhead_s")),
                "checksum": fmt_text((result or {}).get("checksum")),
                "per_node": _per_node(result),
                "message": _first_line(r.get("message")) if not _succeeded(r) else "",
            }
        )
        m = r.get("metrics") or {}
        nodes = m.get("nodes") or {}
        cluster = m.get("cluster") or {}
        window = m.get("window") or {}
        run_metrics.append(
            {
                "n": number,
                "window": (
                    f"{fmt_time(window.get('start'))} + "
                    f"{fmt_seconds(_span(window.get('start'), window.get('end')))}"
                    if window
                    else DASH
                ),
                "nodes": [
                    {"ip": ip, "cells": [FORMATS[f](fig.get(k)) for k, _, f in NODE_COLUMNS]}
                    for ip, fig in nodes.items()
                    if isinstance(fig, Mapping)
                ],
                "cluster": [(label, FORMATS[f](cluster.get(k))) for k, label, f in CLUSTER_ROWS],
                "missing": sorted(
                    (str(k), fmt_text(v)) for k, v in (m.get("missing") or {}).items()
                ),
            }
        )
        if not _succeeded(r) and r.get("log_tail"):
            tails.append(
                {
                    "n": number,
                    "job_id": fmt_text(r.get("job_id")),
                    "text": plain_text(r["log_tail"]),
                }
            )
    return {
        "id": fmt_text(report.get("id")),
        "name": fmt_text(report.get("name")),
        "kind": fmt_text(report.get("kind")),
        "status": fmt_text(report.get("status")),
        "failed": report.get("status") != "succeeded",
        "error": plain_text(report["error"]) if report.get("error") else None,
        "error_detail": plain_text(report.get("error_detail") or "").rstrip(),
        "created": fmt_text(report.get("created")),
        "params": _params(report.get("params")),
        "notes": [fmt_text(n) for n in report.get("notes") or []],
        "manifest": [
            (label, fmt_text(manifest.get(key)))
            for key, label in (
                ("cluster_name", "cluster"),
                ("inventory", "inventory"),
                ("python", "Python"),
                ("ray", "Ray"),
                ("lock_sha12", "lock"),
                ("venv", "venv"),
                ("raykit_version", "raykit"),
                ("dashboard_url", "dashboard"),
                ("prometheus_url", "Prometheus"),
            )
        ],
        "hosts": hosts,
        "summary": [
            (
                label,
                *(
                    fmt_seconds((summary.get(key) or {}).get(s))
                    for s in ("min", "median", "mean", "max")
                ),
                fmt_count((summary.get(key) or {}).get("n")),
            )
            for key, label in (("wall_s", "wall time"), ("workload_wall_s", "workload wall time"))
        ],
        "runs": run_rows,
        "node_headers": [h for _, h, _ in NODE_COLUMNS],
        "run_metrics": run_metrics,
        "tails": tails,
    }


def _span(start: Any, end: Any) -> float | None:
    return float(end) - float(start) if _finite(start) and _finite(end) else None


# --- rendering -----------------------------------------------------------------------------


def _env() -> jinja2.Environment:
    # HTML templates autoescape; Markdown ones escape through the `md` filter instead.
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


def render_markdown(report: Mapping[str, Any]) -> str:
    return _env().get_template("report.md.j2").render(v=view(report))


def render_html(report: Mapping[str, Any]) -> str:
    return _env().get_template("report.html.j2").render(v=view(report), plots=plots(report))


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


def plots(report: Mapping[str, Any]) -> list[dict[str, str]]:
    """One PNG per metric over time, a line per node, x in seconds since the first run's
    start; run boundaries marked when there are several runs. [{name, title, data_uri}]"""
    runs = [
        r
        for r in report.get("runs") or []
        if isinstance(r, Mapping) and isinstance(r.get("metrics"), Mapping)
    ]
    starts = [float(r["start"]) for r in runs if _finite(r.get("start"))]
    if not runs or not starts:
        return []
    _matplotlib_config()
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    origin = min(starts)
    out = []
    for name, (title, unit, scale) in PLOTS.items():
        lines: dict[str, list[list[tuple[float, float]]]] = {}
        for r in runs:
            for ip, points in ((r["metrics"].get("series") or {}).get(name) or {}).items():
                segment = [
                    (float(t) - origin, float(v) * scale)
                    for t, v in points
                    if _finite(t) and _finite(v)
                ]
                if segment:
                    lines.setdefault(str(ip), []).append(segment)
        if not lines:
            continue
        with rc_context({"text.parse_math": False, "font.size": 9}):
            fig = Figure(figsize=(7.5, 2.8), dpi=100, layout="constrained")
            FigureCanvasAgg(fig)
            ax = fig.subplots()
            colors = [f"C{i % 10}" for i in range(len(lines))]
            for color, (ip, segments) in zip(colors, sorted(lines.items()), strict=True):
                for i, segment in enumerate(segments):
                    xs, ys = zip(*segment, strict=True)
                    # Each point holds the latest sample: a step, not a slope.
                    ax.plot(
                        xs,
                        ys,
                        color=color,
                        label=ip if i == 0 else None,
                        linewidth=1.4,
                        drawstyle="steps-post",
                    )
            _mark_runs(ax, runs, origin)
            ax.set_title(title, loc="left")
            ax.set_xlabel(
                "seconds since the run's start"
                if len(runs) == 1
                else "seconds since the first run's start"
            )
            ax.set_ylabel(unit)
            if unit == "%":
                ax.set_ylim(0, max(100.0, ax.get_ylim()[1]))
            else:
                ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", metadata={"Software": None})
        encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
        out.append({"name": name, "title": title, "data_uri": f"data:image/png;base64,{encoded}"})
    return out


def _mark_runs(ax: Any, runs: Sequence[Mapping[str, Any]], origin: float) -> None:
    """The job's end as a dotted line; with several runs, each run's start dashed and named."""
    for i, r in enumerate(runs):
        if len(runs) > 1 and _finite(r.get("start")):
            x = float(r["start"]) - origin
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
        if _finite(r.get("end")):
            ax.axvline(float(r["end"]) - origin, color="0.55", linestyle=":", linewidth=0.8)


__all__ = [
    "ReportError",
    "fmt_bytes",
    "fmt_count",
    "fmt_pct",
    "fmt_seconds",
    "load",
    "md_escape",
    "new_id",
    "render_html",
    "render_markdown",
    "summarize_runs",
    "write",
]
