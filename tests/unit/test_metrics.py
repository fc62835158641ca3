"""raykit.metrics: the PromQL text, and collect() over Prometheus answers recorded from the
sandbox cluster (tests/fixtures/prometheus, made by scripts/record_prometheus.py).

The expected figures are worked out here from the raw samples recorded alongside
(`raw.json`), following Prometheus' own evaluation rules (closed range [t - r, t] in 2.x,
instant look-ups of the latest sample at or before t, subquery steps aligned to multiples
of the step), never copied from collect()'s output.
"""

from __future__ import annotations

import json
import math
import re
import socket
from collections import defaultdict
from typing import Any

import numpy as np
import pytest
import requests

from raykit import metrics
from support import (
    PROMETHEUS_FIXTURES as FIXTURES,
)
from support import (
    FakeResponse,
    ReplaySession,
    collect_recorded,
    load_prometheus_fixture,
)

RECORDED = sorted(p.name for p in FIXTURES.iterdir() if (p / "meta.json").exists())
LOOKBACK_MS = 300_000
IPS = ["10.89.154.11", "10.89.154.12", "10.89.154.13"]


# --- replaying recorded answers ------------------------------------------------------------


def replay(name: str) -> tuple[dict[str, Any], dict[str, Any], ReplaySession, Raw]:
    meta, block, session = collect_recorded(name)
    return meta, block, session, Raw(load_prometheus_fixture(name)[2])


# --- the expected figures, from the raw samples --------------------------------------------


def ms(t: float | str) -> int:
    return round(float(t) * 1000)


class Raw:
    """Raw samples per metric: {node: [[(t_ms, value), ...] per series]}."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.by_metric: dict[str, dict[str, list[list[tuple[int, float]]]]] = {}
        for name, rec in raw.items():
            label = "NodeAddress" if name == metrics.OBJECT_STORE_USED else "ip"
            nodes: dict[str, list[list[tuple[int, float]]]] = defaultdict(list)
            for series in rec["body"]["data"]["result"]:
                points = [(ms(t), float(v)) for t, v in series["values"]]
                nodes[series["metric"][label]].append(points)
            self.by_metric[name] = dict(nodes)

    def series(self, metric: str, node: str) -> list[list[tuple[int, float]]]:
        return self.by_metric[metric].get(node, [])

    def in_range(self, metric: str, node: str, lo: int, hi: int) -> list[list[float]]:
        """Per series, the values with lo <= t <= hi (Prometheus 2.x ranges are closed)."""
        out = []
        for points in self.series(metric, node):
            values = [v for t, v in points if lo <= t <= hi]
            if values:
                out.append(values)
        return out

    def at(self, metric: str, node: str, t: int) -> float | None:
        """The instant look-up, `max by (node)` over the node's series."""
        found = []
        for points in self.series(metric, node):
            before = [v for ts, v in points if t - LOOKBACK_MS < ts <= t]
            if before:
                found.append(before[-1])
        return max(found) if found else None


