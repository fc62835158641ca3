"""Prometheus over a run's window: the `metrics` block of a report (docs/reports.md).

Every figure is one PromQL query over the window `(start, end + settle]`, evaluated at the
window's end through Prometheus' HTTP API. The query builders are pure functions, so the
text saved in the report is exactly what was asked and can be pasted into Prometheus.

Label conventions of Ray 2.60's node metrics: `ip` names the node, except the object store
metrics, which say `NodeAddress`. A node may export several series of one metric (a new
`SessionName` after a restart), so per-node figures aggregate `by (ip)`: sums and counts
are added (a mean over all of the node's samples) and maxima take the largest.

`collect` never raises for a Prometheus problem: what it cannot get is `None` and named
in `missing` with the reason, so a run's wall time and result survive a broken monitor.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
import yaml

# The metric table; Ray's metric names re-exported (status and record_prometheus.py use them).
from raykit.model import CLUSTER_METRICS, NODE_METRICS, SERIES_METRICS
from raykit.model import CPU as CPU
from raykit.model import CPU_COUNT as CPU_COUNT
from raykit.model import DISK_PCT as DISK_PCT
from raykit.model import MEM_TOTAL as MEM_TOTAL
from raykit.model import MEM_USED as MEM_USED
from raykit.model import NET_RECV as NET_RECV
from raykit.model import NET_SENT as NET_SENT
from raykit.model import OBJECT_STORE_LABEL as OBJECT_STORE_LABEL
from raykit.model import OBJECT_STORE_USED as OBJECT_STORE_USED

# The figures of a report: raykit.model's table.
NODE_FIELDS = tuple(m.key for m in NODE_METRICS)
CLUSTER_FIELDS = tuple(m.key for m in CLUSTER_METRICS)
SERIES = tuple(m.key for m in SERIES_METRICS)
_NODE = {m.key: m for m in NODE_METRICS}
_CLUSTER = {m.key: m for m in CLUSTER_METRICS}
_SERIES = {m.key: m for m in SERIES_METRICS}

MAX_POINTS = 300
SUBQUERY_STEP_S = 1
NO_MONITORING = "no monitoring host in the inventory"
# Used when Prometheus cannot say its own scrape interval.
DEFAULT_SCRAPE_S = 5.0


# --- PromQL construction (pure) ------------------------------------------------------------


def ip_regex(node_ips: Iterable[str]) -> str:
    """A PromQL double-quoted string literal (quotes included) holding a regex that matches
    exactly these addresses: dots escaped, alternatives joined (Prometheus anchors it)."""
    pattern = "|".join(re.escape(ip) for ip in node_ips)
    return '"' + pattern.replace("\\", "\\\\").replace('"', '\\"') + '"'


def selector(metric: str, node_ips: Iterable[str], label: str = "ip") -> str:
    """`metric{label=~"..."}` restricted to the cluster's nodes."""
    return f"{metric}{{{label}=~{ip_regex(node_ips)}}}"


def duration(seconds: float) -> str:
    """A PromQL duration in whole milliseconds (at least 1 ms)."""
    return f"{max(1, round(seconds * 1000))}ms"


def _node_mean(sel: str, rng: str) -> str:
    # A mean over every sample of the node, whatever series they belong to.
    return (
        f"sum by (ip) (sum_over_time({sel}[{rng}])) / sum by (ip) (count_over_time({sel}[{rng}]))"
    )


def node_queries(node_ips: list[str], range_s: float) -> dict[str, str]:
    """One query per node figure over the `range_s` seconds before the evaluation time;
    each result has one sample per node, labelled `ip` (or `NodeAddress`)."""
    rng = duration(range_s)
    cpu = selector(CPU, node_ips)
    used = selector(MEM_USED, node_ips)
    total = selector(MEM_TOTAL, node_ips)
    mem_total = f"max by (ip) (max_over_time({total}[{rng}]))"
    return {
        "cpu_pct_mean": _node_mean(cpu, rng),
        "cpu_pct_p95": f"max by (ip) (quantile_over_time(0.95, {cpu}[{rng}]))",
        "samples": f"sum by (ip) (count_over_time({cpu}[{rng}]))",
        # mem_used and mem_total carry the same labels, but dividing after the per-node
        # aggregation keeps the match to `ip` alone, whatever other labels come and go.
        "mem_used_pct_mean": f"100 * ({_node_mean(used, rng)}) / on(ip) {mem_total}",
        "mem_used_pct_max": (
            f"100 * max by (ip) (max_over_time({used}[{rng}])) / on(ip) {mem_total}"
        ),
        "disk_used_pct_max": (
            f"max by (ip) (max_over_time({selector(DISK_PCT, node_ips)}[{rng}]))"
        ),
        "object_store_used_max_bytes": (
            f"max by ({OBJECT_STORE_LABEL}) (max_over_time("
            f"{selector(OBJECT_STORE_USED, node_ips, OBJECT_STORE_LABEL)}[{rng}]))"
        ),
        "net_sent_bytes": net_bytes(NET_SENT, node_ips, range_s),
        "net_recv_bytes": net_bytes(NET_RECV, node_ips, range_s),
    }


