"""The report as a typed model (docs/reports.md), and the one table of its metrics.

`Report` and its parts are frozen dataclasses named and ordered as report.json's fields:
`Report.load` reads a saved report (a directory, its report.json, or the parsed document),
`Report.dump` gives the JSON text back. Reports are kept for months and compared across
raykit versions, so loading is lenient in what a report lacks and strict in what it holds:
a field an earlier raykit did not write is left out again on dump (not added as a null), a
field this raykit does not know is kept as it is, and a value of the wrong type is a
ReportError naming the file and the field (`runs[1].wall_s`). Load, then dump, gives the
same JSON.

`METRICS` is every figure of a report: where it lives (`scope`.`key`), its title, its unit,
the Ray metric it is measured from. The Prometheus queries (metrics), the report's tables
and plots (report) and the comparison (compare) all read it.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeGuard, TypeVar

SCHEMA = 1
REPORT_JSON = "report.json"

# --- the metric table ----------------------------------------------------------------------

# Ray's metric names (ray-facts.md, "Metrics").
CPU = "ray_node_cpu_utilization"
CPU_COUNT = "ray_node_cpu_count"
MEM_USED = "ray_node_mem_used"
MEM_TOTAL = "ray_node_mem_total"
DISK_PCT = "ray_node_disk_utilization_percentage"
OBJECT_STORE_USED = "ray_object_store_used_memory"
NET_SENT = "ray_node_network_sent"
NET_RECV = "ray_node_network_received"

# The object store metrics name the node by this label instead of `ip`.
OBJECT_STORE_LABEL = "NodeAddress"

Scope = Literal["summary", "nodes", "cluster", "series"]
Unit = Literal["seconds", "pct", "bytes", "bytes_per_s", "count"]


@dataclass(frozen=True, slots=True)
class Metric:
    """One figure of a report.

    `scope` says where it lives: `summary` (a run field, summarised over the successful
    runs), `nodes` and `cluster` (a run's `metrics.nodes.<ip>` and `metrics.cluster`),
    `series` (a run's `metrics.series`, one line per node over time). `title` heads its
    column or row in report.md/html (a series: its plot). `source` is the Ray metric it is
    computed from (None: the runner's own clock). A cluster total `needs` a node figure that
    every node must have. `compare` names its row in `raykit compare`, where a report's value
    is the median over its successful runs (of the fullest node's, for a node figure)."""

    scope: Scope
    key: str
    title: str
    unit: Unit
    source: str | None = None
    needs: str | None = None
    compare: str | None = None

    @property
    def path(self) -> str:
        """Its key in a run's `metrics.queries` and `metrics.missing`."""
        return f"{self.scope}.{self.key}"

    @property
    def label(self) -> str:
        """The Prometheus label that names the node in its results."""
        return OBJECT_STORE_LABEL if self.source == OBJECT_STORE_USED else "ip"


# In the order of the report's tables and of `raykit compare`'s rows (each scope keeps its
# own order when filtered).
METRICS: tuple[Metric, ...] = (
    Metric("summary", "wall_s", "wall time", "seconds", compare="wall time (median)"),
    Metric(
        "summary",
        "workload_wall_s",
        "workload wall time",
        "seconds",
        compare="workload wall time (median)",
    ),
    Metric("nodes", "cpu_pct_mean", "CPU % mean", "pct", CPU),
    Metric("nodes", "cpu_pct_p95", "CPU % p95", "pct", CPU),
    Metric(
        "cluster",
        "cpu_pct_mean",
        "CPU % mean (weighted by CPUs)",
        "pct",
        CPU,
        needs="cpu_pct_mean",
        compare="cluster CPU % mean",
    ),
    Metric(
        "cluster",
        "cpu_pct_p95",
        "CPU % p95",
        "pct",
        CPU,
        needs="cpu_pct_mean",
        compare="cluster CPU % p95",
    ),
    Metric("series", "cpu_pct", "CPU utilisation", "pct", CPU),
    Metric("nodes", "mem_used_pct_mean", "mem % mean", "pct", MEM_USED),
    Metric("nodes", "mem_used_pct_max", "mem % max", "pct", MEM_USED),
    Metric(
        "cluster",
        "mem_used_bytes_max",
        "memory used, max",
        "bytes",
        MEM_USED,
        needs="mem_used_pct_max",
        compare="memory used (max)",
    ),
    Metric("series", "mem_used_pct", "Memory used", "pct", MEM_USED),
    Metric(
        "nodes", "disk_used_pct_max", "disk % max", "pct", DISK_PCT, compare="disk used % (max)"
    ),
    Metric("series", "disk_used_pct", "Disk used", "pct", DISK_PCT),
    Metric("nodes", "object_store_used_max_bytes", "object store max", "bytes", OBJECT_STORE_USED),
    Metric(
        "cluster",
        "object_store_used_max_bytes",
        "object store used, max",
        "bytes",
        OBJECT_STORE_USED,
        needs="object_store_used_max_bytes",
        compare="object store used (max)",
    ),
    Metric("series", "object_store_used_bytes", "Object store used", "bytes", OBJECT_STORE_USED),
    Metric("nodes", "net_sent_bytes", "net sent", "bytes", NET_SENT),
    Metric(
        "cluster",
        "net_sent_bytes",
        "network sent",
        "bytes",
        NET_SENT,
        needs="net_sent_bytes",
        compare="network sent",
    ),
    Metric("series", "net_sent_bytes_per_s", "Network sent", "bytes_per_s", NET_SENT),
    Metric("nodes", "net_recv_bytes", "net received", "bytes", NET_RECV),
    Metric(
        "cluster",
        "net_recv_bytes",
        "network received",
        "bytes",
        NET_RECV,
        needs="net_recv_bytes",
        compare="network received",
    ),
    Metric("series", "net_recv_bytes_per_s", "Network received", "bytes_per_s", NET_RECV),
    Metric("nodes", "samples", "samples", "count", CPU),
)


def scope(name: Scope) -> tuple[Metric, ...]:
    """The table's metrics of one scope, in its order."""
    return tuple(m for m in METRICS if m.scope == name)


SUMMARY_METRICS = scope("summary")
NODE_METRICS = scope("nodes")
CLUSTER_METRICS = scope("cluster")
SERIES_METRICS = scope("series")


# --- reading a report's JSON, field by field -----------------------------------------------


class ReportError(ValueError):
    """A file (or document) that cannot be read as a raykit report."""


T = TypeVar("T")
Parse = Callable[[object, str], T]


def _kind(value: object) -> str:
    """`a string 'fast'`, for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    text = text if len(text) <= 40 else text[:39] + "…"
    return f"{'a string' if isinstance(value, str) else 'a number'} {text}"


def _text(value: object, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ReportError(f"{where}: expected a string or null, got {_kind(value)}")


def _str(value: object, where: str) -> str:
    if isinstance(value, str):
        return value
    raise ReportError(f"{where}: expected a string, got {_kind(value)}")


def _number(value: object, where: str) -> float | None:
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    raise ReportError(f"{where}: expected a number or null, got {_kind(value)}")


def _whole(value: object, where: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ReportError(f"{where}: expected a whole number or null, got {_kind(value)}")


def _flag(value: object, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ReportError(f"{where}: expected true, false or null, got {_kind(value)}")


def _object(value: object, where: str) -> Mapping[str, Any] | None:
    """Any JSON object, kept as it is (a workload's result, Ray's job info), or null."""
    if value is None or isinstance(value, Mapping):
        return value
    raise ReportError(f"{where}: expected an object or null, got {_kind(value)}")


def _list(parse: Parse[T]) -> Parse[tuple[T, ...]]:
    def read(value: object, where: str) -> tuple[T, ...]:
        if not isinstance(value, list | tuple):
            raise ReportError(f"{where}: expected a list, got {_kind(value)}")
        return tuple(parse(item, f"{where}[{i}]") for i, item in enumerate(value))

    return read


def _map(parse: Parse[T]) -> Parse[dict[str, T]]:
    def read(value: object, where: str) -> dict[str, T]:
        if not isinstance(value, Mapping):
            raise ReportError(f"{where}: expected an object, got {_kind(value)}")
        return {key: parse(item, f"{where}.{key}") for key, item in value.items()}

    return read


def _nullable(parse: Parse[T]) -> Parse[T | None]:
    def read(value: object, where: str) -> T | None:
        return None if value is None else parse(value, where)

    return read


Point = tuple[float, float | None]


def _point(value: object, where: str) -> Point:
    """A series' `[t, value]`."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ReportError(f"{where}: expected a [time, value] pair, got {_kind(value)}")
    t = _number(value[0], f"{where}[0]")
    if t is None:
        raise ReportError(f"{where}[0]: expected a time, got null")
    return (t, _number(value[1], f"{where}[1]"))


class _Reader:
    """One JSON object of a report, read field by field: the keys it lacks and the keys no
    field asked for are remembered, so that a dump gives back what was read."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, Mapping):
            raise ReportError(f"{where or 'the report'}: expected an object, got {_kind(data)}")
        self._data: Mapping[str, Any] = data
        self._where = where
        self._asked: list[str] = []

    def get(self, key: str, parse: Parse[T], default: T) -> T:
        self._asked.append(key)
        if key not in self._data:
            return default
        return parse(self._data[key], f"{self._where}.{key}" if self._where else key)

    def extra(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k not in self._asked}

    def absent(self) -> frozenset[str]:
        return frozenset(k for k in self._asked if k not in self._data)


def _plain(value: Any) -> Any:
    """A model's value as JSON data: parts as objects, tuples as lists."""
    if isinstance(value, _Part):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def jsonable(obj: Any) -> Any:
    """JSON data without NaN or Infinity (not JSON), paths as strings."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def finite(value: Any) -> TypeGuard[float]:
    """A number that is neither NaN nor infinite (and not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- the parts of a report -----------------------------------------------------------------

_BOOKKEEPING = frozenset({"extra", "absent"})


@dataclass(frozen=True, slots=True, kw_only=True)
class _Part:
    """What every part keeps besides its fields: the keys it had that no field reads
    (`extra`, written back as they were) and the fields it did not have (`absent`, left out
    again on dump)."""

    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)
    absent: frozenset[str] = field(default=frozenset(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The part as JSON data, its fields in report.json's order."""
        out = {}
        for f in fields(self):
            if f.name in _BOOKKEEPING:
                continue
            value = getattr(self, f.name)
            # Left out only while it still holds the default it got for lacking it (a
            # dataclasses.replace may have given it a value since).
            if f.name in self.absent and value == _default(f):
                continue
            out[f.name] = _plain(value)
        out.update(_plain(self.extra))
        return out


def _default(f: Field[Any]) -> Any:
    if f.default_factory is not MISSING:
        return f.default_factory()
    return f.default


@dataclass(frozen=True, slots=True, kw_only=True)
class Stats(_Part):
    """{min, median, mean, max, n} of one figure over the successful runs."""

    min: float | None = None
    median: float | None = None
    mean: float | None = None
    max: float | None = None
    n: int | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            return cls(n=0)
        return cls(
            min=min(values),
            median=statistics.median(values),
            mean=statistics.fmean(values),
            max=max(values),
            n=len(values),
        )

    @classmethod
    def from_dict(cls, data: object, where: str = "") -> Stats:
        r = _Reader(data, where)
        return cls(
            min=r.get("min", _number, None),
            median=r.get("median", _number, None),
            mean=r.get("mean", _number, None),
            max=r.get("max", _number, None),
            n=r.get("n", _whole, None),
            extra=r.extra(),
            absent=r.absent(),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Host(_Part):
    """A host of the manifest: the inventory's node with what Ray reported for it."""

    name: str | None = None
    node_ip: str | None = None
    role: str | None = None
    cpus: float | None = None
    memory_bytes: float | None = None
    object_store_bytes: float | None = None
    alive: bool | None = None

    @classmethod
    def from_dict(cls, data: object, where: str = "") -> Host:
        r = _Reader(data, where)
        return cls(
            name=r.get("name", _text, None),
            node_ip=r.get("node_ip", _text, None),
            role=r.get("role", _text, None),
            cpus=r.get("cpus", _number, None),
            memory_bytes=r.get("memory_bytes", _number, None),
            object_store_bytes=r.get("object_store_bytes", _number, None),
            alive=r.get("alive", _flag, None),
            extra=r.extra(),
            absent=r.absent(),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest(_Part):
    """What the report ran on."""

    raykit_version: str | None = None
    inventory: str | None = None
    cluster_name: str | None = None
    dashboard_url: str | None = None
    prometheus_url: str | None = None
    python: str | None = None
    ray: str | None = None
    venv: str | None = None
    lock_sha12: str | None = None
    hosts: tuple[Host, ...] = ()

    @classmethod
    def from_dict(cls, data: object, where: str = "") -> Manifest:
        r = _Reader(data, where)
        return cls(
            raykit_version=r.get("raykit_version", _text, None),
            inventory=r.get("inventory", _text, None),
            cluster_name=r.get("cluster_name", _text, None),
            dashboard_url=r.get("dashboard_url", _text, None),
            prometheus_url=r.get("prometheus_url", _text, None),
            python=r.get("python", _text, None),
            ray=r.get("ray", _text, None),
            venv=r.get("venv", _text, None),
            lock_sha12=r.get("lock_sha12", _text, None),
            hosts=r.get("hosts", _list(Host.from_dict), ()),
            extra=r.extra(),
            absent=r.absent(),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Window(_Part):
    """The run's window Prometheus was asked about (epoch seconds)."""

    start: float | None = None
    end: float | None = None
    step_s: float | None = None

    @classmethod
    def from_dict(cls, data: object, where: str = "") -> Window:
        r = _Reader(data, where)
        return cls(
            start=r.get("start", _number, None),
            end=r.get("end", _number, None),
            step_s=r.get("step_s", _number, None),
            extra=r.extra(),
            absent=r.absent(),
        )


Figures = Mapping[str, float | None]  # {metric key: value}
Series = Mapping[str, tuple[Point, ...]]  # {node: [(t, value), ...]}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunMetrics(_Part):
    """A run's `metrics` block (raykit.metrics.collect): figures keyed as in METRICS."""

    window: Window | None = None
    queries: Mapping[str, str] = field(default_factory=dict)
    nodes: Mapping[str, Figures] = field(default_factory=dict)
    cluster: Figures = field(default_factory=dict)
    series: Mapping[str, Series] = field(default_factory=dict)
    missing: Mapping[str, str] = field(default_factory=dict)

    def node_values(self, key: str) -> list[float]:
        """A node figure's values over the nodes that have it."""
        return [v for figures in self.nodes.values() if (v := figures.get(key)) is not None]

    @classmethod
    def from_dict(cls, data: object, where: str = "") -> RunMetrics:
        r = _Reader(data, where)
        text_map = _map(_str)
        return cls(
            window=r.get("window", _nullable(Window.from_dict), None),
            queries=r.get("queries", text_map, {}),
            nodes=r.get("nodes", _map(_map(_number)), {}),
            cluster=r.get("cluster", _map(_number), {}),
            series=r.get("series", _map(_map(_list(_point))), {}),
            missing=r.get("missing", text_map, {}),
            extra=r.extra(),
            absent=r.absent(),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Run(_Part):
    """One job of the report: its timing, result, log tail and metrics."""

    index: int | None = None
    job_id: str | None = None
    status: str | None = None
    message: str | None = None
    start: float | None = None
    end: float | None = None
    wall_s: float | None = None
    workload_wall_s: float | None = None
    driver_s: float | None = None
    overhead_s: float | None = None
    result: Mapping[str, Any] | None = None
    log: str | None = None
    log_tail: str | None = None
    job: Mapping[str, Any] | None = None
    metrics: RunMetrics | None = None

    @property
    def succeeded(self) -> bool:
        return (self.status or "").upper() == "SUCCEEDED"

    @property
    def checksum(self) -> str | None:
        """The workload's checksum, None when it gave none."""
        value = self.result.get("checksum") if self.result else None
        return None if value in (None, "") else str(value)

    @classmethod
    def from_dict(cls, data: object, where: str = "") -> Run:
        r = _Reader(data, where)
        return cls(
            index=r.get("index", _whole, None),
            job_id=r.get("job_id", _text, None),
            status=r.get("status", _text, None),
            message=r.get("message", _text, None),
            start=r.get("start", _number, None),
            end=r.get("end", _number, None),
            wall_s=r.get("wall_s", _number, None),
            workload_wall_s=r.get("workload_wall_s", _number, None),
            driver_s=r.get("driver_s", _number, None),
            overhead_s=r.get("overhead_s", _number, None),
            result=r.get("result", _object, None),
            log=r.get("log", _text, None),
            log_tail=r.get("log_tail", _text, None),
            job=r.get("job", _object, None),
            metrics=r.get("metrics", _nullable(RunMetrics.from_dict), None),
            extra=r.extra(),
            absent=r.absent(),
        )


def summarize(runs: Iterable[Run]) -> dict[str, Stats]:
    """Stats of each summary metric (the run field of the same name) over the successful runs;
    a run without the figure does not count for it."""
    ok = [r for r in runs if r.succeeded]
    return {
        m.key: Stats.of([float(v) for r in ok if finite(v := getattr(r, m.key))])
        for m in SUMMARY_METRICS
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class Report(_Part):
    """A whole report.json."""

    schema: int = SCHEMA
    id: str | None = None
    name: str | None = None
    kind: str | None = None
    params: Mapping[str, Any] | None = None
    status: str | None = None
    error: str | None = None
    error_detail: str | None = None
    created: str | None = None
    notes: tuple[str, ...] = ()
    manifest: Manifest = field(default_factory=Manifest)
    runs: tuple[Run, ...] = ()
    summary: Mapping[str, Stats] | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def ok_runs(self) -> tuple[Run, ...]:
        return tuple(r for r in self.runs if r.succeeded)

    def stats(self, key: str) -> Stats:
        """A summary metric's stats: as saved, else from the runs (a report without one)."""
        saved = self.summary.get(key) if self.summary else None
        return saved if saved is not None else summarize(self.runs)[key]

    @classmethod
    def from_dict(cls, data: object, where: str = "") -> Report:
        r = _Reader(data, where)
        return cls(
            schema=r.get("schema", _schema, SCHEMA),
            id=r.get("id", _text, None),
            name=r.get("name", _text, None),
            kind=r.get("kind", _text, None),
            params=r.get("params", _object, None),
            status=r.get("status", _text, None),
            error=r.get("error", _text, None),
            error_detail=r.get("error_detail", _text, None),
            created=r.get("created", _text, None),
            notes=r.get("notes", _list(_str), ()),
            manifest=r.get("manifest", Manifest.from_dict, Manifest()),
            runs=r.get("runs", _list(Run.from_dict), ()),
            summary=r.get("summary", _nullable(_map(Stats.from_dict)), None),
            extra=r.extra(),
            absent=r.absent(),
        )

    @classmethod
    def load(cls, source: Path | str | Mapping[str, Any]) -> Report:
        """A saved report: its directory, its report.json, or the document itself. Raises
        ReportError (a ValueError) naming the file and what is wrong with it, or
        FileNotFoundError for a path that is not there."""
        if isinstance(source, Mapping):
            return cls._checked(source, "the report")
        path = Path(source)
        if path.is_dir():
            file = path / REPORT_JSON
            if not file.is_file():
                raise FileNotFoundError(f"{path}: no {REPORT_JSON} here (not a report directory?)")
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
        return cls._checked(doc, str(file))

    @classmethod
    def _checked(cls, doc: object, name: str) -> Report:
        lacking = [k for k in ("schema", "runs") if not isinstance(doc, Mapping) or k not in doc]
        if lacking or not isinstance(doc, Mapping):
            raise ReportError(f"{name}: not a raykit report (no {' and '.join(lacking)})")
        if doc["schema"] != SCHEMA:
            raise ReportError(
                f"{name}: report schema {doc['schema']!r}; this raykit reads schema {SCHEMA}"
            )
        try:
            return cls.from_dict(doc)
        except ReportError as exc:
            raise ReportError(f"{name}: not a raykit report ({exc})") from None

    def dump(self) -> str:
        """report.json's text: indented, strict JSON (NaN and infinities as null)."""
        return json.dumps(jsonable(self.to_dict()), indent=2, ensure_ascii=False) + "\n"


def _schema(value: object, where: str) -> int:
    number = _whole(value, where)
    if number is None:
        raise ReportError(f"{where}: expected a whole number, got null")
    return number


__all__ = [
    "CLUSTER_METRICS",
    "METRICS",
    "NODE_METRICS",
    "SCHEMA",
    "SERIES_METRICS",
    "SUMMARY_METRICS",
    "Host",
    "Manifest",
    "Metric",
    "Report",
    "ReportError",
    "Run",
    "RunMetrics",
    "Stats",
    "Window",
    "summarize",
]