class Expected:
    """What each figure should be, computed from the raw samples."""

    def __init__(self, meta: dict[str, Any], block: dict[str, Any], raw: Raw) -> None:
        self.raw = raw
        self.ips = meta["node_ips"]
        self.stop = ms(f"{block['window']['end']:.3f}")
        self.range_ms = ms(block["window"]["end"] - meta["start"])
        self.lo = self.stop - self.range_ms

    def samples(self, metric: str, ip: str) -> list[float]:
        return [v for s in self.raw.in_range(metric, ip, self.lo, self.stop) for v in s]

    def node(self, ip: str) -> dict[str, Any]:
        cpu = self.samples(metrics.CPU, ip)
        used = self.samples(metrics.MEM_USED, ip)
        total = self.samples(metrics.MEM_TOTAL, ip)
        disk = self.samples(metrics.DISK_PCT, ip)
        obj = self.samples(metrics.OBJECT_STORE_USED, ip)
        return {
            "cpu_pct_mean": float(np.mean(cpu)) if cpu else None,
            # Per series, then the largest (one series per node here).
            "cpu_pct_p95": max(
                float(np.quantile(s, 0.95))
                for s in self.raw.in_range(metrics.CPU, ip, self.lo, self.stop)
            )
            if cpu
            else None,
            "samples": len(cpu) or None,
            "mem_used_pct_mean": 100 * float(np.mean(used)) / max(total) if used else None,
            "mem_used_pct_max": 100 * max(used) / max(total) if used else None,
            "disk_used_pct_max": max(disk) if disk else None,
            "object_store_used_max_bytes": max(obj) if obj else None,
            "net_sent_bytes": self.net(metrics.NET_SENT, ip),
            "net_recv_bytes": self.net(metrics.NET_RECV, ip),
        }

    def net(self, metric: str, ip: str) -> float | None:
        # The latest value at the window's end minus the latest at or before its start,
        # for a node with a sample inside the window.
        if not self.samples(metric, ip):
            return None
        last, first = self.raw.at(metric, ip, self.stop), self.raw.at(metric, ip, self.lo)
        return None if last is None or first is None else last - first

    def subquery_steps(self) -> list[int]:
        step = ms(metrics.SUBQUERY_STEP_S)
        first = step * (self.lo // step)
        if first < self.lo:
            first += step
        return list(range(first, self.stop + 1, step))

    def cluster(self) -> dict[str, Any]:
        nodes = {ip: self.node(ip) for ip in self.ips}
        cpus = {ip: max(self.samples(metrics.CPU_COUNT, ip)) for ip in self.ips}
        weighted = []
        for t in self.subquery_steps():
            pairs = [
                (self.raw.at(metrics.CPU, ip, t), self.raw.at(metrics.CPU_COUNT, ip, t))
                for ip in self.ips
            ]
            busy = sum(c * n for c, n in pairs if c is not None and n is not None)
            weighted.append(busy / sum(n for _, n in pairs if n is not None))

        def total_max(metric: str) -> float:
            return max(
                sum(v for ip in self.ips if (v := self.raw.at(metric, ip, t)) is not None)
                for t in self.subquery_steps()
            )

        return {
            "cpu_pct_mean": sum(nodes[ip]["cpu_pct_mean"] * cpus[ip] for ip in self.ips)
            / sum(cpus.values()),
            "cpu_pct_p95": float(np.quantile(weighted, 0.95)),
            "mem_used_bytes_max": total_max(metrics.MEM_USED),
            "object_store_used_max_bytes": total_max(metrics.OBJECT_STORE_USED),
            "net_sent_bytes": sum(nodes[ip]["net_sent_bytes"] for ip in self.ips),
            "net_recv_bytes": sum(nodes[ip]["net_recv_bytes"] for ip in self.ips),
        }

    def series_points(self, metric: str, ip: str, start: float, step: float) -> list[list[float]]:
        t0, step_ms = ms(f"{start:.3f}"), ms(step)
        out = []
        for t in range(t0, self.stop + 1, step_ms):
            v = self.raw.at(metric, ip, t)
            if v is not None:
                out.append([t / 1000, v])
        return out


def close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# --- PromQL text ---------------------------------------------------------------------------


def unquote_promql(literal: str) -> str:
    assert literal[0] == literal[-1] == '"'
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def test_ip_regex_escapes_dots_and_matches_exactly_the_nodes() -> None:
    literal = metrics.ip_regex(["10.0.0.1", "10.0.0.12"])
    assert literal == r'"10\\.0\\.0\\.1|10\\.0\\.0\\.12"'
    regex = re.compile(unquote_promql(literal))  # what Prometheus compiles (fully anchored)
    assert regex.fullmatch("10.0.0.1")
    assert regex.fullmatch("10.0.0.12")
    assert not regex.fullmatch("10x0x0x1")
    assert not regex.fullmatch("10.0.0.123")
    assert not regex.fullmatch("110.0.0.1")


def test_selector_quotes_hostile_text() -> None:
    sel = metrics.selector("m", ['a"b\\c'])
    literal = sel[len('m{ip=~"') - 1 : -1]
    assert sel.startswith("m{ip=~") and sel.endswith("}")
    assert re.compile(unquote_promql(literal)).fullmatch('a"b\\c')


def test_duration_is_whole_milliseconds() -> None:
    assert metrics.duration(31.2346) == "31235ms"
    assert metrics.duration(5) == "5000ms"
    assert metrics.duration(0) == "1ms"


def test_node_queries_text() -> None:
    q = metrics.node_queries(["10.0.0.1"], 30)
    sel = 'ray_node_cpu_utilization{ip=~"10\\\\.0\\\\.0\\\\.1"}'
    assert q["cpu_pct_mean"] == (
        f"sum by (ip) (sum_over_time({sel}[30000ms]))"
        f" / sum by (ip) (count_over_time({sel}[30000ms]))"
    )
    assert q["cpu_pct_p95"] == f"max by (ip) (quantile_over_time(0.95, {sel}[30000ms]))"
    assert q["samples"] == f"sum by (ip) (count_over_time({sel}[30000ms]))"
    assert q["mem_used_pct_max"].startswith("100 * max by (ip) (max_over_time(ray_node_mem_used{")
    assert "/ on(ip) max by (ip) (max_over_time(ray_node_mem_total{" in q["mem_used_pct_max"]
    assert "/ on(ip) max by (ip) (max_over_time(ray_node_mem_total{" in q["mem_used_pct_mean"]
    assert q["disk_used_pct_max"].startswith(
        "max by (ip) (max_over_time(ray_node_disk_utilization_percentage{ip=~"
    )
    assert q["object_store_used_max_bytes"] == (
        "max by (NodeAddress) (max_over_time("
        'ray_object_store_used_memory{NodeAddress=~"10\\\\.0\\\\.0\\\\.1"}[30000ms]))'
    )
    net = 'ray_node_network_sent{ip=~"10\\\\.0\\\\.0\\\\.1"}'
    assert q["net_sent_bytes"] == (
        f"(max by (ip) ({net}) - max by (ip) ({net} offset 30000ms))"
        f" and on(ip) max by (ip) (count_over_time({net}[30000ms]))"
    )
    assert "ray_node_network_received{" in q["net_recv_bytes"]
    assert set(q) == set(metrics.NODE_FIELDS)


def test_cluster_queries_text() -> None:
    q = metrics.cluster_queries(["10.0.0.1"], 30)
    assert q["cpu_pct_mean"].startswith("sum((sum by (ip) (sum_over_time(")
    assert "* on(ip) max by (ip) (max_over_time(ray_node_cpu_count{" in q["cpu_pct_mean"]
    assert q["cpu_pct_p95"] == (
        f"quantile_over_time(0.95, ({metrics.cluster_cpu_pct(['10.0.0.1'])})[30000ms:1000ms])"
    )
    assert metrics.cluster_cpu_pct(["10.0.0.1"]) == (
        'sum(max by (ip) (ray_node_cpu_utilization{ip=~"10\\\\.0\\\\.0\\\\.1"})'
        ' * on(ip) max by (ip) (ray_node_cpu_count{ip=~"10\\\\.0\\\\.0\\\\.1"}))'
        ' / sum(max by (ip) (ray_node_cpu_count{ip=~"10\\\\.0\\\\.0\\\\.1"}))'
    )
    assert q["mem_used_bytes_max"] == (
        'max_over_time(sum(max by (ip) (ray_node_mem_used{ip=~"10\\\\.0\\\\.0\\\\.1"}))'
        "[30000ms:1000ms])"
    )
    assert q["object_store_used_max_bytes"].startswith(
        "max_over_time(sum(max by (NodeAddress) (ray_object_store_used_memory{NodeAddress=~"
    )
    assert q["net_sent_bytes"] == f"sum({metrics.net_bytes(metrics.NET_SENT, ['10.0.0.1'], 30)})"
    assert set(q) == set(metrics.CLUSTER_FIELDS)


def test_series_queries_and_step() -> None:
    q = metrics.series_queries(["10.0.0.1"], 5)
    assert q["cpu_pct"] == 'max by (ip) (ray_node_cpu_utilization{ip=~"10\\\\.0\\\\.0\\\\.1"})'
    assert q["net_sent_bytes_per_s"] == (
        'sum by (ip) (rate(ray_node_network_sent{ip=~"10\\\\.0\\\\.0\\\\.1"}[15000ms]))'
    )
    assert q["object_store_used_bytes"].startswith("max by (NodeAddress) (")
    assert set(q) == set(metrics.SERIES)
    assert metrics.step_for(2) == 1
    assert metrics.step_for(300) == 1
    assert metrics.step_for(301) == 2
    assert metrics.step_for(3600) == 12
    assert 3600 / metrics.step_for(3600) <= metrics.MAX_POINTS


def test_every_selector_is_restricted_to_the_nodes() -> None:
    queries = metrics.all_queries(IPS, 30, 5)
    assert queries.keys() == {
        *(f"nodes.{k}" for k in metrics.NODE_FIELDS),
        *(f"cluster.{k}" for k in metrics.CLUSTER_FIELDS),
        *(f"series.{k}" for k in metrics.SERIES),
    }
    for text in [*queries.values(), metrics.settle_query(IPS)]:
        names = re.findall(r"\bray_\w+", text)
        assert names
        for match in re.finditer(r"\bray_\w+(.)", text):
            assert match.group(1) == "{", text
        assert text.count("(") == text.count(")"), text


# --- collect() over recorded answers -------------------------------------------------------


@pytest.mark.parametrize("name", RECORDED)
def test_collect_replays_recorded_answers(name: str) -> None:
    meta, block, session, raw = replay(name)
    assert session.unused() == 0, "every recorded answer is asked for again"
    expected = Expected(meta, block, raw)
    json.dumps(block, allow_nan=False)  # plain JSON

    for ip in meta["node_ips"]:
        want = expected.node(ip)
        got = block["nodes"][ip]
        assert set(got) == set(metrics.NODE_FIELDS)
        for field in metrics.NODE_FIELDS:
            assert close(got[field], want[field]), (ip, field, got[field], want[field])
            if want[field] is None:
                assert ip in block["missing"][f"nodes.{field}"]

    complete = all(
        block["nodes"][ip][f] is not None for ip in meta["node_ips"] for f in metrics.NODE_FIELDS
    )
    if complete:
        for field, value in expected.cluster().items():
            assert close(block["cluster"][field], value), (field, block["cluster"][field], value)
    else:
        for field, value in block["cluster"].items():
            if value is None:
                assert "needs every node" in block["missing"][f"cluster.{field}"]

    step = block["window"]["step_s"]
    for name_, metric in (
        ("cpu_pct", metrics.CPU),
        ("disk_used_pct", metrics.DISK_PCT),
        ("object_store_used_bytes", metrics.OBJECT_STORE_USED),
    ):
        for ip in meta["node_ips"]:
            want = expected.series_points(metric, ip, meta["start"], step)
            got = block["series"][name_].get(ip, [])
            assert len(got) == len(want), (name_, ip)
            for (t1, v1), (t2, v2) in zip(got, want, strict=True):
                assert close(t1, t2) and close(v1, v2)
    for ip, points in block["series"]["mem_used_pct"].items():
        for t, v in points:
            used = raw.at(metrics.MEM_USED, ip, ms(t))
            total = raw.at(metrics.MEM_TOTAL, ip, ms(t))
            assert used is not None and total is not None
            assert close(v, 100 * used / total)
    for name_ in ("net_sent_bytes_per_s", "net_recv_bytes_per_s"):
        for points in block["series"][name_].values():
            assert all(v >= 0 for _, v in points)


def test_load_window_covers_the_run_and_its_last_scrape() -> None:
    meta, block, _, raw = replay("load-3nodes")
    window = block["window"]
    assert window["start"] == meta["start"]
    # Settled: the window ends on the latest of the nodes' first samples after the run.
    assert meta["end"] < window["end"] <= math.ceil(meta["end"] + 2 * meta["scrape_interval"])
    assert window["end"].is_integer()
    stop = ms(window["end"])
    for ip in IPS:
        after = [t for s in raw.series(metrics.CPU, ip) for t, _ in s if t > ms(meta["end"])]
        assert after and min(after) <= stop
    assert window["step_s"] == 1
    assert block["missing"] == {}
    # The recorded load shows: busy CPUs, 32 MB objects moving between nodes.
    assert block["cluster"]["cpu_pct_mean"] > 50
    assert block["cluster"]["net_sent_bytes"] > 64e6
    assert block["cluster"]["object_store_used_max_bytes"] > 32e6
    assert all(block["nodes"][ip]["samples"] >= 5 for ip in IPS)
    assert block["queries"] == metrics.all_queries(
        IPS, window["end"] - meta["start"], meta["scrape_interval"]
    )


def test_node_without_samples_is_missing_by_name() -> None:
    meta, block, _, _ = replay("node-absent")
    absent = "10.89.154.14"
    assert absent in meta["node_ips"]
    assert block["nodes"][absent] == dict.fromkeys(metrics.NODE_FIELDS)
    for field in metrics.NODE_FIELDS:
        reason = block["missing"][f"nodes.{field}"]
        assert absent in reason
        assert "10.89.154.12" not in reason and "10.89.154.13" not in reason
        assert "http://10.89.154.11:9090" in reason
    for ip in IPS:
        assert all(v is not None for v in block["nodes"][ip].values())
    assert all(v is None for v in block["cluster"].values())
    assert absent in block["missing"]["cluster.cpu_pct_mean"]
    # The settle wait ran out on the absent node, after two scrape intervals.
    assert absent in block["missing"]["settle"]
    assert block["window"]["end"] == math.ceil(meta["end"] + 2 * meta["scrape_interval"])
    assert absent not in block["series"]["cpu_pct"]
    assert set(block["series"]["cpu_pct"]) == set(IPS)


def test_window_shorter_than_the_scrape_interval_without_settle() -> None:
    meta, block, _, raw = replay("short-no-settle")
    assert meta["end"] - meta["start"] < meta["scrape_interval"]
    assert block["window"]["end"] == meta["end"]
    assert "settle" not in block["missing"]
    with_samples = [ip for ip in IPS if Expected(meta, block, raw).samples(metrics.CPU, ip)]
    assert with_samples == ["10.89.154.12"]
    assert block["nodes"]["10.89.154.12"]["cpu_pct_mean"] is not None
    assert block["nodes"]["10.89.154.12"]["net_sent_bytes"] is not None
    for ip in ("10.89.154.11", "10.89.154.13"):
        assert block["nodes"][ip]["cpu_pct_mean"] is None
        assert block["nodes"][ip]["net_sent_bytes"] is None
        assert ip in block["missing"]["nodes.cpu_pct_mean"]
        assert ip in block["missing"]["nodes.net_sent_bytes"]


# --- failures become `missing`, never exceptions -------------------------------------------


class ScriptedSession:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[dict[str, str]] = []

    def post(self, url: str, data: dict[str, str], timeout: float) -> FakeResponse:
        self.calls.append(data)
        result = self.answer(url, data) if callable(self.answer) else self.answer
        if isinstance(result, BaseException):
            raise result
        return result


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def run(session: Any, *, settle: bool = True, start: float = 1000.0, end: float = 1030.0):
    clock = FakeClock(end + 0.1)
    block = metrics.collect(
        "http://prom.example:9090",
        IPS,
        start,
        end,
        settle=settle,
        session=session,
        sleep=clock.sleep,
        now=clock.now,
    )
    json.dumps(block, allow_nan=False)
    return block, clock


def all_keys() -> set[str]:
    return {
        *(f"nodes.{k}" for k in metrics.NODE_FIELDS),
        *(f"cluster.{k}" for k in metrics.CLUSTER_FIELDS),
        *(f"series.{k}" for k in metrics.SERIES),
    }


def assert_all_null(block: dict[str, Any]) -> None:
    assert set(block["nodes"]) == set(IPS)
    assert all(v is None for node in block["nodes"].values() for v in node.values())
    assert all(v is None for v in block["cluster"].values())
    assert all(lines == {} for lines in block["series"].values())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_monitoring_host() -> None:
    def refuse(*_: Any) -> None:
        raise AssertionError("no request without a Prometheus")

    block = metrics.collect(None, IPS, 1000.0, 1030.0, session=ScriptedSession(refuse))  # type: ignore[arg-type]
    assert_all_null(block)
    assert set(block["missing"]) == all_keys()
    assert set(block["missing"].values()) == {"no monitoring host in the inventory"}
    assert block["window"] == {"start": 1000.0, "end": 1030.0, "step_s": 1.0}


def test_connection_refused_on_a_real_closed_port() -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}"
    session = requests.Session()
    calls = []
    post = session.post

    def counting_post(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return post(*args, **kwargs)

    session.post = counting_post  # type: ignore[method-assign]
    block = metrics.collect(url, IPS, 1000.0, 1030.0, session=session, sleep=lambda _: None)
    assert_all_null(block)
    reason = f"Prometheus unreachable at {url}: connection refused"
    assert block["missing"]["settle"].endswith(reason)
    assert {block["missing"][k] for k in all_keys()} == {reason}
    assert len(calls) == 1, "after a refused connection, nothing else is tried"
    assert block["window"]["end"] == 1030.0


def test_timeout() -> None:
    block, _ = run(ScriptedSession(requests.ConnectTimeout("slow")))
    assert_all_null(block)
    assert block["missing"]["nodes.cpu_pct_mean"] == (
        "Prometheus unreachable at http://prom.example:9090: no answer within 5 s"
    )


def test_http_500() -> None:
    session = ScriptedSession(FakeResponse(500, "<html>Internal Server Error</html>"))
    block, _ = run(session)
    assert_all_null(block)
    reason = block["missing"]["nodes.disk_used_pct_max"]
    assert "http://prom.example:9090" in reason and "HTTP 500" in reason
    assert "settle" in block["missing"]
    assert len(session.calls) == 1 + len(metrics.NODE_FIELDS) + len(metrics.SERIES)


def test_status_error_body() -> None:
    body = {"status": "error", "errorType": "bad_data", "error": "invalid parameter 'query'"}
    block, _ = run(ScriptedSession(FakeResponse(400, body)), settle=False)
    assert_all_null(block)
    assert block["missing"]["series.cpu_pct"] == (
        "Prometheus at http://prom.example:9090 answered an error (HTTP 400): "
        "bad_data: invalid parameter 'query'"
    )
    assert "settle" not in block["missing"]


def test_not_an_api_answer() -> None:
    block, _ = run(ScriptedSession(FakeResponse(200, ["not", "an", "object"])), settle=False)
    assert_all_null(block)
    assert "without an API response" in block["missing"]["nodes.cpu_pct_mean"]


def empty(url: str, data: dict[str, str]) -> FakeResponse:
    kind = "matrix" if "step" in data else "vector"
    return FakeResponse(200, {"status": "success", "data": {"resultType": kind, "result": []}})


def test_empty_results_and_settle_timeout() -> None:
    block, clock = run(ScriptedSession(empty))
    assert_all_null(block)
    assert set(block["missing"]) == all_keys() | {"settle"}
    for ip in IPS:
        assert ip in block["missing"]["settle"]
        assert ip in block["missing"]["nodes.cpu_pct_mean"]
        assert ip in block["missing"]["series.mem_used_pct"]
    assert "within 10 s" in block["missing"]["settle"]
    # Bounded by two scrape intervals past the run's end.
    assert block["window"]["end"] == 1040.0
    assert clock.t <= 1040.0 + 1e-9
    assert 0 < sum(clock.slept) <= 10.0


def vector(values: dict[str, str], label: str = "ip") -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {label: k}, "value": [0, v]} for k, v in values.items()],
        },
    }