def net_bytes(metric: str, node_ips: list[str], range_s: float) -> str:
    """Bytes a node moved during the window, from Ray's cumulative byte gauges (psutil's
    counters for the host's NICs): the node's latest value at the window's end minus its
    latest value at or before the window's start. The two samples bracket the run, so a
    burst between two scrapes is counted once, where `increase()` would scale it to the
    window by its extrapolation (up to about double on a run of a few scrape intervals).
    A restart of Ray starts a new series of the same host counter, hence `max by (ip)`.
    Only nodes with a sample inside the window count: otherwise both ends would be the same
    old sample, and the difference a meaningless 0."""
    sel = selector(metric, node_ips)
    rng = duration(range_s)
    return (
        f"(max by (ip) ({sel}) - max by (ip) ({sel} offset {rng}))"
        f" and on(ip) max by (ip) (count_over_time({sel}[{rng}]))"
    )


def cluster_cpu_pct(node_ips: list[str]) -> str:
    """The whole cluster's CPU utilisation at one instant: each node's percentage weighted
    by its CPU count (a 2-core node at 100 % is not half of a 20-core cluster busy)."""
    cpu = selector(CPU, node_ips)
    count = selector(CPU_COUNT, node_ips)
    return f"sum(max by (ip) ({cpu}) * on(ip) max by (ip) ({count})) / sum(max by (ip) ({count}))"


def cluster_queries(node_ips: list[str], range_s: float) -> dict[str, str]:
    """Cluster figures over the window. The mean is exact over every sample; the p95 and
    the maxima of a sum over nodes need the nodes lined up in time: a subquery, whose
    steps Prometheus puts on multiples of its step since the epoch. With 1 s steps and a
    window that ends on a whole second (`collect` sees to it), the last step is the
    window's end and no sample escapes between the last step and the end."""
    rng = duration(range_s)
    sub = f"[{rng}:{duration(SUBQUERY_STEP_S)}]"
    cpu = selector(CPU, node_ips)
    count = selector(CPU_COUNT, node_ips)
    cpus = f"max by (ip) (max_over_time({count}[{rng}]))"
    node_mean = _node_mean(cpu, rng)
    return {
        "cpu_pct_mean": f"sum(({node_mean}) * on(ip) {cpus}) / sum({cpus})",
        "cpu_pct_p95": f"quantile_over_time(0.95, ({cluster_cpu_pct(node_ips)}){sub})",
        "mem_used_bytes_max": (
            f"max_over_time(sum(max by (ip) ({selector(MEM_USED, node_ips)})){sub})"
        ),
        "object_store_used_max_bytes": (
            f"max_over_time(sum(max by ({OBJECT_STORE_LABEL}) "
            f"({selector(OBJECT_STORE_USED, node_ips, OBJECT_STORE_LABEL)})){sub})"
        ),
        "net_sent_bytes": f"sum({net_bytes(NET_SENT, node_ips, range_s)})",
        "net_recv_bytes": f"sum({net_bytes(NET_RECV, node_ips, range_s)})",
    }


def series_queries(node_ips: list[str], scrape_interval: float) -> dict[str, str]:
    """Instant expressions for `query_range`: one line per node in the plots."""
    rate_range = duration(3 * scrape_interval)
    return {
        "cpu_pct": f"max by (ip) ({selector(CPU, node_ips)})",
        "mem_used_pct": (
            f"100 * max by (ip) ({selector(MEM_USED, node_ips)})"
            f" / on(ip) max by (ip) ({selector(MEM_TOTAL, node_ips)})"
        ),
        "disk_used_pct": f"max by (ip) ({selector(DISK_PCT, node_ips)})",
        "object_store_used_bytes": (
            f"max by ({OBJECT_STORE_LABEL}) "
            f"({selector(OBJECT_STORE_USED, node_ips, OBJECT_STORE_LABEL)})"
        ),
        "net_sent_bytes_per_s": (
            f"sum by (ip) (rate({selector(NET_SENT, node_ips)}[{rate_range}]))"
        ),
        "net_recv_bytes_per_s": (
            f"sum by (ip) (rate({selector(NET_RECV, node_ips)}[{rate_range}]))"
        ),
    }


def settle_query(node_ips: list[str]) -> str:
    """The time of each node's latest CPU sample."""
    return f"max by (ip) (timestamp({selector(CPU, node_ips)}))"


def all_queries(node_ips: list[str], range_s: float, scrape_interval: float) -> dict[str, str]:
    """Every query of a report, keyed as in `missing`: `nodes.<field>`, `cluster.<field>`,
    `series.<name>` (the last ones for `query_range`)."""
    out = {f"nodes.{k}": q for k, q in node_queries(node_ips, range_s).items()}
    out |= {f"cluster.{k}": q for k, q in cluster_queries(node_ips, range_s).items()}
    out |= {f"series.{k}": q for k, q in series_queries(node_ips, scrape_interval).items()}
    return out


def step_for(range_s: float) -> float:
    """The `query_range` step for a window: whole seconds, at least 1, at most about
    MAX_POINTS points."""
    return float(max(1, math.ceil(range_s / MAX_POINTS)))


# --- Prometheus' HTTP API ------------------------------------------------------------------


def scrape_interval(prom_url: str | None, timeout: float = 3.0) -> float:
    """Prometheus' global scrape interval in seconds, from its own config (else 5 s)."""
    if not prom_url:
        return DEFAULT_SCRAPE_S
    try:
        r = requests.get(f"{prom_url}/api/v1/status/config", timeout=timeout)
        text = r.json()["data"]["yaml"]
        value = str(yaml.safe_load(text)["global"]["scrape_interval"])
    except Exception:  # the metrics step reports Prometheus' problems itself
        return DEFAULT_SCRAPE_S
    return _duration_s(value) or DEFAULT_SCRAPE_S


def _duration_s(text: str) -> float | None:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit):
            try:
                return float(text[: -len(unit)]) * units[unit]
            except ValueError:
                return None
    return None


@dataclass
class _Prometheus:
    """Prometheus' API, turning every failure into a reason. After one connection failure
    the rest are not tried (each would wait for its own timeout)."""

    url: str
    session: requests.Session | Any
    timeout: float
    down: str | None = None

    def call(self, path: str, params: Mapping[str, str]) -> tuple[Any, str | None]:
        if self.down is not None:
            return None, self.down
        endpoint = self.url.rstrip("/") + path
        try:
            response = self.session.post(endpoint, data=dict(params), timeout=self.timeout)
        except requests.Timeout:
            self.down = f"Prometheus unreachable at {self.url}: no answer within {self.timeout:g} s"
            return None, self.down
        except requests.ConnectionError as exc:
            self.down = f"Prometheus unreachable at {self.url}: {_connection_reason(exc)}"
            return None, self.down
        except requests.RequestException as exc:
            return None, f"Prometheus request to {endpoint} failed: {exc}"
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "status" not in body:
            snippet = " ".join(str(getattr(response, "text", "")).split())[:120]
            return None, (
                f"Prometheus at {self.url} answered HTTP {response.status_code} "
                f"without an API response" + (f": {snippet}" if snippet else "")
            )
        if body.get("status") != "success":
            what = ": ".join(str(x) for x in (body.get("errorType"), body.get("error")) if x)
            return None, (
                f"Prometheus at {self.url} answered an error (HTTP {response.status_code})"
                + (f": {what}" if what else "")
            )
        if response.status_code >= 400:
            return None, f"Prometheus at {self.url} answered HTTP {response.status_code}"
        return body.get("data"), None

    def query(self, promql: str, at: float) -> tuple[Any, str | None]:
        return self.call("/api/v1/query", {"query": promql, "time": _ts(at)})

    def query_range(
        self, promql: str, start: float, end: float, step: float
    ) -> tuple[Any, str | None]:
        return self.call(
            "/api/v1/query_range",
            {"query": promql, "start": _ts(start), "end": _ts(end), "step": f"{step:g}"},
        )