def test_settle_waits_for_every_node_then_ends_the_window_on_the_last_sample() -> None:
    answers = iter(
        [
            {ip: "1029.0" for ip in IPS},
            {IPS[0]: "1031.0", IPS[1]: "1029.0", IPS[2]: "1032.5"},
            {IPS[0]: "1031.0", IPS[1]: "1033.25", IPS[2]: "1032.5"},
        ]
    )

    def answer(url: str, data: dict[str, str]) -> FakeResponse:
        if "timestamp(" in data["query"]:
            return FakeResponse(200, vector(next(answers)))
        return empty(url, data)

    block, clock = run(ScriptedSession(answer))
    # The latest of the first samples after the end, up to a whole second.
    assert block["window"]["end"] == 1034.0
    assert "settle" not in block["missing"]
    assert len(clock.slept) == 2


def test_settle_with_a_clock_that_stands_still_ends() -> None:
    session = ScriptedSession(empty)
    block = metrics.collect(
        "http://prom.example:9090",
        IPS,
        1000.0,
        1030.0,
        session=session,  # type: ignore[arg-type]
        sleep=lambda _: None,
        now=lambda: 1030.5,
    )
    assert "settle" in block["missing"]
    assert block["window"]["end"] == 1040.0


def test_non_finite_values() -> None:
    def answer(url: str, data: dict[str, str]) -> FakeResponse:
        if "step" in data:
            return empty(url, data)
        if data["query"].startswith("max by (NodeAddress)"):
            return FakeResponse(200, vector(dict.fromkeys(IPS, "2"), "NodeAddress"))
        return FakeResponse(200, vector({IPS[0]: "NaN", IPS[1]: "+Inf", IPS[2]: "3"}))

    block, _ = run(ScriptedSession(answer), settle=False)
    assert block["nodes"][IPS[2]]["cpu_pct_mean"] == 3.0
    assert block["nodes"][IPS[0]]["cpu_pct_mean"] is None
    assert block["nodes"][IPS[2]]["object_store_used_max_bytes"] == 2.0
    reason = block["missing"]["nodes.cpu_pct_mean"]
    assert "non-finite" in reason and IPS[0] in reason and IPS[1] in reason


def test_no_nodes_or_empty_window() -> None:
    never = ScriptedSession(AssertionError("no request"))
    block = metrics.collect("http://p:9090", [], 1.0, 2.0, session=never)  # type: ignore[arg-type]
    assert block["nodes"] == {} and "nodes.cpu_pct_mean" in block["missing"]
    block = metrics.collect("http://p:9090", IPS, 5.0, 5.0, session=never)  # type: ignore[arg-type]
    assert_all_null(block)
    assert "empty run window" in block["missing"]["cluster.net_sent_bytes"]


@pytest.mark.parametrize(
    ("text", "seconds"), [("5s", 5.0), ("500ms", 0.5), ("1m", 60.0), ("2h", 7200.0), ("x", None)]
)
def test_duration(text: str, seconds: float | None) -> None:
    assert metrics._duration_s(text) == seconds


def test_scrape_interval_without_prometheus_is_the_default() -> None:
    assert metrics.scrape_interval(None) == metrics.DEFAULT_SCRAPE_S
    assert metrics.scrape_interval("http://127.0.0.1:9", timeout=0.5) == metrics.DEFAULT_SCRAPE_S