def _ts(t: float) -> str:
    return f"{t:.3f}"


def _connection_reason(exc: requests.ConnectionError) -> str:
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host name"),
        ("No route to host", "no route to host"),
        ("Network is unreachable", "network unreachable"),
        ("timed out", "connection timed out"),
    ):
        if needle in text:
            return reason
    return text[:200] or type(exc).__name__


def _number(value: Any) -> float | None:
    """A sample value ("1.5", "NaN", "+Inf") as a finite float, else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _by_node(data: Any, label: str) -> dict[str, float | None]:
    """An instant vector as {node: value}."""
    out: dict[str, float | None] = {}
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        return out
    for item in data.get("result") or []:
        node = (item.get("metric") or {}).get(label)
        value = item.get("value") or [None, None]
        if node is not None and len(value) == 2:
            out[node] = _number(value[1])
    return out


def _scalar(data: Any) -> tuple[bool, float | None]:
    """The one sample of a label-less result: (present, value)."""
    if not isinstance(data, dict):
        return False, None
    if data.get("resultType") == "scalar":
        return True, _number((data.get("result") or [None, None])[1])
    result = data.get("result") or []
    if data.get("resultType") != "vector" or not result:
        return False, None
    return True, _number((result[0].get("value") or [None, None])[1])


def _matrix_by_node(data: Any, label: str) -> dict[str, list[list[float]]]:
    out: dict[str, list[list[float]]] = {}
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        return out
    for item in data.get("result") or []:
        node = (item.get("metric") or {}).get(label)
        if node is None:
            continue
        points = []
        for t, v in item.get("values") or []:
            number = _number(v)
            if number is not None:
                points.append([float(t), number])
        out[node] = points
    return out


# --- collect -------------------------------------------------------------------------------


def empty_block(
    node_ips: list[str], start: float, end: float, step_s: float, reason: str | None = None
) -> dict[str, Any]:
    """A metrics block with every figure null; with a reason, every figure missing."""
    block: dict[str, Any] = {
        "window": {"start": start, "end": end, "step_s": step_s},
        "queries": {},
        "nodes": {ip: dict.fromkeys(NODE_FIELDS) for ip in node_ips},
        "cluster": dict.fromkeys(CLUSTER_FIELDS),
        "series": {name: {} for name in SERIES},
        "missing": {},
    }
    if reason is not None:
        block["missing"] = {
            **{f"nodes.{k}": reason for k in NODE_FIELDS},
            **{f"cluster.{k}": reason for k in CLUSTER_FIELDS},
            **{f"series.{k}": reason for k in SERIES},
        }
    return block


def collect(
    prom_url: str | None,
    node_ips: list[str],
    start: float,
    end: float,
    *,
    scrape_interval: float = 5.0,
    settle: bool = True,
    session: requests.Session | None = None,
    timeout: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """The `metrics` block for the run that went from `start` to `end` (epoch seconds) on
    the nodes `node_ips`. With `settle`, first wait (at most two scrape intervals past
    `end`) until every node has a sample after `end`: Ray's samples describe the seconds
    before them, so that sample covers the run's last seconds."""
    node_ips = list(dict.fromkeys(node_ips))
    if prom_url is None:
        block = empty_block(node_ips, start, end, step_for(end - start), NO_MONITORING)
        block["queries"] = all_queries(node_ips, end - start, scrape_interval) if node_ips else {}
        return block
    if not node_ips:
        return empty_block(node_ips, start, end, 1.0, "no node addresses to ask Prometheus about")
    if not end > start:
        return empty_block(
            node_ips, start, end, 1.0, f"empty run window (start {start}, end {end})"
        )

    prom = _Prometheus(prom_url, session if session is not None else requests.Session(), timeout)
    missing: dict[str, str] = {}
    stop = end
    if settle:
        stop, reason = _settle(prom, node_ips, end, scrape_interval, sleep, now)
        if reason is not None:
            missing["settle"] = reason
    # On a whole second, for the subqueries' aligned steps (see cluster_queries).
    stop = float(math.ceil(stop / SUBQUERY_STEP_S) * SUBQUERY_STEP_S)
    range_s = stop - start
    step = step_for(range_s)
    window_text = f"the {range_s:.1f} s window"

    block = empty_block(node_ips, start, stop, step)
    block["queries"] = all_queries(node_ips, range_s, scrape_interval)

    nodes: dict[str, dict[str, Any]] = block["nodes"]
    for name, promql in node_queries(node_ips, range_s).items():
        data, error = prom.query(promql, stop)
        if error is not None:
            missing[f"nodes.{name}"] = error
            continue
        values = _by_node(data, _NODE[name].label)
        absent = []
        for ip in node_ips:
            value = values.get(ip)
            if value is None:
                absent.append(ip)
            else:
                nodes[ip][name] = int(value) if name == "samples" else value
        if absent:
            missing[f"nodes.{name}"] = _absent_reason(prom.url, name, absent, values, window_text)

    cluster: dict[str, Any] = block["cluster"]
    for name, promql in cluster_queries(node_ips, range_s).items():
        need = _CLUSTER[name].needs or name
        lacking = [ip for ip in node_ips if nodes[ip][need] is None]
        if lacking:
            # Nothing from any node: the nodes' reason; from some: say which are missing.
            missing[f"cluster.{name}"] = (
                missing[f"nodes.{need}"]
                if len(lacking) == len(node_ips)
                else f"a cluster total needs every node; {need} is missing for {', '.join(lacking)}"
            )
            continue
        data, error = prom.query(promql, stop)
        if error is not None:
            missing[f"cluster.{name}"] = error
            continue
        present, value = _scalar(data)
        if value is None:
            missing[f"cluster.{name}"] = (
                f"Prometheus at {prom.url} returned "
                f"{'a non-finite value' if present else 'no result'} over {window_text}"
            )
        else:
            cluster[name] = value

    series: dict[str, Any] = block["series"]
    for name, promql in series_queries(node_ips, scrape_interval).items():
        data, error = prom.query_range(promql, start, stop, step)
        if error is not None:
            missing[f"series.{name}"] = error
            continue
        lines = _matrix_by_node(data, _SERIES[name].label)
        series[name] = {ip: lines[ip] for ip in node_ips if lines.get(ip)}
        absent = [ip for ip in node_ips if not lines.get(ip)]
        if absent:
            missing[f"series.{name}"] = (
                f"no {_SERIES[name].source} samples from {', '.join(absent)} in "
                f"{window_text} (Prometheus at {prom.url})"
            )

    block["missing"] = missing
    return block


def _absent_reason(
    url: str, name: str, absent: list[str], values: Mapping[str, float | None], window: str
) -> str:
    source = _NODE[name].source
    nan = [ip for ip in absent if ip in values]
    none = [ip for ip in absent if ip not in values]
    parts = []
    if none:
        parts.append(f"no {source} samples from {', '.join(none)} in {window}")
    if nan:
        parts.append(f"a non-finite {name} for {', '.join(nan)}")
    return "; ".join(parts) + f" (Prometheus at {url})"


def _settle(
    prom: _Prometheus,
    node_ips: list[str],
    end: float,
    scrape_interval: float,
    sleep: Callable[[float], None],
    now: Callable[[], float],
) -> tuple[float, str | None]:
    """Wait for every node's first sample after `end`; return the window's end (the latest
    of those samples) and, if some node never came, why."""
    limit = 2 * scrape_interval
    deadline = end + limit
    promql = settle_query(node_ips)
    poll = max(0.2, min(1.0, scrape_interval / 5))
    # Bounded by a count as well as by the clock, so a clock that stands still cannot
    # keep it here.
    for _ in range(int(limit / poll) + 2):
        at = min(now(), deadline)
        data, error = prom.query(promql, at)
        if error is not None:
            return end, f"could not wait for the scrape after the run's end: {error}"
        latest = _by_node(data, "ip")
        late = [ip for ip in node_ips if (latest.get(ip) or 0.0) <= end]
        if not late:
            return max(float(latest[ip] or 0.0) for ip in node_ips), None
        if at >= deadline:
            break
        sleep(max(0.0, min(poll, deadline - at)))
    return deadline, (
        f"no sample after the run's end from {', '.join(late)} within {limit:g} s "
        f"(two scrape intervals) at {prom.url}: the run's last seconds may not be covered"
    )
